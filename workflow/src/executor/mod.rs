//! A durable, in-process executor of a loaded [`StateMachine`].
//!
//! It exists so the saga runs locally with the same definition and the same semantics as on
//! Step Functions. The invariants it keeps:
//!
//! * **Persist before acting on it.** `start` returns only after the execution is stored, and
//!   every transition is recorded (snapshot + history, atomically) before the next state runs.
//!   A crash therefore loses at most the state in flight, which `resume_unfinished` runs again;
//!   handlers are idempotent, so running a Task twice is safe, skipping one never happens.
//! * **Never finish without persisting.** If the store fails, that execution's loop stops and
//!   it stays RUNNING in the store, to be resumed on the next start.
//! * **Waiting costs nothing.** Retries sleep on the tokio timer, and the concurrency limit
//!   (`max_concurrent`) is held only while a handler runs, so thousands of executions can
//!   back off at once without starving the ones that are ready.
//! * **One runner per execution per process.** Starting or resuming a name that is already
//!   running here is a no-op; across processes the store's seq check refuses interleaving.

mod context;
pub mod retry;
mod run;
mod store;

pub use retry::{RetryDecision, retry_delay};
pub use store::{
    ExecutionSnapshot, ExecutionStatus, ExecutionStore, ExecutionStoreError, HistoryEvent,
    HistoryEventKind,
};

use crate::asl::StateMachine;
use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;

/// A Task's implementation, registered under its substitution name.
///
/// Must be idempotent: after a crash or a store failure the same Task runs again with the
/// same input. Returning `Err` is the only failure channel the executor routes through Retry
/// and Catch; a panic aborts that execution's loop (it stays RUNNING until resumed).
#[async_trait]
pub trait TaskHandler: Send + Sync {
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContext {
    pub execution: String,
    pub state: String,
    /// 1-based: 1 is the first try, 2 the first retry.
    pub attempt: u32,
}

/// A task failure; `error` is the name Retry and Catch match (`Transient`, `OutOfStock`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutorOptions {
    /// How many handlers may run at once (executions waiting for a retry do not count).
    pub max_concurrent: usize,
    /// Multiplies every retry delay; tests use e.g. 0.001.
    pub delay_scale: f64,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            max_concurrent: 256,
            delay_scale: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Started,
    /// An execution with this name exists (in any status); nothing was started.
    AlreadyExists,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("no handler registered for Task resource \"${{{0}}}\"")]
    MissingHandler(String),
    #[error("invalid executor options: {0}")]
    InvalidOptions(String),
    #[error("invalid execution name {0:?}: it must be 1 to 80 characters")]
    InvalidName(String),
    #[error("the executor is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] ExecutionStoreError),
}

/// Executions running in this process: name -> (token, abort handle once spawned).
#[derive(Default)]
struct Active {
    next_token: u64,
    runs: HashMap<String, (u64, Option<AbortHandle>)>,
}

pub struct Executor {
    machine: StateMachine,
    handlers: HashMap<String, Arc<dyn TaskHandler>>,
    store: Arc<dyn ExecutionStore>,
    opts: ExecutorOptions,
    permits: Semaphore,
    active: Mutex<Active>,
    /// How many spawned executions have not finished; `idle` waits for 0.
    running: watch::Sender<usize>,
    shutting_down: AtomicBool,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("start_at", &self.machine.start_at)
            .field("opts", &self.opts)
            .field("running", &*self.running.borrow())
            .finish_non_exhaustive()
    }
}

/// Held by a spawned execution; dropping it (finished, failed or aborted) deregisters it.
struct RunGuard {
    executor: Arc<Executor>,
    name: String,
    token: u64,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        {
            let mut active = self.executor.lock_active();
            if active
                .runs
                .get(&self.name)
                .is_some_and(|(t, _)| *t == self.token)
            {
                active.runs.remove(&self.name);
            }
        }
        self.executor.running.send_modify(|n| *n -= 1);
    }
}

impl Executor {
    pub fn new(
        machine: StateMachine,
        handlers: HashMap<String, Arc<dyn TaskHandler>>,
        store: Arc<dyn ExecutionStore>,
        opts: ExecutorOptions,
    ) -> Result<Arc<Executor>, ExecError> {
        if let Some(missing) = machine
            .task_resources()
            .into_iter()
            .find(|r| !handlers.contains_key(*r))
        {
            return Err(ExecError::MissingHandler(missing.to_owned()));
        }
        if opts.max_concurrent == 0 || opts.max_concurrent > Semaphore::MAX_PERMITS {
            return Err(ExecError::InvalidOptions(
                "max_concurrent must be at least 1".into(),
            ));
        }
        if !(opts.delay_scale.is_finite() && opts.delay_scale >= 0.0) {
            return Err(ExecError::InvalidOptions(
                "delay_scale must be finite and not negative".into(),
            ));
        }
        Ok(Arc::new(Executor {
            permits: Semaphore::new(opts.max_concurrent),
            machine,
            handlers,
            store,
            opts,
            active: Mutex::new(Active::default()),
            running: watch::Sender::new(0),
            shutting_down: AtomicBool::new(false),
        }))
    }

    pub fn machine(&self) -> &StateMachine {
        &self.machine
    }

    pub fn store(&self) -> &Arc<dyn ExecutionStore> {
        &self.store
    }

    /// Persists a new execution, then runs it in the background. Starting an existing name
    /// is a no-op that reports `AlreadyExists`, so a redelivered event cannot run a saga twice.
    pub async fn start(
        self: &Arc<Self>,
        name: &str,
        input: Value,
    ) -> Result<StartOutcome, ExecError> {
        if name.is_empty() || name.chars().count() > 80 {
            return Err(ExecError::InvalidName(name.to_owned()));
        }
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ExecError::ShuttingDown);
        }
        let (snapshot, events) = run::initial(&self.machine, name, input, Utc::now());
        if !self.store.create(&snapshot, &events).await? {
            return Ok(StartOutcome::AlreadyExists);
        }
        self.spawn(snapshot);
        Ok(StartOutcome::Started)
    }

    /// Runs every RUNNING execution from its stored snapshot (after a restart). Returns how
    /// many were spawned; executions already running in this process are skipped.
    pub async fn resume_unfinished(self: &Arc<Self>) -> Result<usize, ExecError> {
        let unfinished = self.store.unfinished().await?;
        Ok(unfinished
            .into_iter()
            .filter(|s| self.spawn(s.clone()))
            .count())
    }

    /// Waits until no execution spawned by this executor is running.
    pub async fn idle(&self) {
        let mut rx = self.running.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Waits until fewer than `limit` executions are running: backpressure for whoever starts
    /// them, so a burst of events cannot pile up unbounded executions in memory.
    pub async fn wait_below(&self, limit: usize) {
        let mut rx = self.running.subscribe();
        let _ = rx.wait_for(|n| *n < limit).await;
    }

    /// How many executions are running in this process.
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Stops every execution at its next await point, as a crash would, and waits for them
    /// to stop. Their last recorded snapshot stays RUNNING, so `resume_unfinished` on the next
    /// executor carries on from there. Afterwards `start` refuses new executions.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        // Collected under the lock, aborted outside it: an aborted run deregisters itself
        // under the same lock. A run whose handle is not stored yet sees the flag in `spawn`.
        let handles: Vec<AbortHandle> = {
            let active = self.lock_active();
            active
                .runs
                .values()
                .filter_map(|(_, h)| h.clone())
                .collect()
        };
        for handle in handles {
            handle.abort();
        }
        self.idle().await;
    }

    fn lock_active(&self) -> MutexGuard<'_, Active> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns the execution unless it already runs here; returns whether it was spawned.
    fn spawn(self: &Arc<Self>, snapshot: ExecutionSnapshot) -> bool {
        let name = snapshot.name.clone();
        let token = {
            let mut active = self.lock_active();
            if self.shutting_down.load(Ordering::SeqCst) || active.runs.contains_key(&name) {
                return false;
            }
            active.next_token += 1;
            let token = active.next_token;
            active.runs.insert(name.clone(), (token, None));
            token
        };
        self.running.send_modify(|n| *n += 1);
        let guard = RunGuard {
            executor: Arc::clone(self),
            name: name.clone(),
            token,
        };
        let handle = tokio::spawn(async move {
            let executor = Arc::clone(&guard.executor);
            run::run(executor, snapshot).await;
            drop(guard);
        });
        let abort_now = {
            let mut active = self.lock_active();
            match active.runs.get_mut(&name) {
                Some((t, slot)) if *t == token => {
                    *slot = Some(handle.abort_handle());
                    // Read under the lock `shutdown` collects handles under: either it saw
                    // this handle or this sees its flag, so no run escapes a shutdown.
                    self.shutting_down.load(Ordering::SeqCst)
                }
                _ => false,
            }
        };
        if abort_now {
            handle.abort();
        }
        true
    }
}
