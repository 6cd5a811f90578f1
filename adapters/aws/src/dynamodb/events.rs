//! The public events on DynamoDB: each one an outbox item, laid out as `order.created` and
//! the signals are (`eventId`, `orderId`, `event`, `createdAt`), put by the same
//! `TransactWriteItems` as the change it reports. The outbox table's stream therefore carries
//! every committed change and none that was cancelled.
//!
//! `sequence` is the version the transaction's conditional order update writes, so a change
//! that loses its condition publishes nothing and the one that wins publishes at the version
//! it made. The snapshot (`OrderChange`) is built from the read the change already makes
//! (its projection includes [`SNAPSHOT`]) and from what the change itself writes, never from a
//! second read. Every event after `order.created` continues the order's stored trace as a
//! child span.

use crate::dynamodb::attr::{AttrError, Item, get_n, get_s, n, opt_s, s};
use crate::tables::attrs::{order as oa, outbox as xa};
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use orders_domain::event::{CloudEvent, EventType, OrderChange, Traceparent};
use orders_domain::time::format_millis as format_ts;
use orders_domain::{Cents, Currency, CustomerId, OrderId, OrderStatus, PaymentId};
use serde::Serialize;

/// The order item's attributes a status event's snapshot reads: placeholder and name, for a
/// read's projection.
pub(crate) const SNAPSHOT: [(&str, &str); 6] = [
    ("#evCustomer", oa::CUSTOMER),
    ("#evTotal", oa::TOTAL),
    ("#evFailure", oa::FAILURE_REASON),
    ("#evCancel", oa::CANCEL_REASON),
    ("#evPayment", oa::PAYMENT_ID),
    ("#evTrace", oa::TRACEPARENT),
];

/// [`SNAPSHOT`]'s placeholders as a projection list.
pub(crate) fn snapshot_projection() -> String {
    SNAPSHOT.map(|(placeholder, _)| placeholder).join(", ")
}

/// How long an outbox item is kept: its `expiration` (epoch seconds, the outbox table's TTL
/// attribute) is its creation time plus this, after which DynamoDB deletes it in its own time
/// (the stream's REMOVE record is ignored by the processor). By then the stream, which keeps
/// records 24 hours, has long carried it to the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxRetention(pub std::time::Duration);

impl OutboxRetention {
    pub fn days(days: u64) -> Self {
        OutboxRetention(std::time::Duration::from_secs(days.saturating_mul(86_400)))
    }

    /// `ORDERS_RETENTION_DAYS` (unset: the default), a whole number of days, at least 1.
    pub fn from_env_value(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Self::default()),
            Some(text) => match text.parse::<u64>() {
                Ok(days) if (1..=36_500).contains(&days) => Ok(Self::days(days)),
                _ => Err(format!(
                    "{text:?} is not a whole number of days from 1 to 36500"
                )),
            },
        }
    }

    /// The item's TTL: `created` plus the retention, in whole epoch seconds (rounded up).
    pub(crate) fn expiration(&self, created: DateTime<Utc>) -> i64 {
        let secs = i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX);
        let ms = created.timestamp_millis();
        ms.div_euclid(1000)
            .saturating_add(i64::from(ms.rem_euclid(1000) > 0))
            .saturating_add(secs)
    }
}

impl Default for OutboxRetention {
    /// 30 days, as `--retention-days`.
    fn default() -> Self {
        Self::days(30)
    }
}

/// The outbox item of `event`, put only if its id is new (ids are fresh UUIDs: the condition
/// guards against a defect, never against a re-run, which writes no event at all).
pub(crate) fn outbox_put<D: Serialize>(
    table: &str,
    retention: OutboxRetention,
    event: &CloudEvent<D>,
) -> Result<TransactWriteItem, BuildError> {
    let put = Put::builder()
        .table_name(table)
        .item(xa::ID, s(event.id.to_string()))
        .item(xa::ORDER, s(event.subject.to_string()))
        .item(xa::EVENT, s(event.to_json()))
        .item(xa::CREATED_AT, s(format_ts(event.time)))
        .item(xa::EXPIRATION, n(retention.expiration(event.time)))
        .condition_expression("attribute_not_exists(#id)")
        .expression_attribute_names("#id", xa::ID)
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The order's trace for a later event (`orders_telemetry::later_event_trace`), if the order
/// was created in one. A stored value that no longer parses starts nothing: the change
/// matters more than its trace.
pub(crate) fn continued_trace(order: &Item) -> Result<Option<Traceparent>, AttrError> {
    Ok(opt_s(order, oa::TRACEPARENT)?
        .and_then(|t| Traceparent::parse(t).ok())
        .map(orders_telemetry::later_event_trace))
}

/// What a status change knows beyond the order item as read: what it writes itself.
pub(crate) struct Change<'a> {
    pub order: OrderId,
    pub to: OrderStatus,
    /// The order's version after the change.
    pub version: i64,
    pub now: DateTime<Utc>,
    /// The failure reason the change writes, if any (else the stored one stands).
    pub failure_reason: Option<&'a str>,
    /// The payment the change settles (else the order's mirror of it).
    pub payment_id: Option<&'a PaymentId>,
    /// The parcel the change records.
    pub tracking_number: Option<&'a str>,
}

/// The event a move to `change.to` publishes, from the order item as read (with
/// [`SNAPSHOT`]); `None` for the statuses that publish nothing. Each type carries only its
/// own detail (a failure reason on `order.failed`, and so on), as on every store.
pub(crate) fn status_event(
    read: &Item,
    change: Change<'_>,
) -> Result<Option<CloudEvent<OrderChange>>, AttrError> {
    let Some(kind) = EventType::for_status(change.to) else {
        return Ok(None);
    };
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let failure = change
        .failure_reason
        .map(str::to_owned)
        .or(owned(opt_s(read, oa::FAILURE_REASON)?));
    let payment = match change.payment_id {
        Some(id) => Some(id.clone()),
        None => opt_s(read, oa::PAYMENT_ID)?.map(|p| PaymentId::from_trusted(p.to_owned())),
    };
    let snapshot = OrderChange {
        order_id: change.order,
        customer_id: CustomerId::from_trusted(get_s(read, oa::CUSTOMER)?.to_owned()),
        status: change.to,
        version: change.version,
        total_cents: Cents(get_n(read, oa::TOTAL)?),
        currency: Currency::Eur,
        failure_reason: failure.filter(|_| kind == EventType::OrderFailed),
        cancellation_reason: owned(opt_s(read, oa::CANCEL_REASON)?)
            .filter(|_| kind == EventType::OrderCancelled),
        payment_id: payment.filter(|_| kind == EventType::OrderPaymentProcessed),
        tracking_number: owned(change.tracking_number).filter(|_| kind == EventType::OrderShipped),
    };
    let Some(mut event) = CloudEvent::order_changed(change.now, snapshot) else {
        return Ok(None);
    };
    event.traceparent = continued_trace(read)?;
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::attr::n;
    use orders_domain::event::PublicEvent;

    const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn read() -> Item {
        Item::from([
            (oa::CUSTOMER.to_owned(), s("c-1")),
            (oa::TOTAL.to_owned(), n(12_000)),
            (oa::FAILURE_REASON.to_owned(), s("stored failure")),
            (oa::CANCEL_REASON.to_owned(), s("changed my mind")),
            (oa::PAYMENT_ID.to_owned(), s("pay_mirror")),
            (oa::TRACEPARENT.to_owned(), s(TRACE)),
        ])
    }

    fn change(to: OrderStatus) -> Change<'static> {
        Change {
            order: OrderId::new(),
            to,
            version: 6,
            now: Utc::now(),
            failure_reason: None,
            payment_id: None,
            tracking_number: Some("TRK-1"),
        }
    }

    fn published(to: OrderStatus) -> serde_json::Value {
        let event = status_event(&read(), change(to))
            .unwrap()
            .expect("published");
        serde_json::from_str(&event.to_json()).unwrap()
    }

    #[test]
    fn each_type_carries_its_own_detail_and_the_order_s_trace() {
        let shipped = published(OrderStatus::Shipped);
        assert_eq!(shipped["type"], "order.shipped");
        assert_eq!(shipped["sequence"], "6");
        assert_eq!(shipped["data"]["trackingNumber"], "TRK-1");
        assert_eq!(shipped["data"]["totalCents"], 12_000);
        assert_eq!(shipped["data"]["customerId"], "c-1");
        for absent in ["failureReason", "cancellationReason", "paymentId"] {
            assert!(shipped["data"].get(absent).is_none(), "{absent}");
        }
        let trace = Traceparent::parse(shipped["traceparent"].as_str().unwrap()).unwrap();
        let stored = Traceparent::parse(TRACE).unwrap();
        assert_eq!(trace.trace_id(), stored.trace_id());
        assert_ne!(trace.span_id(), stored.span_id(), "a child span");
        assert_eq!(
            published(OrderStatus::Failed)["data"]["failureReason"],
            "stored failure"
        );
        let cancelled = published(OrderStatus::Cancelled);
        assert_eq!(cancelled["data"]["cancellationReason"], "changed my mind");
        assert_eq!(
            published(OrderStatus::PaymentProcessed)["data"]["paymentId"],
            "pay_mirror"
        );
    }

    #[test]
    fn what_the_change_writes_wins_over_what_was_read() {
        let paid = PaymentId::from_trusted("pay_webhook".into());
        let mut c = change(OrderStatus::PaymentProcessed);
        c.payment_id = Some(&paid);
        let event = status_event(&read(), c).unwrap().unwrap();
        assert_eq!(event.data.payment_id, Some(paid));
        let mut c = change(OrderStatus::Failed);
        c.failure_reason = Some("the move's reason");
        let event = status_event(&read(), c).unwrap().unwrap();
        assert_eq!(
            event.data.failure_reason.as_deref(),
            Some("the move's reason")
        );
    }

    #[test]
    fn the_saga_s_own_statuses_publish_nothing_and_no_trace_is_no_trace() {
        for quiet in [
            OrderStatus::InventoryReserved,
            OrderStatus::AwaitingPayment,
            OrderStatus::Compensating,
        ] {
            assert_eq!(status_event(&read(), change(quiet)), Ok(None));
        }
        let mut untraced = read();
        untraced.remove(oa::TRACEPARENT);
        let event = status_event(&untraced, change(OrderStatus::Completed));
        assert_eq!(event.unwrap().unwrap().traceparent, None);
        untraced.remove(oa::TOTAL);
        assert!(status_event(&untraced, change(OrderStatus::Completed)).is_err());
    }

    #[test]
    fn the_outbox_item_holds_the_event_as_published() {
        let event = status_event(&read(), change(OrderStatus::Completed))
            .unwrap()
            .unwrap();
        let put = outbox_put("outbox", OutboxRetention::days(30), &event).unwrap();
        let item = put.put().unwrap().item();
        let expiration = (event.time.timestamp_millis() + 999).div_euclid(1000) + 30 * 86_400;
        assert_eq!(get_n(item, xa::EXPIRATION), Ok(expiration));
        assert_eq!(get_s(item, xa::ID), Ok(event.id.to_string().as_str()));
        assert_eq!(
            get_s(item, xa::ORDER),
            Ok(event.subject.to_string().as_str())
        );
        let back = PublicEvent::decode(get_s(item, xa::EVENT).unwrap().as_bytes()).unwrap();
        assert_eq!(back.kind(), Ok(EventType::OrderCompleted));
        assert_eq!(back.sequence_number(), Some(6));
    }

    #[test]
    fn an_outbox_item_expires_whole_seconds_after_its_retention() {
        let r = OutboxRetention::days(1);
        let exact: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(r.expiration(exact), exact.timestamp() + 86_400);
        let later: DateTime<Utc> = "2026-01-01T00:00:00.001Z".parse().unwrap();
        assert_eq!(r.expiration(later), exact.timestamp() + 86_401);
        assert_eq!(
            OutboxRetention::from_env_value(None),
            Ok(OutboxRetention::days(30))
        );
        assert_eq!(
            OutboxRetention::from_env_value(Some(" 7 ")),
            Ok(OutboxRetention::days(7))
        );
        assert!(OutboxRetention::from_env_value(Some("0")).is_err());
        assert!(OutboxRetention::from_env_value(Some("1.5")).is_err());
    }
}
