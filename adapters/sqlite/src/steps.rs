//! The steps' store on SQLite, written once as [`TxStepStore`]: each part of the `StepStore`
//! port runs its SQL inside the writer's open transaction. Every method is keyed by order id,
//! so re-running it changes nothing the first run did not, and runs in its own savepoint, so a
//! failed one leaves no partial write behind while the step's other writes stay.
//!
//! There is one way in (`step_jobs.rs`): a writer job that builds the store on its
//! transaction and polls the step once; the local executor runs every step that way, and the
//! contract suite drives the store through the same job.

use super::events;
use super::step_status::{self, Move};
use super::writer::TxConn;
use super::{exec, one, sqlite_err};
use async_trait::async_trait;
use orders_domain::lifecycle::{CancelRequest, PaymentStatus, Shipment};
use orders_domain::store::StoreError;
use orders_domain::time::format_millis as format_ts;
use orders_domain::{OrderId, ProductId, SagaItem, VoucherCode};
use orders_workflow::steps::store::{NewVoucher, Notice, OrderAt, StatusMove, StepResult};
use orders_workflow::steps::store::{PaymentRequest, Reservation, StatusChange};
use orders_workflow::steps::{
    Notifications, Payments, Progress, Shipments, Step, StepStoreError, Stock, Vouchers,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) fn step_err(e: StoreError) -> StepStoreError {
    match e {
        StoreError::Backend(m) => StepStoreError::Unavailable(m),
        other => StepStoreError::Unavailable(other.to_string()),
    }
}

/// The saga store on the writer's open transaction; built inside a writer job and dropped
/// before the job returns. It remembers whether storage refused one of its writes for want of
/// space: the step handler only sees a storage failure, and the job must undo the whole step
/// and say why (see `step_jobs.rs`).
pub(crate) struct TxStepStore(TxConn, AtomicBool);

/// Runs `f` in a savepoint: all of it stays, or (on `Err`) none of it.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let control = |sql: &str| exec(conn, sql, []).map(|_| ()).map_err(sqlite_err);
    control("SAVEPOINT saga_call")?;
    match f(conn) {
        Ok(v) => control("RELEASE saga_call").map(|()| v),
        Err(e) => {
            let _ = control("ROLLBACK TO saga_call").and_then(|()| control("RELEASE saga_call"));
            Err(e)
        }
    }
}

/// Quantities per product: an order may list one product twice.
fn totals(items: &[SagaItem]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.product_id.to_string()).or_insert(0) += i64::from(i.quantity);
    }
    m
}

/// The text column `sql` selects for the order, if it has such a row.
fn text_of(conn: &Connection, sql: &str, order: &str) -> Result<Option<String>, StoreError> {
    one(conn, sql, [order], |r| r.get(0))
        .optional()
        .map_err(sqlite_err)
}

fn reserve_stock(
    conn: &Connection,
    order: &str,
    items: &[SagaItem],
    now: &str,
) -> Result<Reservation, StoreError> {
    if text_of(
        conn,
        "SELECT status FROM reservations WHERE order_id = ?1",
        order,
    )?
    .is_some()
    {
        return Ok(Reservation::Reserved);
    }
    let wanted = totals(items);
    for (product, qty) in &wanted {
        let available: Option<i64> = conn
            .prepare_cached("SELECT available FROM inventory WHERE product_id = ?1")
            .and_then(|mut st| st.query_row([product], |r| r.get(0)).optional())
            .map_err(sqlite_err)?;
        if available.is_none_or(|a| a < *qty) {
            return Ok(Reservation::Short {
                product: ProductId::from_trusted(product.clone()),
                available: available.unwrap_or(0),
                requested: u32::try_from(*qty).unwrap_or(u32::MAX),
            });
        }
    }
    let mut take = conn
        .prepare_cached("UPDATE inventory SET available = available - ?2, updated_at = ?3 WHERE product_id = ?1 AND available >= ?2")
        .map_err(sqlite_err)?;
    for (product, qty) in &wanted {
        if take
            .execute(params![product, qty, now])
            .map_err(sqlite_err)?
            != 1
        {
            // Checked above in this same transaction; reaching here means the check is wrong.
            return Err(StoreError::Backend(format!(
                "stock of {product} changed during reservation"
            )));
        }
    }
    let json = serde_json::to_string(&wanted).map_err(|e| StoreError::Backend(e.to_string()))?;
    exec(
        conn,
        "INSERT INTO reservations (order_id, items, status, created_at, updated_at) VALUES (?1, ?2, 'RESERVED', ?3, ?3)",
        params![order, json, now],
    )
    .map_err(sqlite_err)?;
    Ok(Reservation::Reserved)
}

fn release_stock(conn: &Connection, order: &str, now: &str) -> Result<bool, StoreError> {
    const HELD: &str = "SELECT items FROM reservations WHERE order_id = ?1 AND status = 'RESERVED'";
    let Some(items) = text_of(conn, HELD, order)? else {
        return Ok(false);
    };
    let items: BTreeMap<String, i64> = serde_json::from_str(&items)
        .map_err(|e| StoreError::Backend(format!("unreadable reservation: {e}")))?;
    for (product, qty) in items {
        exec(
            conn,
            "UPDATE inventory SET available = available + ?2, updated_at = ?3 WHERE product_id = ?1",
            params![product, qty, now],
        )
        .map_err(sqlite_err)?;
    }
    exec(
        conn,
        "UPDATE reservations SET status = 'RELEASED', updated_at = ?2 WHERE order_id = ?1",
        params![order, now],
    )
    .map_err(sqlite_err)?;
    Ok(true)
}

impl TxStepStore {
    pub(crate) fn new(tx: TxConn) -> Self {
        TxStepStore(tx, AtomicBool::new(false))
    }

    /// Whether a write of this store was refused for want of space.
    pub(crate) fn refused(&self) -> bool {
        self.1.load(Ordering::Relaxed)
    }

    /// Runs one guarded statement: `true` if it changed the row, `false` if its guard (the
    /// effect already there, or not to undo) left it alone.
    fn changed_one(&self, sql: &str, params: impl rusqlite::Params) -> StepResult<bool> {
        self.run(|conn| exec(conn, sql, params).map(|n| n == 1).map_err(sqlite_err))
    }

    /// [`TxStepStore::changed_one`] for a statement of the order `?1` at the time `?2`.
    fn changed_at(&self, at: OrderAt, sql: &str) -> StepResult<bool> {
        self.changed_one(sql, params![at.order.to_string(), format_ts(at.now)])
    }

    fn run<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StepStoreError> {
        if self.refused() {
            // SQLite may have rolled the job's transaction back: nothing more of this step
            // may run, least of all outside that transaction.
            return Err(step_err(StoreError::StorageFull));
        }
        self.0.with(|conn| in_savepoint(conn, f)).map_err(|e| {
            if e == StoreError::StorageFull {
                self.1.store(true, Ordering::Relaxed);
            }
            step_err(e)
        })
    }
}

#[async_trait]
impl Progress for TxStepStore {
    async fn cancellation(&self, order: OrderId) -> StepResult<Option<CancelRequest>> {
        self.run(|conn| step_status::cancellation(conn, order))?
    }

    async fn step_attempt(&self, at: OrderAt, step: Step) -> StepResult<()> {
        let OrderAt { order, now } = at;
        self.run(|conn| {
            conn.prepare_cached(
                // A first attempt takes the next place in the order's history; a retry keeps it.
                "INSERT INTO saga_steps (order_id, step, seq, status, attempts, started_at)
                 VALUES (?1, ?2, (SELECT count(*) FROM saga_steps WHERE order_id = ?1), 'RUNNING', 1, ?3)
                 ON CONFLICT (order_id, step) DO UPDATE SET attempts = attempts + 1, status = 'RUNNING', finished_at = NULL",
            )
            .and_then(|mut st| st.execute(params![order.to_string(), step.name(), format_ts(now)]))
            .map(|_| ())
            .map_err(sqlite_err)
        })
    }

    async fn step_result(&self, at: OrderAt, step: Step, error: Option<&str>) -> StepResult<()> {
        let OrderAt { order, now } = at;
        self.run(|conn| {
            let status = if error.is_some() { "FAILED" } else { "SUCCEEDED" };
            conn.prepare_cached("UPDATE saga_steps SET status = ?3, finished_at = ?4, error = ?5 WHERE order_id = ?1 AND step = ?2")
                .and_then(|mut st| st.execute(params![order.to_string(), step.name(), status, format_ts(now), error]))
                .map(|_| ())
                .map_err(sqlite_err)
        })
    }

    async fn set_status(&self, at: OrderAt, change: StatusMove<'_>) -> StepResult<StatusChange> {
        let OrderAt { order, now } = at;
        let StatusMove { step, to, reason } = change;
        let now = format_ts(now);
        let change = Move {
            order,
            step,
            to,
            reason,
            now: &now,
        };
        // A refusal travels inside `Ok`, so the (empty) savepoint is kept.
        self.run(|conn| step_status::move_status(conn, &change))?
    }
}

#[async_trait]
impl Stock for TxStepStore {
    async fn reserve(&self, at: OrderAt, items: &[SagaItem]) -> StepResult<Reservation> {
        let OrderAt { order, now } = at;
        self.run(|conn| reserve_stock(conn, &order.to_string(), items, &format_ts(now)))
    }

    async fn release(&self, at: OrderAt) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        self.run(|conn| release_stock(conn, &order.to_string(), &format_ts(now)))
    }
}

#[async_trait]
impl Payments for TxStepStore {
    async fn request_payment(
        &self,
        at: OrderAt,
        request: &PaymentRequest<'_>,
    ) -> StepResult<PaymentStatus> {
        let OrderAt { order, now } = at;
        self.run(|conn| {
            let order = order.to_string();
            // A payment the provider answered keeps its token: only a REQUESTED one waits.
            exec(
                conn,
                "INSERT INTO payments (order_id, payment_id, amount_cents, payment_method, status, task_token, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'REQUESTED', ?5, ?6, ?6)
                 ON CONFLICT (order_id) DO UPDATE SET task_token = excluded.task_token, updated_at = excluded.updated_at
                 WHERE status = 'REQUESTED'",
                params![
                    order,
                    request.payment_id.as_str(),
                    request.amount.0,
                    request.method,
                    request.token,
                    format_ts(now)
                ],
            )
            .map_err(sqlite_err)?;
            let status = text_of(conn, "SELECT status FROM payments WHERE order_id = ?1", &order)?
                .ok_or_else(|| StoreError::Backend("the payment just written is gone".into()))?;
            status
                .parse::<PaymentStatus>()
                .map_err(|_| StoreError::Backend("unreadable payment status".into()))
        })
    }

    async fn refund(&self, at: OrderAt) -> StepResult<bool> {
        self.changed_at(at, "UPDATE payments SET status = 'REFUNDED', updated_at = ?2 WHERE order_id = ?1 AND status = 'SUCCEEDED'")
    }
}

#[async_trait]
impl Notifications for TxStepStore {
    async fn notify(&self, at: OrderAt, notice: &Notice<'_>) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        let (customer, kind, message) = (notice.customer, notice.kind, notice.message);
        self.changed_one(
            "INSERT INTO notifications (order_id, kind, customer_id, message, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (order_id, kind) DO NOTHING",
            params![order.to_string(), kind, customer.to_string(), message, format_ts(now)],
        )
    }
}

#[async_trait]
impl Vouchers for TxStepStore {
    async fn issue_voucher(&self, at: OrderAt, new: &NewVoucher<'_>) -> StepResult<VoucherCode> {
        let OrderAt { order, now } = at;
        let (customer, code, discount) = (new.customer, new.code, new.discount);
        self.run(|conn| {
            let id = order.to_string();
            let now = format_ts(now);
            let issued = exec(
                conn,
                "INSERT INTO vouchers (code, customer_id, discount_cents, status, issued_for_order, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'READY', ?4, ?5, ?5) ON CONFLICT (issued_for_order) DO NOTHING",
                params![code.as_str(), customer.to_string(), discount.0, id, now],
            )
            .map_err(sqlite_err)?;
            if issued == 1 {
                events::publish_voucher(conn, order, code, discount, &now)?;
            }
            one(conn, "SELECT code FROM vouchers WHERE issued_for_order = ?1", [id], |r| r.get(0))
                .map(VoucherCode::from_trusted)
                .map_err(sqlite_err)
        })
    }

    async fn withdraw_voucher(&self, at: OrderAt) -> StepResult<bool> {
        self.changed_at(at, "UPDATE vouchers SET status = 'DISABLED', updated_at = ?2 WHERE issued_for_order = ?1 AND status = 'READY'")
    }

    async fn restore_voucher(&self, at: OrderAt, code: &VoucherCode) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        self.changed_one(
            "UPDATE vouchers SET status = 'READY', redeemed_by_order = NULL, updated_at = ?3
             WHERE code = ?1 AND redeemed_by_order = ?2 AND status = 'USED'",
            params![code.as_str(), order.to_string(), format_ts(now)],
        )
    }
}

#[async_trait]
impl Shipments for TxStepStore {
    async fn mark_shipped(
        &self,
        at: OrderAt,
        step: Step,
        shipment: &Shipment,
    ) -> StepResult<StatusChange> {
        let OrderAt { order, now } = at;
        let now = format_ts(now);
        self.run(|conn| step_status::mark_shipped(conn, order, step, shipment, &now))?
    }
}
