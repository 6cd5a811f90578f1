//! The outbox stream processor against moto: real stream records, emitted by moto's DynamoDB
//! Streams after real create-order transactions (POST /orders on the DynamoDB store), handed
//! to the processor as the Lambda event, and the executions moto's Step Functions recorded
//! checked by name and input. Signal rows (the webhook's result, a cancellation) go the same
//! way: written to the outbox table, read back as moto's stream records, delivered by the
//! processor to the execution waiting on moto's Step Functions, which moves on.
//!
//! moto's Lambda echoes its input, so nothing answers the saga's callback Tasks but these
//! signals: the payment token is read from RequestPayment's `TaskScheduled` event (the payload
//! the step Lambda receives on AWS) and put in the signal, as the step's record of it would be.
//!
//! Every public event is published to a bus on moto's EventBridge, whose rules (the template's
//! example rule among them) send to queues on moto's SQS: `events` reads them there.

use orders_test_support::moto_stack::{self, MotoStack};
use orders_test_support::streams;

use axum::body::Body;
use axum::http::Request;
use orders::clock::SystemClock;
use orders::http::{ApiSettings, AppState, router};
use orders_aws::eventbridge::{EventBridgePublisher, EventBusName};
use orders_aws::lambda::stream::{EventPublisher, Ports, handle_batch};
use orders_aws::sfn::{StepFunctionsSignaller, StepFunctionsStarter};
use orders_aws::tables::attrs;
use orders_domain::{OrderId, OutboxEvent};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tower::ServiceExt;

mod events;
mod signals;

struct Aws {
    stack: MotoStack,
    sfn: aws_sdk_sfn::Client,
    state_machine_arn: String,
    queue_url: String,
    eventbridge: aws_sdk_eventbridge::Client,
    bus: events::Bus,
}

async fn aws() -> Aws {
    let stack = moto_stack::stack("proc-", |c| c).await;
    let sdk = stack.moto.sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let saga = moto_stack::create_saga(&sfn, &stack.moto.endpoint).await;
    let eventbridge = aws_sdk_eventbridge::Client::new(&sdk);
    let bus = events::create_bus(&eventbridge, &stack.moto.endpoint).await;
    Aws {
        stack,
        sfn,
        state_machine_arn: saga.arn,
        queue_url: saga.queue_url,
        eventbridge,
        bus,
    }
}

/// Creates an order through the API's router on the DynamoDB store: the real create
/// transaction (order, outbox event, idempotency record) that the stream reports.
async fn create_order(aws: &Aws, customer: &str) -> OrderId {
    let app = router(AppState {
        store: aws.stack.dynamodb.store.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(ApiSettings::default()),
    });
    let body = json!({"customerId": customer, "items": [{"productId": "laptop", "quantity": 1, "price": 1299.99}]});
    let response = app
        .oneshot(
            Request::post("/orders")
                .header("content-type", "application/json")
                .header("x-idempotency-key", format!("key-{customer}"))
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let created: Value = serde_json::from_slice(&bytes).unwrap();
    created["orderId"].as_str().unwrap().parse().unwrap()
}

/// The outbox event a stream record carries.
fn event_of(record: &Value) -> OutboxEvent {
    let text = record["dynamodb"]["NewImage"][attrs::outbox::EVENT]["S"]
        .as_str()
        .expect("the event attribute");
    OutboxEvent::decode(text.as_bytes()).unwrap()
}

/// The state machine's executions, as ListExecutions returns them.
async fn listed(aws: &Aws) -> Vec<aws_sdk_sfn::types::ExecutionListItem> {
    aws.sfn
        .list_executions()
        .state_machine_arn(&aws.state_machine_arn)
        .send()
        .await
        .unwrap()
        .executions
}

async fn executions(aws: &Aws) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in listed(aws).await {
        let desc = aws
            .sfn
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await
            .unwrap();
        let input: Value = serde_json::from_str(desc.input().unwrap_or("null")).unwrap();
        out.insert(e.name().to_owned(), input);
    }
    out
}

/// Ends every running execution (they wait for their payment: nothing answers it here).
async fn stop_all(aws: &Aws) {
    for e in listed(aws).await {
        if e.status() == &aws_sdk_sfn::types::ExecutionStatus::Running {
            aws.sfn
                .stop_execution()
                .execution_arn(e.execution_arn())
                .send()
                .await
                .expect("stop execution");
        }
    }
}

/// The processor's ports on `sfn`, for the state machine `arn`, publishing to the test's bus.
fn ports_on(aws: &Aws, sfn: &aws_sdk_sfn::Client, arn: &str) -> Ports {
    ports_publishing(sfn, arn, publisher(aws, &aws.bus.name))
}

fn ports_publishing(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    publisher: Arc<dyn EventPublisher>,
) -> Ports {
    Ports {
        starter: Arc::new(StepFunctionsStarter::new(sfn.clone(), arn)),
        signaller: Arc::new(StepFunctionsSignaller::new(sfn.clone(), arn)),
        publisher,
    }
}

/// The EventBridge publisher on moto, to the bus `bus`.
fn publisher(aws: &Aws, bus: &str) -> Arc<dyn EventPublisher> {
    let bus = EventBusName::parse(bus).expect("a bus name");
    Arc::new(EventBridgePublisher::new(aws.eventbridge.clone(), bus))
}

fn starter(aws: &Aws, arn: &str) -> Ports {
    ports_on(aws, &aws.sfn, arn)
}

fn failures(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn each_insert_starts_one_execution_named_after_its_event_and_poison_is_reported() {
    let aws = aws().await;
    let orders = [
        create_order(&aws, "stream-a").await,
        create_order(&aws, "stream-b").await,
    ];
    let records = streams::stream_records(&aws.stack.moto.endpoint, &aws.stack.stream_arn).await;
    assert_eq!(records.len(), 2, "one INSERT per outbox item: {records:#?}");
    assert!(records.iter().all(|r| r["eventName"] == "INSERT"));
    let (a, b) = (event_of(&records[0]), event_of(&records[1]));
    let mut ordered = [a.data.order_id, b.data.order_id];
    ordered.sort();
    let mut expected = orders;
    expected.sort();
    assert_eq!(ordered, expected, "the events are the orders just created");

    // A poison record (the event attribute is not a CloudEvent) between the two real ones,
    // and the first record delivered twice in the same batch.
    let mut poison = records[0].clone();
    poison["dynamodb"]["NewImage"][attrs::outbox::EVENT] = json!({"S": "{not an event"});
    poison["dynamodb"]["SequenceNumber"] = json!("999999999999999999999");
    let batch = vec![
        records[0].clone(),
        poison,
        records[1].clone(),
        records[0].clone(),
    ];
    let response = handle_batch(
        streams::lambda_event(&batch, &aws.stack.stream_arn),
        starter(&aws, &aws.state_machine_arn),
    )
    .await;
    assert_eq!(
        failures(&response),
        vec!["999999999999999999999".to_owned()]
    );

    let started = executions(&aws).await;
    let names: BTreeSet<_> = started.keys().cloned().collect();
    assert_eq!(
        names,
        BTreeSet::from([a.id.to_string(), b.id.to_string()]),
        "one execution per event, named by its id"
    );
    assert_eq!(
        started[&a.id.to_string()],
        serde_json::to_value(&a.data).unwrap()
    );
    assert_eq!(
        started[&b.id.to_string()],
        serde_json::to_value(&b.data).unwrap()
    );

    // Lambda delivers the batch again (at-least-once): while the executions run, Step
    // Functions answers the name with the same execution; once they have ended, with
    // ExecutionAlreadyExists. Either way still one per event.
    let running = handle_batch(
        streams::lambda_event(&records, &aws.stack.stream_arn),
        starter(&aws, &aws.state_machine_arn),
    )
    .await;
    assert!(failures(&running).is_empty(), "{running:?}");
    stop_all(&aws).await;
    let again = handle_batch(
        streams::lambda_event(&records, &aws.stack.stream_arn),
        starter(&aws, &aws.state_machine_arn),
    )
    .await;
    assert!(
        failures(&again).is_empty(),
        "a redelivery is a success: {again:?}"
    );
    assert_eq!(executions(&aws).await.len(), 2);
}

#[tokio::test]
async fn a_failed_start_is_reported_never_swallowed_and_non_inserts_are_skipped() {
    let aws = aws().await;
    create_order(&aws, "stream-fail").await;
    let records = streams::stream_records(&aws.stack.moto.endpoint, &aws.stack.stream_arn).await;
    assert_eq!(records.len(), 1);
    let sequence = records[0]["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();

    let missing = aws
        .state_machine_arn
        .replace(moto_stack::SAGA_NAME, "no-such-machine");
    let response = handle_batch(
        streams::lambda_event(&records, &aws.stack.stream_arn),
        starter(&aws, &missing),
    )
    .await;
    assert_eq!(failures(&response), vec![sequence]);

    let mut modify = records[0].clone();
    modify["eventName"] = json!("MODIFY");
    let response = handle_batch(
        streams::lambda_event(&[modify], &aws.stack.stream_arn),
        starter(&aws, &aws.state_machine_arn),
    )
    .await;
    assert!(failures(&response).is_empty());
    assert!(
        executions(&aws).await.is_empty(),
        "a MODIFY record starts nothing"
    );
}
