//! The executions routes on the local stack: redrive and the reads go to the in-process
//! executor and its store, which hold every execution of this database.

use crate::http::executions::{ExecutionReads, ExecutionRedrive, ExecutionsApi, ExecutionsError};
use async_trait::async_trait;
use orders_workflow::executor::{
    ExecutionSnapshot, ExecutionStatus, ExecutionStoreError, Executor, HistoryEvent, RedriveError,
};
use std::sync::Arc;

/// The executor as the executions routes' port.
pub struct LocalExecutions(pub Arc<Executor>);

impl LocalExecutions {
    /// Redrive and the reads, both from `executor`.
    pub fn api(executor: Arc<Executor>) -> ExecutionsApi {
        let local = Arc::new(LocalExecutions(executor));
        ExecutionsApi {
            redrive: local.clone(),
            reads: Some(local),
        }
    }
}

fn store_error(e: ExecutionStoreError) -> ExecutionsError {
    ExecutionsError::Failed(e.to_string())
}

#[async_trait]
impl ExecutionRedrive for LocalExecutions {
    async fn redrive(&self, name: &str) -> Result<(), ExecutionsError> {
        match self.0.redrive(name).await {
            Ok(_) => Ok(()),
            Err(RedriveError::DoesNotExist(name)) => Err(ExecutionsError::NotFound(name)),
            Err(e @ RedriveError::NotRedrivable { .. }) => {
                Err(ExecutionsError::NotRedrivable(e.to_string()))
            }
            Err(e @ RedriveError::ShuttingDown) => Err(ExecutionsError::Unavailable(e.to_string())),
            Err(RedriveError::Store(e)) => Err(store_error(e)),
        }
    }
}

#[async_trait]
impl ExecutionReads for LocalExecutions {
    async fn list(
        &self,
        status: ExecutionStatus,
        limit: usize,
    ) -> Result<Vec<ExecutionSnapshot>, ExecutionsError> {
        self.0
            .store()
            .list(status, limit)
            .await
            .map_err(store_error)
    }

    async fn describe(
        &self,
        name: &str,
    ) -> Result<Option<(ExecutionSnapshot, Vec<HistoryEvent>)>, ExecutionsError> {
        let store = self.0.store();
        let Some(snapshot) = store.get(name).await.map_err(store_error)? else {
            return Ok(None);
        };
        // Read after the snapshot: the history holds at least the events it explains.
        let history = store.history(name).await.map_err(store_error)?;
        Ok(Some((snapshot, history)))
    }
}
