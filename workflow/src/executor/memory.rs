//! An in-memory [`ExecutionStore`]: for tests, and for anything that wants the executor
//! without a database. It enforces the same contract a durable store must (create is a no-op
//! for an existing name, record must continue the stored history and cannot touch a finished
//! execution), so tests written against it also check the executor's side of that contract.
//! Everything happens under one mutex, never held across an await, which makes each call
//! atomic exactly like a database transaction.

use super::store::{ExecutionSnapshot, ExecutionStore, ExecutionStoreError, HistoryEvent};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug)]
struct Entry {
    snapshot: ExecutionSnapshot,
    history: Vec<HistoryEvent>,
}

#[derive(Debug, Default)]
pub struct MemoryExecutionStore {
    executions: Mutex<HashMap<String, Entry>>,
}

impl MemoryExecutionStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave an entry half-written (every write is
        // a single assignment after all checks), so a poisoned lock is still consistent.
        self.executions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every execution, whatever its status (a test and debugging aid).
    pub fn all(&self) -> Vec<ExecutionSnapshot> {
        let mut all: Vec<_> = self.lock().values().map(|e| e.snapshot.clone()).collect();
        all.sort_by(|a, b| (a.started_at, &a.name).cmp(&(b.started_at, &b.name)));
        all
    }
}

fn check_continues(
    expected_first: u64,
    snapshot: &ExecutionSnapshot,
    events: &[HistoryEvent],
) -> Result<(), ExecutionStoreError> {
    for (i, event) in events.iter().enumerate() {
        if event.seq != expected_first + i as u64 {
            return Err(ExecutionStoreError::new(format!(
                "execution {}: event seq {} does not continue the history (expected {})",
                snapshot.name,
                event.seq,
                expected_first + i as u64
            )));
        }
    }
    let last = events.last().map_or(expected_first - 1, |e| e.seq);
    if snapshot.seq != last {
        return Err(ExecutionStoreError::new(format!(
            "execution {}: snapshot seq {} is not the last event's seq {last}",
            snapshot.name, snapshot.seq
        )));
    }
    Ok(())
}

#[async_trait]
impl ExecutionStore for MemoryExecutionStore {
    async fn create(
        &self,
        snapshot: &ExecutionSnapshot,
        events: &[HistoryEvent],
    ) -> Result<bool, ExecutionStoreError> {
        let mut executions = self.lock();
        if executions.contains_key(&snapshot.name) {
            return Ok(false);
        }
        check_continues(1, snapshot, events)?;
        executions.insert(
            snapshot.name.clone(),
            Entry {
                snapshot: snapshot.clone(),
                history: events.to_vec(),
            },
        );
        Ok(true)
    }

    async fn record(
        &self,
        snapshot: &ExecutionSnapshot,
        events: &[HistoryEvent],
    ) -> Result<(), ExecutionStoreError> {
        let mut executions = self.lock();
        let entry = executions.get_mut(&snapshot.name).ok_or_else(|| {
            ExecutionStoreError::new(format!("execution {} does not exist", snapshot.name))
        })?;
        if entry.snapshot.is_finished() {
            return Err(ExecutionStoreError::new(format!(
                "execution {} is already {}",
                snapshot.name, entry.snapshot.status
            )));
        }
        check_continues(entry.snapshot.seq + 1, snapshot, events)?;
        entry.snapshot = snapshot.clone();
        entry.history.extend_from_slice(events);
        Ok(())
    }

    async fn unfinished(&self) -> Result<Vec<ExecutionSnapshot>, ExecutionStoreError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|s| !s.is_finished())
            .collect())
    }

    async fn get(&self, name: &str) -> Result<Option<ExecutionSnapshot>, ExecutionStoreError> {
        Ok(self.lock().get(name).map(|e| e.snapshot.clone()))
    }

    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, ExecutionStoreError> {
        Ok(self
            .lock()
            .get(name)
            .map(|e| e.history.clone())
            .unwrap_or_default())
    }
}
