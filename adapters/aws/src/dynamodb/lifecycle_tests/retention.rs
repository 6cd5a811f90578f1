//! Retention on DynamoDB: every outbox item carries `expiration`, its creation plus the
//! retention of the store that put it (the API's `order.created`, webhook event and signal,
//! the steps' events), and the outbox table's TTL is on for that attribute. moto never
//! expires TTL items, so the deletion itself is DynamoDB's to do and is not seen here: this
//! checks the attribute on every item and the table's TTL as moto answers
//! DescribeTimeToLive. That the processor ignores the REMOVE records of those deletions is
//! `lambda::stream`'s test.

use super::{AWAITING, PAID, fx, webhook};
use crate::dynamodb::attr;
use crate::dynamodb::{DynamoStepStore, DynamoStore, OutboxRetention};
use crate::tables::attrs::outbox as xa;
use aws_sdk_dynamodb::types::TimeToLiveStatus;
use orders_domain::lifecycle::{PaymentResult, WebhookOutcome};
use orders_domain::store::OrderStore;
use orders_domain::time::parse_ts;

const DAY: i64 = 86_400;

#[tokio::test]
async fn every_outbox_item_expires_its_retention_after_its_creation() {
    let mut fx = fx().await;
    fx.orders = DynamoStore::new(fx.raw.clone(), fx.names.clone())
        .with_outbox_retention(OutboxRetention::days(2));
    fx.steps = DynamoStepStore::new(fx.raw.clone(), fx.names.clone())
        .with_outbox_retention(OutboxRetention::days(1));
    // order.created by the API's store; order.payment_processed by the steps'.
    let paid = fx.order_at(PAID).await;
    // The webhook's order.payment_processed and its signal, by the API's store.
    let awaiting = fx.order_at(AWAITING).await;
    fx.request(awaiting, "tok").await;
    let w = webhook(awaiting, "msg_paid", PaymentResult::Succeeded);
    assert_eq!(
        fx.orders.apply_payment_webhook(&w).await,
        Ok(WebhookOutcome::Applied)
    );

    let items = fx
        .raw
        .scan()
        .table_name(&fx.names.outbox)
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for item in items.items() {
        let event: serde_json::Value =
            serde_json::from_str(attr::get_s(item, xa::EVENT).unwrap()).unwrap();
        let kind = event["type"].as_str().unwrap().to_owned();
        let subject = event["subject"].as_str().unwrap().to_owned();
        let created = parse_ts(attr::get_s(item, xa::CREATED_AT).unwrap()).unwrap();
        let by_steps = subject == paid.to_string() && kind == "order.payment_processed";
        let days = if by_steps { 1 } else { 2 };
        let whole_seconds = (created.timestamp_millis() + 999).div_euclid(1000);
        assert_eq!(
            attr::get_n(item, xa::EXPIRATION),
            Ok(whole_seconds + days * DAY),
            "{kind} of {subject}"
        );
        seen.push(kind);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "order.created",
            "order.created",
            "order.payment_processed",
            "order.payment_processed",
            "orders.internal.task-signal",
        ]
    );

    let ttl = fx
        .raw
        .describe_time_to_live()
        .table_name(&fx.names.outbox)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some(xa::EXPIRATION));
}
