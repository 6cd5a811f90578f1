//! The AWS runtime on moto for the tests that follow an order past the API (the stream
//! processor, the requests one order costs): the DynamoDB stack of [`crate::dynamodb`], the
//! ARN of the outbox's stream the processor is fed from, the warehouse queue on moto's SQS, and
//! the saga's state machine as it is deployed, every Task on the step function and
//! PrepareShipment on that queue.
//!
//! The tests create the state machines themselves, from [`saga_definition`] or a definition
//! of their own, on a [`StepFunctions`]: the client with the calls every such test makes
//! (create, start, describe, wait for the end, read the history), each wait bounded.

use crate::dynamodb::{self, Stack};
use aws_sdk_dynamodb::config::Builder;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use orders_aws::moto::MotoSession;
use orders_workflow::asl;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The one function every Task of the deployed saga invokes. moto never looks it up (it echoes
/// a Task's input), so it need not exist.
pub const STEPS_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:orders-steps";
/// The state machine's name as deployed.
pub const SAGA_NAME: &str = "orders-saga";
/// The role the state machine runs as; moto checks only its form.
pub const SAGA_ROLE: &str = "arn:aws:iam::123456789012:role/orders-saga";

pub struct MotoStack {
    /// Held for the whole test: the emulator's state is global (see `orders_aws::moto`).
    pub moto: MotoSession,
    pub dynamodb: Stack,
    pub stream_arn: String,
}

/// Takes this process's emulator, creates the tables named `<prefix><table>` with the
/// catalogue seeded, the store on a client that `configure` may extend (as
/// [`dynamodb::stack`] does), and reads the outbox stream's ARN.
pub async fn stack(prefix: &str, configure: impl FnOnce(Builder) -> Builder) -> MotoStack {
    let moto = orders_aws::moto::session().await;
    let dynamodb = dynamodb::stack(&moto, prefix, configure).await;
    let stream_arn = dynamodb
        .raw
        .describe_table()
        .table_name(&dynamodb.names.outbox)
        .send()
        .await
        .unwrap()
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("the outbox has a stream")
        .to_owned();
    MotoStack {
        moto,
        dynamodb,
        stream_arn,
    }
}

/// The warehouse queue's name as deployed (without the stack prefix).
pub const WAREHOUSE_QUEUE: &str = "orders-warehouse";

/// One SQS call in the JSON protocol (no SQS SDK in the workspace).
pub async fn sqs(endpoint: &str, action: &str, body: serde_json::Value) -> serde_json::Value {
    crate::aws_json::call(endpoint, "sqs", &format!("AmazonSQS.{action}"), &body).await
}

/// Creates the warehouse queue on moto's SQS; returns its URL.
pub async fn create_warehouse_queue(endpoint: &str) -> String {
    let created = sqs(
        endpoint,
        "CreateQueue",
        serde_json::json!({"QueueName": WAREHOUSE_QUEUE}),
    )
    .await;
    created["QueueUrl"]
        .as_str()
        .expect("a queue URL")
        .to_owned()
}

/// The next message on `queue` (long polls, at most `patience`), deleted once read; `None`
/// when none came in time.
pub async fn take_message(
    endpoint: &str,
    queue: &str,
    patience: std::time::Duration,
) -> Option<serde_json::Value> {
    let deadline = std::time::Instant::now() + patience;
    while std::time::Instant::now() < deadline {
        let got = sqs(
            endpoint,
            "ReceiveMessage",
            serde_json::json!({"QueueUrl": queue, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 1}),
        )
        .await;
        if let Some(message) = got["Messages"].as_array().and_then(|m| m.first()) {
            sqs(
                endpoint,
                "DeleteMessage",
                serde_json::json!({"QueueUrl": queue, "ReceiptHandle": message["ReceiptHandle"]}),
            )
            .await;
            return Some(message.clone());
        }
    }
    None
}

/// The saga as deployed on moto: the state machine and the queue PrepareShipment sends to.
pub struct Saga {
    pub arn: String,
    pub queue_url: String,
}

/// Creates the warehouse queue and the saga's state machine on `sfn` as deployed.
pub async fn create_saga(sfn: &aws_sdk_sfn::Client, endpoint: &str) -> Saga {
    let queue_url = create_warehouse_queue(endpoint).await;
    let arn = sfn
        .create_state_machine()
        .name(SAGA_NAME)
        .role_arn(SAGA_ROLE)
        .definition(saga_definition(&queue_url))
        .send()
        .await
        .expect("moto accepts the substituted state machine")
        .state_machine_arn()
        .to_owned();
    Saga { arn, queue_url }
}

/// The substitution name of the warehouse queue's URL.
pub const WAREHOUSE_QUEUE_SUBSTITUTION: &str = "WarehouseQueueUrl";

/// The saga's definition with its function ARNs and the queue URL substituted as the
/// deployment does.
pub fn saga_definition(queue_url: &str) -> String {
    let values: BTreeMap<String, String> = asl::substitution_names(asl::DEFINITION)
        .into_iter()
        .map(|name| {
            let value = if name == WAREHOUSE_QUEUE_SUBSTITUTION {
                queue_url
            } else {
                STEPS_ARN
            };
            (name, value.to_owned())
        })
        .collect();
    asl::substitute(asl::DEFINITION, &values).expect("every placeholder has a value")
}

/// moto's Step Functions as the tests drive it. Holds no emulator: the caller keeps its
/// [`MotoSession`] for the test's length.
pub struct StepFunctions {
    pub client: aws_sdk_sfn::Client,
    /// Bounds the wait for an execution to end; the wait itself ends on the status.
    pub patience: Duration,
}

impl StepFunctions {
    pub async fn new(moto: &MotoSession, patience: Duration) -> StepFunctions {
        StepFunctions {
            client: aws_sdk_sfn::Client::new(&moto.sdk_config().await),
            patience,
        }
    }

    /// Creates the state machine `name` of `definition` (its JSON text, or a JSON value) to
    /// run as [`SAGA_ROLE`]; its ARN.
    pub async fn machine(&self, name: &str, definition: impl std::fmt::Display) -> String {
        self.client
            .create_state_machine()
            .name(name)
            .definition(definition.to_string())
            .role_arn(SAGA_ROLE)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateStateMachine: {}", orders_aws::sdk::describe(&e)))
            .state_machine_arn()
            .to_owned()
    }

    /// Starts the execution `name` of `machine` on `input`; its ARN.
    pub async fn start(&self, machine: &str, name: &str, input: &serde_json::Value) -> String {
        self.client
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

    pub async fn describe(&self, execution: &str) -> DescribeExecutionOutput {
        self.client
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .expect("describe execution")
    }

    /// The execution once it has ended, polled for within `patience`.
    pub async fn ended(&self, execution: &str) -> DescribeExecutionOutput {
        let deadline = Instant::now() + self.patience;
        loop {
            let d = self.describe(execution).await;
            if d.status() != &ExecutionStatus::Running {
                return d;
            }
            assert!(Instant::now() < deadline, "{execution} still running");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The execution's events so far, oldest first: one page of up to 1000, more than any
    /// test's execution has.
    pub async fn history(&self, execution: &str) -> Vec<HistoryEvent> {
        self.client
            .get_execution_history()
            .execution_arn(execution)
            .max_results(1000)
            .send()
            .await
            .expect("execution history")
            .events()
            .to_vec()
    }
}
