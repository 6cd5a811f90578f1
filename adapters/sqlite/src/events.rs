//! The public domain events on SQLite: written by the transaction that makes the change they
//! report, as outbox rows that are published at once (the relay has nothing to act on; the
//! saga's own `order.created` row is the exception, and the relay starts its saga), and fanned
//! out in that same transaction into one `deliveries` row per subscription that wants the type.
//!
//! So a subscriber hears of every committed change and of nothing rolled back, and a crash
//! between the commit and the delivery only delays it: the delivery row is the durable to-do.
//! `sequence` is the order's version after the change, read from the row the change just wrote.

use super::{exec, one, sqlite_err};
use orders_domain::event::{CloudEvent, EventType, OrderChange, Traceparent, VoucherIssued};
use orders_domain::store::StoreError;
use orders_domain::time::parse_ts;
use orders_domain::{Cents, Currency, CustomerId, OrderId, PaymentId, VoucherCode};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Creates the deliveries of the event at outbox row `seq` for every enabled subscription to
/// `kind`, due at once.
pub(crate) fn fan_out(
    conn: &Connection,
    seq: i64,
    order: &str,
    kind: EventType,
    now_ms: i64,
) -> Result<usize, StoreError> {
    conn.prepare_cached(
        "INSERT INTO deliveries (subscription_id, event_seq, order_id, next_at_ms)
         SELECT s.id, ?1, ?2, ?3 FROM subscriptions s
         WHERE s.disabled_at IS NULL AND EXISTS (SELECT 1 FROM json_each(s.types) WHERE value = ?4)",
    )
    .and_then(|mut st| st.execute(params![seq, order, now_ms, kind.as_str()]))
    .map_err(sqlite_err)
}

/// Writes a public event (not `order.created`, which `insert_order` writes as the saga's start)
/// and its deliveries.
fn append<D: Serialize>(
    conn: &Connection,
    kind: EventType,
    event: &CloudEvent<D>,
    now: &str,
) -> Result<(), StoreError> {
    let order = event.subject.to_string();
    exec(
        conn,
        "INSERT INTO outbox (event_id, order_id, payload, created_at, published_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![event.id.to_string(), order, event.to_json(), now],
    )
    .map_err(sqlite_err)?;
    fan_out(
        conn,
        conn.last_insert_rowid(),
        &order,
        kind,
        event.time.timestamp_millis(),
    )?;
    Ok(())
}

fn time_of(now: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    parse_ts(now).ok_or_else(|| StoreError::Backend(format!("unreadable timestamp {now:?}")))
}

fn trace_of(stored: Option<String>) -> Option<Traceparent> {
    stored
        .and_then(|t| Traceparent::parse(&t).ok())
        .map(orders_telemetry::later_event_trace)
}

/// Publishes the order's status as the change just made left it, if that status publishes
/// anything (`EventType::for_status`). Call it after the status write (and, for SHIPPED, after
/// the shipment's), in the same transaction.
pub(crate) fn publish_status(
    conn: &Connection,
    order: OrderId,
    now: &str,
) -> Result<(), StoreError> {
    let id = order.to_string();
    type Row = (
        String,
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Row = one(
        conn,
        "SELECT o.customer_id, o.status, o.version, o.total_cents, o.failure_reason, o.cancel_reason,
                o.traceparent, p.payment_id, s.tracking_number
         FROM orders o LEFT JOIN payments p ON p.order_id = o.order_id
                       LEFT JOIN shipments s ON s.order_id = o.order_id
         WHERE o.order_id = ?1",
        [&id],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        },
    )
    .map_err(sqlite_err)?;
    let (customer, status, version, total, failure, cancel_reason, trace, payment, tracking) = row;
    let status = status
        .parse()
        .map_err(|_| StoreError::Backend("unreadable order status".into()))?;
    let Some(kind) = EventType::for_status(status) else {
        return Ok(());
    };
    let change = OrderChange {
        order_id: order,
        customer_id: CustomerId::from_trusted(customer),
        status,
        version,
        total_cents: Cents(total),
        currency: Currency::Eur,
        failure_reason: failure.filter(|_| kind == EventType::OrderFailed),
        cancellation_reason: cancel_reason.filter(|_| kind == EventType::OrderCancelled),
        payment_id: payment
            .map(PaymentId::from_trusted)
            .filter(|_| kind == EventType::OrderPaymentProcessed),
        tracking_number: tracking.filter(|_| kind == EventType::OrderShipped),
    };
    let Some(mut event) = CloudEvent::order_changed(time_of(now)?, change) else {
        return Ok(());
    };
    event.traceparent = trace_of(trace);
    append(conn, kind, &event, now)
}

/// Publishes `voucher.issued` for the voucher the order just earned; issuing it is a change
/// of the order, so it takes the next version.
pub(crate) fn publish_voucher(
    conn: &Connection,
    order: OrderId,
    code: &VoucherCode,
    discount: Cents,
    now: &str,
) -> Result<(), StoreError> {
    let id = order.to_string();
    exec(
        conn,
        "UPDATE orders SET version = version + 1, updated_at = ?2 WHERE order_id = ?1",
        params![id, now],
    )
    .map_err(sqlite_err)?;
    let row: Option<(String, i64, Option<String>)> = one(
        conn,
        "SELECT customer_id, version, traceparent FROM orders WHERE order_id = ?1",
        [&id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
    .map_err(sqlite_err)?;
    let Some((customer, version, trace)) = row else {
        return Err(StoreError::Backend(format!("order {id} is gone")));
    };
    let mut event = CloudEvent::voucher_issued(
        time_of(now)?,
        version,
        VoucherIssued {
            order_id: order,
            customer_id: CustomerId::from_trusted(customer),
            voucher_code: code.clone(),
            discount_cents: discount,
        },
    );
    event.traceparent = trace_of(trace);
    append(conn, EventType::VoucherIssued, &event, now)
}
