//! The handler on ports of the test's own: which records are published, and how a refused
//! publication reaches `batchItemFailures`. moto's PutEvents refuses an entry only when its
//! Source, DetailType or Detail is missing or the Detail is not JSON, none of which a decoded
//! outbox event can produce; so a per-entry failure (EventBridge's `InternalFailure`, a
//! throttled entry) is played here by a publisher that refuses chosen events. The moto tests
//! (tests/aws/processor_streams) cover the real bus, rule and queue, and a failed call.

use super::*;
use chrono::Utc;
use orders_domain::{
    Cents, CloudEvent, Currency, CustomerId, OrderChange, OrderId, OrderStatus, OutboxEvent,
    ProductId, SagaInput, SagaItem, SignalEvent, TaskSignal,
};
use orders_processor::{SignalError, StartError};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Mutex;

#[derive(Default)]
struct Fakes {
    started: Mutex<Vec<String>>,
    signalled: Mutex<usize>,
    /// Every call's events, as handed over.
    published: Mutex<Vec<Vec<Publication>>>,
    /// Events the publisher refuses, by id.
    refuse: BTreeSet<EventId>,
    /// Whether the saga starter fails every start.
    starts_fail: bool,
}

#[async_trait]
impl SagaStarter for Fakes {
    async fn start(&self, name: &str, _: &orders_domain::SagaInput) -> Result<Started, StartError> {
        if self.starts_fail {
            return Err(StartError("ServiceUnavailable".into()));
        }
        self.started.lock().unwrap().push(name.to_owned());
        Ok(Started::New)
    }
}

#[async_trait]
impl TaskSignaller for Fakes {
    async fn deliver(&self, _: &TaskSignal) -> Result<Delivered, SignalError> {
        *self.signalled.lock().unwrap() += 1;
        Ok(Delivered::Applied)
    }
}

#[async_trait]
impl EventPublisher for Fakes {
    async fn publish(&self, events: &[Publication]) -> Vec<Result<(), PublishError>> {
        self.published.lock().unwrap().push(events.to_vec());
        events
            .iter()
            .map(|e| match self.refuse.contains(&e.event_id) {
                true => Err(PublishError(
                    "entry refused: InternalFailure: try again".into(),
                )),
                false => Ok(()),
            })
            .collect()
    }
}

fn ports(fakes: &Arc<Fakes>) -> Ports {
    Ports {
        starter: fakes.clone(),
        signaller: fakes.clone(),
        publisher: fakes.clone(),
    }
}

/// A stream INSERT record of the outbox item holding `event`, at `sequence`.
fn record(sequence: &str, event: &str) -> serde_json::Value {
    json!({
        "eventID": format!("id-{sequence}"),
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "SequenceNumber": sequence,
            "StreamViewType": "NEW_IMAGE",
            "SizeBytes": 1,
            "Keys": {"eventId": {"S": sequence}},
            "NewImage": {"eventId": {"S": sequence}, attrs::outbox::EVENT: {"S": event}},
        },
    })
}

fn batch(records: Vec<serde_json::Value>) -> Event {
    serde_json::from_value(json!({ "Records": records })).expect("a stream event")
}

fn created() -> OutboxEvent {
    let order_id = OrderId::new();
    OutboxEvent::order_created(
        EventId::new(),
        Utc::now(),
        SagaInput {
            order_id,
            customer_id: CustomerId::parse("c-1").unwrap(),
            items: vec![SagaItem {
                product_id: ProductId::parse("laptop").unwrap(),
                quantity: 1,
            }],
            total_cents: Cents(129_999),
            payment_method: "pm_card_visa".into(),
            voucher_code: None,
        },
    )
}

fn changed(status: OrderStatus) -> CloudEvent<OrderChange> {
    let change = OrderChange {
        order_id: OrderId::new(),
        customer_id: CustomerId::parse("c-1").unwrap(),
        status,
        version: 4,
        total_cents: Cents(129_999),
        currency: Currency::Eur,
        failure_reason: None,
        cancellation_reason: None,
        payment_id: None,
        tracking_number: None,
    };
    CloudEvent::order_changed(Utc::now(), change).expect("a published status")
}

fn signal() -> SignalEvent {
    let cancel = TaskSignal::CancelWaiting {
        execution: "e-1".into(),
        reason: None,
    };
    SignalEvent::new(Utc::now(), OrderId::new(), cancel)
}

fn failures(response: &DynamoDbEventResponse) -> Vec<String> {
    let ids = response.batch_item_failures.iter();
    ids.map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn public_events_are_published_in_one_hand_over_as_written_and_signals_never() {
    let fakes = Arc::new(Fakes::default());
    let (order, shipped, signal) = (created(), changed(OrderStatus::Shipped), signal());
    // The text as the API wrote it, which need not be what serde would write today.
    let shipped_text = format!(" {} ", shipped.to_json());
    let event = batch(vec![
        record("1", &order.to_json()),
        record("2", &signal.to_json()),
        record("3", &shipped_text),
    ]);
    let response = handle_batch(event, ports(&fakes)).await;
    assert!(failures(&response).is_empty(), "{response:?}");

    assert_eq!(*fakes.started.lock().unwrap(), [order.id.to_string()]);
    assert_eq!(*fakes.signalled.lock().unwrap(), 1);
    let calls = fakes.published.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the batch's events go in one hand-over");
    let published: Vec<(EventId, EventType, &str)> = calls[0]
        .iter()
        .map(|p| (p.event_id, p.event_type, p.detail.as_str()))
        .collect();
    let created_text = order.to_json();
    assert_eq!(
        published,
        [
            (order.id, EventType::OrderCreated, created_text.as_str()),
            (shipped.id, EventType::OrderShipped, shipped_text.as_str()),
        ],
        "order.created and order.shipped, in record order; the signal is not public"
    );
    assert_eq!(calls[0][1].time, shipped.time);
}

#[tokio::test]
async fn a_refused_entry_fails_exactly_its_record_even_when_its_saga_started() {
    let (order, paid, cancelled) = (
        created(),
        changed(OrderStatus::PaymentProcessed),
        changed(OrderStatus::Cancelled),
    );
    let fakes = Arc::new(Fakes {
        refuse: BTreeSet::from([order.id, cancelled.id]),
        ..Fakes::default()
    });
    let event = batch(vec![
        record("10", &order.to_json()),
        record("11", &paid.to_json()),
        record("12", &cancelled.to_json()),
        record("13", &signal().to_json()),
    ]);
    let response = handle_batch(event, ports(&fakes)).await;
    assert_eq!(failures(&response), ["10", "12"]);
    assert_eq!(
        fakes.started.lock().unwrap().len(),
        1,
        "the saga started; the retry starts it again, idempotently"
    );
}

#[tokio::test]
async fn a_record_whose_start_failed_is_not_published() {
    let fakes = Arc::new(Fakes {
        starts_fail: true,
        ..Fakes::default()
    });
    let completed = changed(OrderStatus::Completed);
    let event = batch(vec![
        record("20", &created().to_json()),
        record("21", &completed.to_json()),
    ]);
    let response = handle_batch(event, ports(&fakes)).await;
    assert_eq!(failures(&response), ["20"]);
    let calls = fakes.published.lock().unwrap().clone();
    let ids: Vec<EventId> = calls.concat().iter().map(|p| p.event_id).collect();
    assert_eq!(ids, [completed.id], "only what was acted on is published");
}

#[tokio::test]
async fn a_batch_without_public_events_publishes_nothing() {
    let fakes = Arc::new(Fakes::default());
    let mut modify = record("30", &created().to_json());
    modify["eventName"] = json!("MODIFY");
    let event = batch(vec![modify, record("31", &signal().to_json())]);
    let response = handle_batch(event, ports(&fakes)).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert!(fakes.published.lock().unwrap().is_empty());
}

/// What DynamoDB's TTL deletion of an outbox item puts on a NEW_IMAGE stream: a REMOVE
/// record by the DynamoDB service, with the keys and no new image.
fn expired(sequence: &str) -> serde_json::Value {
    let mut removed = record(sequence, "{}");
    removed["eventName"] = json!("REMOVE");
    removed["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    removed["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("NewImage");
    removed
}

#[tokio::test]
async fn the_removals_of_expired_outbox_items_start_signal_and_publish_nothing() {
    let fakes = Arc::new(Fakes::default());
    let mut with_image = record("41", &changed(OrderStatus::Completed).to_json());
    with_image["eventName"] = json!("REMOVE");
    let event = batch(vec![expired("40"), with_image, expired("42")]);
    let response = handle_batch(event, ports(&fakes)).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert!(fakes.started.lock().unwrap().is_empty());
    assert_eq!(*fakes.signalled.lock().unwrap(), 0);
    assert!(fakes.published.lock().unwrap().is_empty());
}

#[test]
fn only_a_state_machine_arn_is_accepted() {
    let good = "arn:aws:states:us-east-1:123456789012:stateMachine:orders-saga";
    assert_eq!(parse_state_machine_arn(good).unwrap(), good);
    for bad in [
        "",
        "orders-saga",
        "arn:aws:lambda:us-east-1:123456789012:function:orders-steps",
        "arn:aws:states:us-east-1:123456789012:execution:orders-saga:x",
        "arn:aws:states:us-east-1::stateMachine:orders-saga",
    ] {
        assert!(parse_state_machine_arn(bad).is_err(), "{bad:?}");
    }
}
