//! The harness of the token tests: moto's Step Functions and SQS (the latter over its JSON
//! protocol, no SQS SDK in the workspace), one state machine per test, and bounded waits for
//! the execution's events.

use aws_sdk_sfn::Client;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use orders_aws::moto::MotoSession;
use orders_aws::sfn::{TaskTokens, TokenError};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/orders-saga";
/// Bounds every wait on the emulator; the waits themselves end on the event.
pub(super) const PATIENCE: Duration = Duration::from_secs(30);

pub(super) struct Rig {
    moto: MotoSession,
    sfn: Client,
    pub(super) tokens: TaskTokens,
    /// The warehouse queue's URL.
    pub(super) queue: String,
}

pub(super) async fn rig() -> Rig {
    let moto = orders_aws::moto::session().await;
    let sdk = moto.sdk_config().await;
    let mut rig = Rig {
        sfn: Client::new(&sdk),
        tokens: TaskTokens::new(Client::new(&sdk)),
        moto,
        queue: String::new(),
    };
    let created = rig
        .sqs("CreateQueue", json!({"QueueName": "warehouse"}))
        .await;
    rig.queue = created["QueueUrl"].as_str().expect("queue URL").to_owned();
    rig
}

impl Rig {
    /// One SQS call in the JSON protocol. The authorization header only names the service for
    /// moto's routing; moto does not check signatures.
    async fn sqs(&self, action: &str, body: Value) -> Value {
        let target = format!("AmazonSQS.{action}");
        orders_test_support::aws_json::call(&self.moto.endpoint, "sqs", &target, &body).await
    }

    /// The next warehouse request, taken off the queue (long polls, bounded).
    pub(super) async fn next_request(&self) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self
                .sqs(
                    "ReceiveMessage",
                    json!({"QueueUrl": self.queue, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 1}),
                )
                .await;
            if let Some(message) = got["Messages"].as_array().and_then(|m| m.first()) {
                self.sqs(
                    "DeleteMessage",
                    json!({"QueueUrl": self.queue, "ReceiptHandle": message["ReceiptHandle"]}),
                )
                .await;
                let body = message["Body"].as_str().expect("message body");
                return serde_json::from_str(body).expect("the request is JSON");
            }
            assert!(
                Instant::now() < deadline,
                "no warehouse request within {PATIENCE:?}"
            );
        }
    }

    pub(super) async fn machine(&self, name: &str, definition: &Value) -> String {
        self.sfn
            .create_state_machine()
            .name(name)
            .role_arn(ROLE_ARN)
            .definition(definition.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateStateMachine: {}", orders_aws::sdk::describe(&e)))
            .state_machine_arn()
            .to_owned()
    }

    pub(super) async fn start(&self, machine: &str, name: &str, input: &Value) -> String {
        self.sfn
            .start_execution()
            .state_machine_arn(machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .expect("start execution")
            .execution_arn()
            .to_owned()
    }

    async fn describe(&self, execution: &str) -> DescribeExecutionOutput {
        self.sfn
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .expect("describe execution")
    }

    /// The execution once it has ended, waited for with bounded polling.
    pub(super) async fn ended(&self, execution: &str) -> DescribeExecutionOutput {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let d = self.describe(execution).await;
            if d.status() != &ExecutionStatus::Running {
                return d;
            }
            assert!(Instant::now() < deadline, "{execution} still running");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(super) async fn history(&self, execution: &str) -> Vec<HistoryEvent> {
        self.sfn
            .get_execution_history()
            .execution_arn(execution)
            .max_results(1000)
            .send()
            .await
            .expect("execution history")
            .events()
            .to_vec()
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
