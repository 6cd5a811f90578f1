//! The harness of the token tests: moto's Step Functions (the support crate's
//! [`StepFunctions`], which a `Rig` derefs to, so a test creates, starts and waits on it
//! directly) and the warehouse queue on moto's SQS, one state machine per test, and bounded
//! waits for the execution's events.

use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use orders_aws::moto::MotoSession;
use orders_aws::sfn::{TaskTokens, TokenError};
use orders_test_support::moto_stack::{self, StepFunctions};
use serde_json::Value;
use std::ops::Deref;
use std::time::Duration;

/// Bounds every wait on the emulator; the waits themselves end on the event.
pub(super) const PATIENCE: Duration = Duration::from_secs(30);

pub(super) struct Rig {
    sfn: StepFunctions,
    moto: MotoSession,
    pub(super) tokens: TaskTokens,
    /// The warehouse queue's URL.
    pub(super) queue: String,
}

pub(super) async fn rig() -> Rig {
    let moto = orders_aws::moto::session().await;
    let sfn = StepFunctions::new(&moto, PATIENCE).await;
    let queue = moto_stack::create_warehouse_queue(&moto.endpoint).await;
    Rig {
        tokens: TaskTokens::new(sfn.client.clone()),
        sfn,
        moto,
        queue,
    }
}

impl Deref for Rig {
    type Target = StepFunctions;

    fn deref(&self) -> &StepFunctions {
        &self.sfn
    }
}

impl Rig {
    /// The next warehouse request, taken off the queue (long polls, bounded).
    pub(super) async fn next_request(&self) -> Value {
        let message = moto_stack::take_message(&self.moto.endpoint, &self.queue, PATIENCE)
            .await
            .unwrap_or_else(|| panic!("no warehouse request within {PATIENCE:?}"));
        let body = message["Body"].as_str().expect("message body");
        serde_json::from_str(body).expect("the request is JSON")
    }

    /// Asserts the execution is parked on its Task: running, submitted, not yet answered.
    pub(super) async fn assert_waiting(&self, execution: &str) {
        assert_eq!(
            self.describe(execution).await.status(),
            &ExecutionStatus::Running
        );
        let types: Vec<HistoryEventType> = self
            .history(execution)
            .await
            .iter()
            .map(|e| e.r#type().clone())
            .collect();
        assert!(
            types.contains(&HistoryEventType::TaskSubmitted),
            "{types:?}"
        );
        for answered in [
            HistoryEventType::TaskSucceeded,
            HistoryEventType::TaskFailed,
            HistoryEventType::TaskTimedOut,
        ] {
            assert!(!types.contains(&answered), "{types:?}");
        }
    }
}

pub(super) fn output(done: &DescribeExecutionOutput) -> Value {
    serde_json::from_str(done.output().expect("an output")).expect("output JSON")
}

/// What AWS answers for a closed task (`TaskTimedOut`) or moto for an ended execution
/// (`InvalidToken`): either way final, nothing to retry.
pub(super) fn assert_final(answer: Result<(), TokenError>) {
    assert!(
        matches!(answer, Err(TokenError::Closed | TokenError::Unknown)),
        "{answer:?}"
    );
}
