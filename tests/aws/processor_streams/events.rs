//! The public events, from the outbox's real stream records to SQS through real EventBridge
//! rules on moto: a bus, the template's example rule (its pattern read from
//! infra/template.yaml) to one queue, and a rule on the publisher's Source alone to another,
//! which shows what was published at all (a `voucher.issued` the example rule leaves out, and
//! no signal). moto's PutEvents sends to the targets before it answers, so once the batch is
//! handled every message is already in its queue: an empty queue then is an absence, not a
//! race.

use super::{Aws, aws, create_order, event_of, failures, listed, ports_publishing, publisher};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use orders_aws::eventbridge::SOURCE;
use orders_aws::lambda::stream::handle_batch;
use orders_aws::tables::attrs;
use orders_domain::{
    Cents, CloudEvent, Currency, CustomerId, OrderChange, OrderId, OrderStatus, SignalEvent,
    TaskSignal, VoucherCode, VoucherIssued,
};
use orders_test_support::{moto_stack, streams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The bus and the queues its two rules send to.
pub(super) struct Bus {
    pub name: String,
    /// The template's example rule: the `order.*` types.
    pub example_queue: String,
    /// Every event of Source [`SOURCE`].
    pub all_queue: String,
}

/// The template's example rule's pattern, as the template writes it.
fn template_pattern() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("the template");
    let template: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
    let pattern = &template["Resources"]["EventsExampleRule"]["Properties"]["EventPattern"];
    let pattern = serde_json::to_value(pattern).expect("a plain mapping");
    assert!(pattern.is_object(), "the rule has a pattern: {pattern}");
    pattern
}

/// Creates a queue; its URL and ARN.
async fn queue(endpoint: &str, name: &str) -> (String, String) {
    let created = moto_stack::sqs(endpoint, "CreateQueue", json!({"QueueName": name})).await;
    let url = created["QueueUrl"]
        .as_str()
        .expect("a queue URL")
        .to_owned();
    let attributes = json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]});
    let got = moto_stack::sqs(endpoint, "GetQueueAttributes", attributes).await;
    let arn = got["Attributes"]["QueueArn"].as_str().expect("an ARN");
    (url, arn.to_owned())
}

async fn rule(
    client: &aws_sdk_eventbridge::Client,
    bus: &str,
    name: &str,
    pattern: Value,
    queue_arn: &str,
) {
    client
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("PutRule");
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(queue_arn)
        .build()
        .expect("a target");
    client
        .put_targets()
        .rule(name)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .expect("PutTargets");
}

pub(super) async fn create_bus(client: &aws_sdk_eventbridge::Client, endpoint: &str) -> Bus {
    let name = "proc-events".to_owned();
    client
        .create_event_bus()
        .name(&name)
        .send()
        .await
        .expect("CreateEventBus");
    let (example_queue, example_arn) = queue(endpoint, "proc-order-events").await;
    let (all_queue, all_arn) = queue(endpoint, "proc-all-events").await;
    rule(
        client,
        &name,
        "proc-example",
        template_pattern(),
        &example_arn,
    )
    .await;
    rule(
        client,
        &name,
        "proc-all",
        json!({"source": [SOURCE]}),
        &all_arn,
    )
    .await;
    Bus {
        name,
        example_queue,
        all_queue,
    }
}

/// Writes a public event's outbox item as the stores do; the text it wrote.
async fn put_event<D: serde::Serialize>(aws: &Aws, event: &CloudEvent<D>) -> String {
    let text = event.to_json();
    aws.stack
        .dynamodb
        .raw
        .put_item()
        .table_name(&aws.stack.dynamodb.names.outbox)
        .item(attrs::outbox::ID, AttributeValue::S(event.id.to_string()))
        .item(
            attrs::outbox::ORDER,
            AttributeValue::S(event.subject.to_string()),
        )
        .item(attrs::outbox::EVENT, AttributeValue::S(text.clone()))
        .item(
            attrs::outbox::CREATED_AT,
            AttributeValue::S(event.time.to_rfc3339()),
        )
        .send()
        .await
        .expect("put the event row");
    text
}

fn change(order: OrderId, status: OrderStatus, version: i64) -> CloudEvent<OrderChange> {
    let change = OrderChange {
        order_id: order,
        customer_id: CustomerId::parse("stream-events").unwrap(),
        status,
        version,
        total_cents: Cents(129_999),
        currency: Currency::Eur,
        failure_reason: (status == OrderStatus::Failed).then(|| "PaymentDeclined".into()),
        cancellation_reason: None,
        payment_id: None,
        tracking_number: (status == OrderStatus::Shipped).then(|| "TRK-1".into()),
    };
    CloudEvent::order_changed(Utc::now(), change).expect("a published status")
}

/// A signal for an execution that does not exist: delivered as stale, done.
fn stale_signal(order: OrderId) -> SignalEvent {
    let cancel = TaskSignal::CancelWaiting {
        execution: "no-such-execution".into(),
        reason: None,
    };
    SignalEvent::new(Utc::now(), order, cancel)
}

/// Every message on `queue` now, each EventBridge event by its detail's CloudEvent id.
async fn drain(aws: &Aws, queue: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let endpoint = &aws.stack.moto.endpoint;
    while let Some(message) =
        moto_stack::take_message(endpoint, queue, Duration::from_secs(1)).await
    {
        let body: Value = serde_json::from_str(message["Body"].as_str().unwrap()).unwrap();
        let id = body["detail"]["id"]
            .as_str()
            .expect("a CloudEvent id")
            .to_owned();
        assert!(out.insert(id, body).is_none(), "one message per event");
    }
    out
}

/// The EventBridge event carries the CloudEvent as written, under its type and time.
fn assert_delivered(arrived: &Value, written: &str) {
    let cloud: Value = serde_json::from_str(written).unwrap();
    assert_eq!(
        arrived["detail"], cloud,
        "the detail is the CloudEvent written"
    );
    assert_eq!(arrived["detail-type"], cloud["type"]);
    assert_eq!(arrived["source"], SOURCE);
    let time: DateTime<Utc> = cloud["time"].as_str().unwrap().parse().unwrap();
    // EventBridge keeps whole seconds.
    assert_eq!(
        arrived["time"],
        time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
}

#[tokio::test]
async fn public_events_reach_the_queues_through_real_rules_and_a_signal_is_not_published() {
    let aws = aws().await;
    let created_order = create_order(&aws, "stream-events").await;
    let mut written: BTreeMap<String, (&str, String)> = BTreeMap::new();
    let mut record =
        |id: String, kind: &'static str, text: String| written.insert(id, (kind, text));
    // More public events than one PutEvents call takes.
    let (b, c, d) = (OrderId::new(), OrderId::new(), OrderId::new());
    let changes = [
        change(created_order, OrderStatus::PaymentProcessed, 2),
        change(created_order, OrderStatus::Shipped, 3),
        change(created_order, OrderStatus::Completed, 4),
        change(b, OrderStatus::PaymentProcessed, 2),
        change(b, OrderStatus::Shipped, 3),
        change(b, OrderStatus::Completed, 4),
        change(c, OrderStatus::Cancelled, 2),
        change(d, OrderStatus::PaymentProcessed, 2),
        change(d, OrderStatus::Failed, 3),
        change(OrderId::new(), OrderStatus::Cancelled, 3),
    ];
    for event in &changes {
        let text = put_event(&aws, event).await;
        record(event.id.to_string(), "order", text);
    }
    let voucher = CloudEvent::voucher_issued(
        Utc::now(),
        5,
        VoucherIssued {
            order_id: created_order,
            customer_id: CustomerId::parse("stream-events").unwrap(),
            voucher_code: VoucherCode::parse("VOUCHER-STREAM-1").unwrap(),
            discount_cents: Cents(1_000),
        },
    );
    let text = put_event(&aws, &voucher).await;
    record(voucher.id.to_string(), "voucher", text);
    let signal = stale_signal(created_order);
    put_event(&aws, &signal).await;

    let records = streams::stream_records(&aws.stack.moto.endpoint, &aws.stack.stream_arn).await;
    assert_eq!(records.len(), 13, "one INSERT per outbox item");
    let created = event_of(&records[0]);
    let created_text = records[0]["dynamodb"]["NewImage"][attrs::outbox::EVENT]["S"]
        .as_str()
        .unwrap()
        .to_owned();
    record(created.id.to_string(), "order", created_text);

    let event = streams::lambda_event(&records, &aws.stack.stream_arn);
    let response = handle_batch(event, super::starter(&aws, &aws.state_machine_arn)).await;
    assert!(failures(&response).is_empty(), "{response:?}");

    let names: Vec<String> = listed(&aws)
        .await
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    assert_eq!(
        names,
        [created.id.to_string()],
        "order.created started its saga"
    );

    let example = drain(&aws, &aws.bus.example_queue).await;
    let all = drain(&aws, &aws.bus.all_queue).await;
    let ids = |kinds: &[&str]| -> BTreeSet<String> {
        let w = written.iter().filter(|(_, (k, _))| kinds.contains(k));
        w.map(|(id, _)| id.clone()).collect()
    };
    assert_eq!(
        example.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&["order"]),
        "the example rule takes the order.* events"
    );
    assert_eq!(
        all.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&["order", "voucher"]),
        "every public event was published, the signal not"
    );
    assert!(!all.contains_key(&signal.id.to_string()));
    for (id, (_, text)) in &written {
        assert_delivered(&all[id], text);
        if let Some(arrived) = example.get(id) {
            assert_delivered(arrived, text);
        }
    }
}

#[tokio::test]
async fn a_failed_put_events_fails_the_public_records_only_and_their_retry_publishes_them() {
    let aws = aws().await;
    let order = create_order(&aws, "stream-unpublished").await;
    let shipped = change(order, OrderStatus::Shipped, 3);
    let shipped_text = put_event(&aws, &shipped).await;
    put_event(&aws, &stale_signal(order)).await;
    let records = streams::stream_records(&aws.stack.moto.endpoint, &aws.stack.stream_arn).await;
    assert_eq!(records.len(), 3);
    let sequence = |i: usize| {
        records[i]["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // A bus that does not exist: moto refuses the whole PutEvents call.
    let nowhere = ports_publishing(
        &aws.sfn,
        &aws.state_machine_arn,
        publisher(&aws, "no-such-bus"),
    );
    let event = streams::lambda_event(&records, &aws.stack.stream_arn);
    let response = handle_batch(event, nowhere).await;
    assert_eq!(
        failures(&response),
        [sequence(0), sequence(1)],
        "order.created and order.shipped, not the signal"
    );
    let created = event_of(&records[0]);
    let names: Vec<String> = listed(&aws)
        .await
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    assert_eq!(
        names,
        [created.id.to_string()],
        "the saga started all the same"
    );
    assert!(drain(&aws, &aws.bus.all_queue).await.is_empty());

    // Lambda's retry: the start is recognised, the events are published.
    let retry = streams::lambda_event(&records[..2], &aws.stack.stream_arn);
    let response = handle_batch(retry, super::starter(&aws, &aws.state_machine_arn)).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    assert_eq!(listed(&aws).await.len(), 1);
    let arrived = drain(&aws, &aws.bus.example_queue).await;
    let ids: BTreeSet<String> = arrived.keys().cloned().collect();
    assert_eq!(
        ids,
        BTreeSet::from([created.id.to_string(), shipped.id.to_string()])
    );
    assert_delivered(&arrived[&shipped.id.to_string()], &shipped_text);
}
