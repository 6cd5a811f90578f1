//! The provider's payment webhook on SQLite, one writer job: the webhook recorded by its id
//! (a second delivery is a duplicate), the payment settled, the order moved and the saga's
//! signal written, all in the job's transaction. A success that comes after the saga stopped
//! waiting is refunded there and then, so no order ends holding a charge.

use super::insert_signal;
use crate::{SqliteStore, events, exec, one, sqlite_err};
use orders_domain::OrderStatus;
use orders_domain::lifecycle::{
    PAYMENT_DECLINED, PaymentResult, PaymentWebhook, TaskSignal, WebhookOutcome,
};
use orders_domain::store::StoreError;
use orders_domain::time::format_millis as format_ts;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

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
            events::publish_status(conn, w.order_id, &now)?;
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

impl SqliteStore {
    pub(crate) async fn payment_webhook(
        &self,
        webhook: &PaymentWebhook,
    ) -> Result<WebhookOutcome, StoreError> {
        let w = webhook.clone();
        let (outcome, signalled) = self.write(move |conn| apply_webhook(conn, &w)).await?;
        if signalled {
            self.outbox_signal.notify_one();
            self.events_signal.notify_one();
        }
        Ok(outcome)
    }
}
