//! Signals from the outbox to the local executor: the relay's [`TaskSignaller`].
//!
//! A payment result answers the task token it carries; a cancellation fails whatever task
//! the order's execution waits in with `OrderCancelled`. Every refusal that says the wait is
//! gone (a used, timed-out, unknown or malformed token; an execution that waits in nothing,
//! has ended or does not exist) is stale: the relay counts it as done, since no retry could
//! bring the wait back. Only a shutting-down executor or a failing store is retried.

use async_trait::async_trait;
use orders_domain::TaskSignal;
use orders_domain::lifecycle::ORDER_CANCELLED;
use orders_processor::{Delivered, SignalError, TaskSignaller};
use orders_workflow::executor::{Executor, TaskTokenError, WaitFailed};
use std::sync::Arc;

/// Delivers signals through the in-process executor's token calls.
pub struct ExecutorSignaller(pub Arc<Executor>);

#[async_trait]
impl TaskSignaller for ExecutorSignaller {
    async fn deliver(&self, signal: &TaskSignal) -> Result<Delivered, SignalError> {
        let executor = &self.0;
        let answered = match signal {
            TaskSignal::Succeed { token, output } => {
                executor.send_task_success(token, output.clone()).await
            }
            TaskSignal::Fail {
                token,
                error,
                cause,
            } => executor.send_task_failure(token, error, cause).await,
            TaskSignal::CancelWaiting { execution, reason } => {
                let cause = reason.as_deref().unwrap_or_default();
                return match executor
                    .fail_waiting(execution, ORDER_CANCELLED, cause)
                    .await
                {
                    Ok(WaitFailed::Failed) => Ok(Delivered::Applied),
                    Ok(WaitFailed::NotWaiting) => Ok(Delivered::Stale(
                        "the execution waits in no task; its next step sees the cancellation"
                            .into(),
                    )),
                    Ok(WaitFailed::Finished) => {
                        Ok(Delivered::Stale("the execution has ended".into()))
                    }
                    Ok(WaitFailed::Unknown) => Ok(Delivered::Stale("no such execution".into())),
                    Err(e) => token_error(e),
                };
            }
        };
        match answered {
            Ok(()) => Ok(Delivered::Applied),
            Err(e) => token_error(e),
        }
    }
}

fn token_error(e: TaskTokenError) -> Result<Delivered, SignalError> {
    match e {
        TaskTokenError::InvalidToken
        | TaskTokenError::TaskDoesNotExist
        | TaskTokenError::TaskTimedOut => Ok(Delivered::Stale(e.to_string())),
        TaskTokenError::ShuttingDown | TaskTokenError::Store(_) => Err(SignalError(e.to_string())),
    }
}
