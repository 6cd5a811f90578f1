//! An execution store that watches what the runner records: the SQLite store behind a
//! recorder and a fault switch on `record`, so a test can count the runner's writes and make
//! them fail as a full disk would.

use super::helpers::*;

/// The SQLite store with a recorder and a fault switch in front of `record`: it notes the
/// event kinds of every call, and fails it (as a full disk would) while `broken` is set. The
/// other calls go to the store unchanged.
pub struct ObservedStore {
    pub inner: Arc<SqliteStore>,
    pub broken: AtomicBool,
    pub records: Mutex<Vec<Vec<Kind>>>,
    _dir: Option<tempfile::TempDir>,
}

impl ObservedStore {
    pub fn new() -> Self {
        let (inner, dir) = temp_store();
        ObservedStore {
            _dir: Some(dir),
            ..ObservedStore::over(inner)
        }
    }

    /// Observes `inner`, a store someone else owns.
    pub fn over(inner: Arc<SqliteStore>) -> Self {
        ObservedStore {
            inner,
            broken: AtomicBool::new(false),
            records: Mutex::new(Vec::new()),
            _dir: None,
        }
    }
}

#[async_trait]
impl ExecutionStore for ObservedStore {
    async fn create(
        &self,
        s: &ExecutionSnapshot,
        e: &[HistoryEvent],
    ) -> Result<bool, ExecutionStoreError> {
        self.inner.create(s, e).await
    }
    async fn record(
        &self,
        s: &ExecutionSnapshot,
        e: &[HistoryEvent],
    ) -> Result<(), ExecutionStoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(ExecutionStoreError::new("disk full"));
        }
        // Only what was written: a write that lost the seq check (a token answer and the
        // runner racing on one wait) is not a record.
        self.inner.record(s, e).await?;
        self.records
            .lock()
            .unwrap()
            .push(e.iter().map(|e| e.kind).collect());
        Ok(())
    }
    async fn unfinished(&self) -> Result<Vec<ExecutionSnapshot>, ExecutionStoreError> {
        self.inner.unfinished().await
    }
    async fn get(&self, name: &str) -> Result<Option<ExecutionSnapshot>, ExecutionStoreError> {
        self.inner.get(name).await
    }
    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, ExecutionStoreError> {
        self.inner.history(name).await
    }
    async fn redrive(
        &self,
        s: &ExecutionSnapshot,
        e: &[HistoryEvent],
    ) -> Result<bool, ExecutionStoreError> {
        self.inner.redrive(s, e).await
    }
    async fn list(
        &self,
        status: orders_workflow::executor::ExecutionStatus,
        limit: usize,
    ) -> Result<Vec<ExecutionSnapshot>, ExecutionStoreError> {
        self.inner.list(status, limit).await
    }
}
