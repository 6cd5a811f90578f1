//! Signal rows through the processor: a payment result resumes the execution waiting in
//! RequestPayment (SendTaskSuccess), a cancellation finds the token of the shipment Task its
//! execution waits in from the history moto keeps and fails it with OrderCancelled, so the
//! saga compensates into MarkCancelled; a signal for a task that is gone is done, one Step
//! Functions cannot be reached for is reported for retry.
//!
//! moto's history does carry the resolved `Parameters` of `TaskScheduled` (the Lambda payload
//! with `taskToken`, the SQS `MessageBody` with it), so the cancellation's token search runs
//! here against moto's own history, not a fixture.

use super::{Aws, aws, create_order, failures, listed, ports_on, starter};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use orders_aws::lambda::stream::handle_batch;
use orders_aws::tables::attrs;
use orders_domain::lifecycle::{ORDER_CANCELLED, TaskSignal};
use orders_domain::{OrderId, SignalEvent};
use orders_test_support::{moto_stack, streams};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(60);

/// Writes a signal row to the outbox table as the stores do (its id, order, the event JSON).
async fn put_signal(aws: &Aws, order: OrderId, signal: TaskSignal) -> SignalEvent {
    let event = SignalEvent::new(chrono::Utc::now(), order, signal);
    aws.stack
        .dynamodb
        .raw
        .put_item()
        .table_name(&aws.stack.dynamodb.names.outbox)
        .item(attrs::outbox::ID, AttributeValue::S(event.id.to_string()))
        .item(attrs::outbox::ORDER, AttributeValue::S(order.to_string()))
        .item(
            attrs::outbox::EVENT,
            AttributeValue::S(serde_json::to_string(&event).expect("serializable")),
        )
        .item(
            attrs::outbox::CREATED_AT,
            AttributeValue::S(event.time.to_rfc3339()),
        )
        .send()
        .await
        .expect("put the signal row");
    event
}

/// The stream records not among `seen` (by sequence number), which are then marked seen.
async fn new_records(aws: &Aws, seen: &mut BTreeSet<String>) -> Vec<Value> {
    streams::stream_records(&aws.stack.moto.endpoint, &aws.stack.stream_arn)
        .await
        .into_iter()
        .filter(|r| {
            let seq = r["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default();
            seen.insert(seq.to_owned())
        })
        .collect()
}

async fn deliver(aws: &Aws, records: &[Value]) -> Vec<String> {
    let event = streams::lambda_event(records, &aws.stack.stream_arn);
    failures(&handle_batch(event, starter(aws, &aws.state_machine_arn)).await)
}

/// The execution's ARN, once it exists.
async fn execution_arn(aws: &Aws, name: &str) -> String {
    listed(aws)
        .await
        .into_iter()
        .find(|e| e.name() == name)
        .map(|e| e.execution_arn().to_owned())
        .expect("the execution was started")
}

/// Waits (bounded) until the execution's history has an event `want` after index `after`;
/// returns the history.
async fn wait_history(
    aws: &Aws,
    arn: &str,
    want: impl Fn(&aws_sdk_sfn::types::HistoryEvent) -> bool,
) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let history = aws
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .send()
            .await
            .expect("history")
            .events()
            .to_vec();
        if history.iter().any(&want) {
            return history;
        }
        assert!(Instant::now() < deadline, "{arn}: awaited event never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ended(
    aws: &Aws,
    arn: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let d = aws
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("describe");
        if d.status() != &ExecutionStatus::Running {
            return d;
        }
        assert!(Instant::now() < deadline, "{arn} still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_payment_signal_resumes_the_saga_and_a_cancel_fails_the_task_it_waits_in() {
    let aws = aws().await;
    let mut seen = BTreeSet::new();
    let order = create_order(&aws, "signal-a").await;
    let created = new_records(&aws, &mut seen).await;
    assert_eq!(deliver(&aws, &created).await, Vec::<String>::new());
    let name = super::event_of(&created[0]).id.to_string();
    let arn = execution_arn(&aws, &name).await;

    // Waiting in RequestPayment: the token the step Lambda was handed.
    let history = wait_history(&aws, &arn, |e| {
        e.r#type() == &HistoryEventType::TaskSubmitted
    })
    .await;
    let payload = history
        .iter()
        .filter_map(|e| e.task_scheduled_event_details())
        .map(|d| serde_json::from_str::<Value>(d.parameters()).expect("parameters"))
        .find(|p| p["Payload"]["step"] == "RequestPayment")
        .expect("RequestPayment was scheduled");
    let token = payload["Payload"]["taskToken"]
        .as_str()
        .expect("token")
        .to_owned();

    // The webhook's signal, as a real stream record: the execution moves on to the warehouse.
    let payment = json!({"paymentId": "pay_x", "status": "SUCCEEDED"});
    put_signal(
        &aws,
        order,
        TaskSignal::Succeed {
            token: token.clone(),
            output: payment.clone(),
        },
    )
    .await;
    let signal = new_records(&aws, &mut seen).await;
    assert_eq!(signal.len(), 1);
    assert_eq!(deliver(&aws, &signal).await, Vec::<String>::new());
    let request = moto_stack::take_message(&aws.stack.moto.endpoint, &aws.queue_url, PATIENCE)
        .await
        .expect("the saga moved on to PrepareShipment");
    let body: Value = serde_json::from_str(request["Body"].as_str().unwrap()).unwrap();
    assert_eq!(body["orderId"], json!(order));

    // The customer cancels while the parcel is packed: the cancel signal names only the
    // execution; the processor finds the shipment Task's token in its history.
    put_signal(
        &aws,
        order,
        TaskSignal::CancelWaiting {
            execution: name.clone(),
            reason: Some("changed my mind".into()),
        },
    )
    .await;
    let cancel = new_records(&aws, &mut seen).await;
    assert_eq!(deliver(&aws, &cancel).await, Vec::<String>::new());
    let done = ended(&aws, &arn).await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded, "compensated");
    let output: Value = serde_json::from_str(done.output().unwrap()).unwrap();
    assert_eq!(output["payment"], payment, "the payment signal's output");
    assert_eq!(output["error"]["Error"], ORDER_CANCELLED);
    let history = wait_history(&aws, &arn, |_| true).await;
    assert!(
        history
            .iter()
            .filter_map(|e| e.state_entered_event_details())
            .any(|d| d.name() == "MarkCancelled"),
        "the saga ended in the MarkCancelled branch"
    );

    // Delivered again (at-least-once) after the execution ended: nothing waits, done.
    let mut again = signal.clone();
    again.extend(cancel.iter().cloned());
    assert_eq!(deliver(&aws, &again).await, Vec::<String>::new());
    // A cancellation for a saga not started yet is done too: its steps see the request.
    put_signal(
        &aws,
        order,
        TaskSignal::CancelWaiting {
            execution: "never-started".into(),
            reason: None,
        },
    )
    .await;
    let orphan = new_records(&aws, &mut seen).await;
    assert_eq!(deliver(&aws, &orphan).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_signal_step_functions_cannot_take_now_is_reported_for_retry() {
    let aws = aws().await;
    let mut seen = BTreeSet::new();
    let order = create_order(&aws, "signal-b").await;
    new_records(&aws, &mut seen).await;
    put_signal(
        &aws,
        order,
        TaskSignal::Fail {
            token: "tok".into(),
            error: "PaymentDeclined".into(),
            cause: "declined".into(),
        },
    )
    .await;
    put_signal(
        &aws,
        order,
        TaskSignal::CancelWaiting {
            execution: "e-1".into(),
            reason: None,
        },
    )
    .await;
    let records = new_records(&aws, &mut seen).await;
    assert_eq!(records.len(), 2);
    let sequences: Vec<String> = records
        .iter()
        .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned())
        .collect();

    // Step Functions unreachable (a closed loopback port): both are reported, in order.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let sdk = aws.stack.moto.sdk_config().await;
    let down = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::config::Builder::from(&sdk)
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .retry_config(aws_sdk_sfn::config::retry::RetryConfig::disabled())
            .build(),
    );
    let event = streams::lambda_event(&records, &aws.stack.stream_arn);
    let response = handle_batch(event, ports_on(&aws, &down, &aws.state_machine_arn)).await;
    assert_eq!(failures(&response), sequences);

    // Reachable, the same records are done: the token is unknown, the execution does not exist.
    assert_eq!(deliver(&aws, &records).await, Vec::<String>::new());
}
