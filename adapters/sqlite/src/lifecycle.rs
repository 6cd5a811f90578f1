//! The writes of the order's outside actors on SQLite: the provider's payment webhook
//! (`webhook`) and the customer's cancellation (`cancel`), each one writer job, so each is one
//! transaction with the outbox signal that carries it to the waiting saga (a `SignalEvent` row
//! the relay reads like any other). What each decides is the port's
//! (`OrderStore::apply_payment_webhook`, `OrderStore::cancel_order`); the notes here are about
//! how.

mod cancel;
mod webhook;

use super::{exec, sqlite_err};
use chrono::{DateTime, Utc};
use orders_domain::OrderId;
use orders_domain::event::SignalEvent;
use orders_domain::lifecycle::TaskSignal;
use orders_domain::store::StoreError;
use orders_domain::time::format_millis as format_ts;
use rusqlite::{Connection, params};

fn insert_signal(
    conn: &Connection,
    order: OrderId,
    at: DateTime<Utc>,
    signal: TaskSignal,
) -> Result<(), StoreError> {
    let event = SignalEvent::new(at, order, signal);
    let payload = serde_json::to_string(&event).map_err(|e| StoreError::Backend(e.to_string()))?;
    exec(
        conn,
        "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            event.id.to_string(),
            order.to_string(),
            payload,
            format_ts(at)
        ],
    )
    .map(|_| ())
    .map_err(sqlite_err)
}
