//! The writes of the order's outside actors on SQLite: the provider's payment webhook and the
//! customer's cancellation, each one writer job, so each is one transaction with the outbox
//! signal that carries it to the waiting saga (a `SignalEvent` row the relay reads like any
//! other). What each decides is the port's (`OrderStore::apply_payment_webhook`,
//! `OrderStore::cancel_order`); the notes here are about how.
//!
//! The cancellation's idempotency record holds `respond(order after)`, and `respond` is the
//! caller's: it cannot travel to the writer thread. So the order is read first, the response
//! built from what the write will make of it, and the job writes only if the order, read again
//! under the write lock, is still exactly what was read (else it is read and tried again):
//! the stored response is always the one the outcome's order gives.

use super::order_reads::read_order;
use super::orders::live_idempotency;
use super::{SqliteStore, exec, one, sqlite_err};
use chrono::{DateTime, Utc};
use orders_domain::event::SignalEvent;
use orders_domain::idempotency::{IdempotencyKey, StoredResponse};
use orders_domain::lifecycle::{
    CancelRequest, PAYMENT_DECLINED, PaymentResult, PaymentWebhook, TaskSignal, WebhookOutcome,
};
use orders_domain::store::{CancelOrder, CancelOutcome, OrderRecord, Respond, StoreError};
use orders_domain::time::format_millis as format_ts;
use orders_domain::{OrderId, OrderStatus};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

/// How often a cancellation reads the order again when a step changed it meanwhile, before
/// answering busy: each try loses only to a write that committed in between.
const CANCEL_TRIES: usize = 32;

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

/// The order and its payment as a webhook finds them.
struct Found {
    status: String,
    version: i64,
    cancel_asked: bool,
    /// payment id, amount, status, task token.
    payment: Option<(String, i64, String, Option<String>)>,
}

fn found(conn: &Connection, order: &str) -> Result<Option<Found>, StoreError> {
    type Payment = (Option<String>, Option<i64>, Option<String>, Option<String>);
    one(
        conn,
        "SELECT o.status, o.version, o.cancel_requested_at IS NOT NULL,
                p.payment_id, p.amount_cents, p.status, p.task_token
         FROM orders o LEFT JOIN payments p ON p.order_id = o.order_id WHERE o.order_id = ?1",
        [order],
        |r| {
            let payment: Payment = (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
            Ok(Found {
                status: r.get(0)?,
                version: r.get(1)?,
                cancel_asked: r.get(2)?,
                payment: match payment {
                    (Some(id), Some(amount), Some(status), token) => {
                        Some((id, amount, status, token))
                    }
                    _ => None,
                },
            })
        },
    )
    .optional()
    .map_err(sqlite_err)
}

/// The webhook's effect on the order and its payment: the outcome, and the signal for the
/// saga when it waits for this answer.
fn settle(
    conn: &Connection,
    w: &PaymentWebhook,
) -> Result<(WebhookOutcome, Option<TaskSignal>), StoreError> {
    let ignored = |why: String| Ok((WebhookOutcome::Ignored(why), None));
    let order = w.order_id.to_string();
    let Some(found) = found(conn, &order)? else {
        return ignored("unknown order".into());
    };
    let Some((payment_id, amount, status, token)) = found.payment else {
        return ignored("the order has no payment requested".into());
    };
    if payment_id != w.payment_id.as_str() {
        return ignored(format!("{} is not the order's payment", w.payment_id));
    }
    if amount != w.amount.0 {
        return ignored(format!(
            "amount {} cents is not the payment's {amount}",
            w.amount.0
        ));
    }
    if status != "REQUESTED" {
        return ignored(format!("the payment is already {status}"));
    }
    let now = format_ts(w.received_at);
    let set_payment = |to: &str| {
        exec(
            conn,
            "UPDATE payments SET status = ?2, updated_at = ?3 WHERE order_id = ?1 AND status = 'REQUESTED'",
            params![order, to, now],
        )
        .map_err(sqlite_err)
    };
    let waiting = found.status == OrderStatus::AwaitingPayment.as_str() && !found.cancel_asked;
    let token = match (waiting, token) {
        (true, Some(token)) => token,
        (true, None) => return ignored("the payment has no task token to complete".into()),
        (false, _) => {
            // Too late: the saga no longer waits, and no order may end holding a charge.
            return match w.result {
                PaymentResult::Succeeded => {
                    set_payment("REFUNDED")?;
                    Ok((WebhookOutcome::Refunded, None))
                }
                PaymentResult::Failed => {
                    set_payment("FAILED")?;
                    ignored("the order no longer waits for its payment".into())
                }
            };
        }
    };
    let signal = match w.result {
        PaymentResult::Succeeded => {
            set_payment("SUCCEEDED")?;
            let moved = exec(
                conn,
                "UPDATE orders SET status = 'PAYMENT_PROCESSED', version = version + 1, updated_at = ?3
                 WHERE order_id = ?1 AND version = ?2 AND status = 'AWAITING_PAYMENT'
                   AND cancel_requested_at IS NULL",
                params![order, found.version, now],
            )
            .map_err(sqlite_err)?;
            if moved != 1 {
                // Read in this same transaction: nothing can have moved it since.
                return Err(StoreError::Backend(format!(
                    "order {order} changed while its webhook was applied"
                )));
            }
            let output = json!({"paymentId": payment_id, "amountCents": amount});
            TaskSignal::Succeed { token, output }
        }
        PaymentResult::Failed => {
            set_payment("FAILED")?;
            TaskSignal::Fail {
                token,
                error: PAYMENT_DECLINED.to_owned(),
                cause: w
                    .reason
                    .clone()
                    .unwrap_or_else(|| "payment declined".into()),
            }
        }
    };
    Ok((WebhookOutcome::Applied, Some(signal)))
}

/// The whole webhook write; `true` with an outcome that wrote a signal.
fn apply_webhook(
    conn: &Connection,
    w: &PaymentWebhook,
) -> Result<(WebhookOutcome, bool), StoreError> {
    let seen = one(
        conn,
        "SELECT 1 FROM payment_webhooks WHERE webhook_id = ?1",
        [&w.webhook_id],
        |_| Ok(()),
    )
    .optional()
    .map_err(sqlite_err)?;
    if seen.is_some() {
        return Ok((WebhookOutcome::Duplicate, false));
    }
    let (outcome, signal) = settle(conn, w)?;
    let kept = match &outcome {
        WebhookOutcome::Applied => "applied".to_owned(),
        WebhookOutcome::Refunded => "refunded".to_owned(),
        WebhookOutcome::Ignored(why) => format!("ignored: {why}"),
        WebhookOutcome::Duplicate => "duplicate".to_owned(),
    };
    let kind = match w.result {
        PaymentResult::Succeeded => "payment.succeeded",
        PaymentResult::Failed => "payment.failed",
    };
    exec(
        conn,
        "INSERT INTO payment_webhooks (webhook_id, order_id, payment_id, type, outcome, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            w.webhook_id,
            w.order_id.to_string(),
            w.payment_id.as_str(),
            kind,
            kept,
            format_ts(w.received_at)
        ],
    )
    .map_err(sqlite_err)?;
    let signalled = signal.is_some();
    if let Some(signal) = signal {
        insert_signal(conn, w.order_id, w.received_at, signal)?;
    }
    Ok((outcome, signalled))
}

/// What a cancellation will write, decided from the order as read.
enum Plan {
    Accept {
        after: Box<OrderRecord>,
        response: StoredResponse,
    },
    Already {
        response: StoredResponse,
    },
    Refuse,
}

impl Plan {
    fn for_order(
        seen: &OrderRecord,
        reason: &Option<String>,
        now: DateTime<Utc>,
        respond: Respond<'_>,
    ) -> Self {
        if seen.cancellation.is_some() || seen.status == OrderStatus::Cancelled {
            return Plan::Already {
                response: respond(seen),
            };
        }
        if !seen.status.is_cancellable() {
            return Plan::Refuse;
        }
        let after = OrderRecord {
            version: seen.version + 1,
            updated_at: now,
            cancellation: Some(CancelRequest {
                reason: reason.clone(),
                requested_at: now,
            }),
            ..seen.clone()
        };
        let response = respond(&after);
        Plan::Accept {
            after: Box::new(after),
            response,
        }
    }
}

/// A cancellation's writer job: everything but `respond`, which stays with the caller.
struct CancelJob {
    seen: OrderRecord,
    plan: Plan,
    key: Option<(IdempotencyKey, String)>,
    reason: Option<String>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// What a cancellation's job came to, and whether it wrote a signal; `None` when the order
/// changed after it was read (read it again).
type Ran = Option<(CancelOutcome, bool)>;

fn replay(response: StoredResponse, stored: &str, fingerprint: &str) -> CancelOutcome {
    if stored == fingerprint {
        CancelOutcome::Replayed(response)
    } else {
        CancelOutcome::KeyReused
    }
}

impl CancelJob {
    fn run(mut self, conn: &Connection) -> Result<Ran, StoreError> {
        if let Some((key, fingerprint)) = &self.key
            && let Some(rec) = live_idempotency(conn, key.as_str(), self.now)?
        {
            let outcome = replay(rec.response, &rec.fingerprint, fingerprint);
            return Ok(Some((outcome, false)));
        }
        let id = self.seen.order.id;
        match read_order(conn, &id.to_string())? {
            None => return Ok(Some((CancelOutcome::NotFound, false))),
            Some(now) if now != self.seen => return Ok(None),
            Some(_) => {}
        }
        let (outcome, signalled, response) = match std::mem::replace(&mut self.plan, Plan::Refuse) {
            Plan::Refuse => return Ok(Some((CancelOutcome::NotCancellable(self.seen), false))),
            Plan::Already { response } => (
                CancelOutcome::AlreadyRequested(self.seen.clone()),
                false,
                response,
            ),
            Plan::Accept { after, response } => {
                self.request(conn, id)?;
                (CancelOutcome::Accepted(*after), true, response)
            }
        };
        if let Some((key, fingerprint)) = &self.key {
            // REPLACE: an expired record may still be stored; it counts as absent.
            exec(
                conn,
                "INSERT OR REPLACE INTO idempotency (key, fingerprint, status, location, body, order_id, created_at, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    key.as_str(),
                    fingerprint,
                    response.status,
                    response.location,
                    response.body,
                    id.to_string(),
                    format_ts(self.now),
                    self.expires_at.timestamp_millis()
                ],
            )
            .map_err(sqlite_err)?;
        }
        Ok(Some((outcome, signalled)))
    }

    /// The request on the order (version + 1) and the signal for its saga.
    fn request(&self, conn: &Connection, id: OrderId) -> Result<(), StoreError> {
        let order = id.to_string();
        let now = format_ts(self.now);
        let execution: Option<String> = one(
            conn,
            "SELECT execution FROM orders WHERE order_id = ?1",
            [&order],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
        let execution = execution
            .ok_or_else(|| StoreError::Backend(format!("order {order} has no execution name")))?;
        let changed = exec(
            conn,
            "UPDATE orders SET cancel_requested_at = ?2, cancel_reason = ?3, version = version + 1, updated_at = ?2
             WHERE order_id = ?1 AND version = ?4 AND cancel_requested_at IS NULL",
            params![order, now, self.reason, self.seen.version],
        )
        .map_err(sqlite_err)?;
        if changed != 1 {
            return Err(StoreError::Backend(format!(
                "order {order} changed while its cancellation was written"
            )));
        }
        let reason = self.reason.clone();
        insert_signal(
            conn,
            id,
            self.now,
            TaskSignal::CancelWaiting { execution, reason },
        )
    }
}

impl SqliteStore {
    pub(crate) async fn payment_webhook(
        &self,
        webhook: &PaymentWebhook,
    ) -> Result<WebhookOutcome, StoreError> {
        let w = webhook.clone();
        let (outcome, signalled) = self.write(move |conn| apply_webhook(conn, &w)).await?;
        if signalled {
            self.outbox_signal.notify_one();
        }
        Ok(outcome)
    }

    pub(crate) async fn cancel(
        &self,
        cmd: CancelOrder,
        respond: Respond<'_>,
    ) -> Result<CancelOutcome, StoreError> {
        // What the database keeps of a time, so the order returned is the order read back.
        let now = DateTime::from_timestamp_millis(cmd.now.timestamp_millis()).unwrap_or(cmd.now);
        let expires_at = now
            .checked_add_signed(cmd.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        for _ in 0..CANCEL_TRIES {
            // A replay is answered from a read, never queued behind writes; the decision that
            // counts is repeated inside the write.
            if let Some((key, fingerprint)) = &cmd.idempotency
                && let Some(rec) = self
                    .readers
                    .read_now(|conn| live_idempotency(conn, key.as_str(), now))?
            {
                return Ok(replay(rec.response, &rec.fingerprint, fingerprint));
            }
            let id = cmd.order.to_string();
            let Some(seen) = self.read(move |conn| read_order(conn, &id)).await? else {
                return Ok(CancelOutcome::NotFound);
            };
            let job = CancelJob {
                plan: Plan::for_order(&seen, &cmd.reason, now, respond),
                seen,
                key: cmd.idempotency.clone(),
                reason: cmd.reason.clone(),
                now,
                expires_at,
            };
            match self.write(move |conn| job.run(conn)).await? {
                None => continue,
                Some((outcome, signalled)) => {
                    if signalled {
                        self.outbox_signal.notify_one();
                    }
                    return Ok(outcome);
                }
            }
        }
        Err(StoreError::Busy)
    }
}
