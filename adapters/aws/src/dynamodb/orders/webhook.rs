//! `apply_payment_webhook`: one read of the webhook's record, the order and its payment
//! (`TransactGetItems`), the decision of `OrderStore::apply_payment_webhook`'s rules, and one
//! `TransactWriteItems` of what it decided, in this order:
//! 0. the webhook record (saga table, `webhook#<webhook-id>`), put only if absent: a failed
//!    condition there means the id was seen, `Duplicate`, whatever else failed;
//! 1. the payment record's new status, conditional on it still being REQUESTED with the token
//!    read (a retried RequestPayment replacing the token sends us back to read again);
//! 2. the order item (status and payment mirror), conditional on the version read, which
//!    every status change and every cancellation increments;
//! 3. the outbox signal for the waiting task (`Applied` only);
//! 4. with a move to PAYMENT_PROCESSED, its public `order.payment_processed` event, at the
//!    version item 2 writes (`crate::dynamodb::events`).
//!
//! A webhook seen before is answered from the read alone (one request). An ignored one writes
//! its record only. Any other failed condition is a race lost to another writer: read and
//! decide again.

use super::DynamoStore;
use super::write::{Sent, build_err, describe_reasons, failed_at, lost_race};
use crate::dynamodb::attr::{Item, get_n, get_s, n, opt_s, s};
use crate::dynamodb::events::{Change, outbox_put, status_event};
use crate::dynamodb::item::{cancellation, key};
use crate::tables::attrs::{order as oa, saga as sa};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use orders_domain::event::{CloudEvent, OrderChange};
use orders_domain::lifecycle::{PAYMENT_DECLINED, PaymentResult, PaymentWebhook, WebhookOutcome};
use orders_domain::store::StoreError;
use orders_domain::time::format_millis as format_ts;
use orders_domain::{OrderStatus, PaymentStatus, SignalEvent, TaskSignal};
use serde_json::json;
use std::collections::HashMap;

/// What the webhook does to the stored state.
struct Plan {
    outcome: WebhookOutcome,
    /// The payment's new status, its token as read (the condition), and the signal.
    payment: Option<(PaymentStatus, String)>,
    /// The order's new status (with version + 1), and its version as read.
    order_status: Option<OrderStatus>,
    version: i64,
    signal: Option<TaskSignal>,
    /// The public event of the order's move.
    published: Option<CloudEvent<OrderChange>>,
}

fn unreadable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable item: {e}"))
}

fn ignored(why: impl Into<String>) -> Plan {
    Plan {
        outcome: WebhookOutcome::Ignored(why.into()),
        payment: None,
        order_status: None,
        version: 0,
        signal: None,
        published: None,
    }
}

/// The rules of `OrderStore::apply_payment_webhook`, on the items as read.
fn decide(
    w: &PaymentWebhook,
    order: Option<&Item>,
    payment: Option<&Item>,
) -> Result<Plan, StoreError> {
    let Some(order) = order else {
        return Ok(ignored(format!("unknown order {}", w.order_id)));
    };
    let Some(payment) = payment else {
        return Ok(ignored("no payment was requested for the order"));
    };
    let id = get_s(payment, sa::PAYMENT_ID).map_err(unreadable)?;
    if id != w.payment_id.as_str() {
        return Ok(ignored(format!(
            "the order's payment is {id}, not {}",
            w.payment_id
        )));
    }
    let amount = get_n(payment, sa::AMOUNT).map_err(unreadable)?;
    if amount != w.amount.0 {
        return Ok(ignored(format!(
            "amount {} cents is not the payment's {amount}",
            w.amount.0
        )));
    }
    let status = get_s(payment, sa::STATUS).map_err(unreadable)?;
    if status != PaymentStatus::Requested.as_str() {
        return Ok(ignored(format!("the payment is already {status}")));
    }
    let token = get_s(payment, sa::TASK_TOKEN)
        .map_err(unreadable)?
        .to_owned();
    let order_status: OrderStatus = get_s(order, oa::STATUS)
        .map_err(unreadable)?
        .parse()
        .map_err(unreadable)?;
    let version = get_n(order, oa::VERSION).map_err(unreadable)?;
    let waiting = order_status == OrderStatus::AwaitingPayment && cancellation(order)?.is_none();
    let plan = |outcome, new: PaymentStatus, to, signal| Plan {
        outcome,
        payment: Some((new, token.clone())),
        order_status: to,
        version,
        signal,
        published: None,
    };
    Ok(match (w.result, waiting) {
        (PaymentResult::Succeeded, true) => Plan {
            published: status_event(
                order,
                Change {
                    order: w.order_id,
                    to: OrderStatus::PaymentProcessed,
                    version: version + 1,
                    now: w.received_at,
                    failure_reason: None,
                    payment_id: Some(&w.payment_id),
                    tracking_number: None,
                },
            )
            .map_err(unreadable)?,
            ..plan(
                WebhookOutcome::Applied,
                PaymentStatus::Succeeded,
                Some(OrderStatus::PaymentProcessed),
                Some(TaskSignal::Succeed {
                    token: token.clone(),
                    output: json!({"paymentId": w.payment_id, "amountCents": w.amount.0}),
                }),
            )
        },
        (PaymentResult::Failed, true) => plan(
            WebhookOutcome::Applied,
            PaymentStatus::Failed,
            None,
            Some(TaskSignal::Fail {
                token: token.clone(),
                error: PAYMENT_DECLINED.to_owned(),
                cause: w
                    .reason
                    .clone()
                    .unwrap_or_else(|| "payment declined".to_owned()),
            }),
        ),
        (PaymentResult::Succeeded, false) => plan(
            WebhookOutcome::Refunded,
            PaymentStatus::Refunded,
            None,
            None,
        ),
        (PaymentResult::Failed, false) => plan(
            WebhookOutcome::Ignored(format!(
                "order {order_status} no longer waits for its payment"
            )),
            PaymentStatus::Failed,
            None,
            None,
        ),
    })
}

fn outcome_text(o: &WebhookOutcome) -> String {
    match o {
        WebhookOutcome::Applied => "APPLIED".to_owned(),
        WebhookOutcome::Duplicate => "DUPLICATE".to_owned(),
        WebhookOutcome::Refunded => "REFUNDED".to_owned(),
        WebhookOutcome::Ignored(why) => format!("IGNORED: {why}"),
    }
}

fn webhook_key(w: &PaymentWebhook) -> Item {
    HashMap::from([
        (
            sa::ORDER.to_owned(),
            s(format!("{}{}", sa::WEBHOOK_PREFIX, w.webhook_id)),
        ),
        (sa::RECORD.to_owned(), s(sa::WEBHOOK)),
    ])
}

fn payment_key(w: &PaymentWebhook) -> Item {
    HashMap::from([
        (sa::ORDER.to_owned(), s(w.order_id.to_string())),
        (sa::RECORD.to_owned(), s(sa::PAYMENT)),
    ])
}

impl DynamoStore {
    fn webhook_writes(
        &self,
        w: &PaymentWebhook,
        plan: &Plan,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let now = format_ts(w.received_at);
        let result = match w.result {
            PaymentResult::Succeeded => "payment.succeeded",
            PaymentResult::Failed => "payment.failed",
        };
        let mut record = webhook_key(w);
        record.extend([
            (sa::WEBHOOK_ORDER.to_owned(), s(w.order_id.to_string())),
            (sa::PAYMENT_ID.to_owned(), s(w.payment_id.as_str())),
            (sa::WEBHOOK_RESULT.to_owned(), s(result)),
            (
                sa::WEBHOOK_OUTCOME.to_owned(),
                s(outcome_text(&plan.outcome)),
            ),
            (sa::CREATED_AT.to_owned(), s(&now)),
        ]);
        let put = Put::builder()
            .table_name(&self.tables.saga)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(#o)")
            .expression_attribute_names("#o", sa::ORDER)
            .build()
            .map_err(build_err)?;
        let mut writes = vec![TransactWriteItem::builder().put(put).build()];
        let Some((new, token)) = &plan.payment else {
            return Ok(writes);
        };
        let mut payment = Update::builder()
            .table_name(&self.tables.saga)
            .set_key(Some(payment_key(w)))
            .update_expression("SET #st = :new, #up = :now")
            .condition_expression("#st = :requested AND #tok = :token")
            .expression_attribute_names("#st", sa::STATUS)
            .expression_attribute_names("#up", sa::UPDATED_AT)
            .expression_attribute_names("#tok", sa::TASK_TOKEN)
            .expression_attribute_values(":new", s(new.as_str()))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":requested", s(PaymentStatus::Requested.as_str()))
            .expression_attribute_values(":token", s(token));
        if let (PaymentStatus::Failed, Some(reason)) = (new, &w.reason) {
            payment = payment
                .update_expression("SET #st = :new, #up = :now, #why = :why")
                .expression_attribute_names("#why", sa::REASON)
                .expression_attribute_values(":why", s(reason));
        }
        writes.push(
            TransactWriteItem::builder()
                .update(payment.build().map_err(build_err)?)
                .build(),
        );
        let mut order = Update::builder()
            .table_name(&self.tables.orders)
            .set_key(Some(key(oa::ID, w.order_id.to_string())))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", oa::VERSION)
            .expression_attribute_names("#ps", oa::PAYMENT_STATUS)
            .expression_attribute_values(":v", n(plan.version))
            .expression_attribute_values(":ps", s(new.as_str()));
        order = match plan.order_status {
            Some(to) => order
                .update_expression("SET #ps = :ps, #st = :to, #v = :next, #up = :now")
                .expression_attribute_names("#st", oa::STATUS)
                .expression_attribute_names("#up", oa::UPDATED_AT)
                .expression_attribute_values(":to", s(to.as_str()))
                .expression_attribute_values(":next", n(plan.version + 1))
                .expression_attribute_values(":now", s(&now)),
            None => order.update_expression("SET #ps = :ps"),
        };
        writes.push(
            TransactWriteItem::builder()
                .update(order.build().map_err(build_err)?)
                .build(),
        );
        if let Some(signal) = &plan.signal {
            let event = SignalEvent::new(w.received_at, w.order_id, signal.clone());
            writes.push(self.signal_put(&event)?);
        }
        if let Some(event) = &plan.published {
            writes.push(
                outbox_put(&self.tables.outbox, self.outbox_retention, event).map_err(build_err)?,
            );
        }
        Ok(writes)
    }
}

pub async fn apply_payment_webhook(
    store: &DynamoStore,
    w: &PaymentWebhook,
) -> Result<WebhookOutcome, StoreError> {
    let t = &store.tables;
    let mut attempt = 1;
    loop {
        let read = store
            .read_together(vec![
                (t.saga.as_str(), webhook_key(w)),
                (t.orders.as_str(), key(oa::ID, w.order_id.to_string())),
                (t.saga.as_str(), payment_key(w)),
            ])
            .await?;
        if read[0].is_some() {
            return Ok(WebhookOutcome::Duplicate);
        }
        let plan = decide(w, read[1].as_ref(), read[2].as_ref())?;
        let why = match store.transact(store.webhook_writes(w, &plan)?).await? {
            Sent::Committed => {
                log_outcome(w, &plan.outcome, read[1].as_ref());
                return Ok(plan.outcome);
            }
            Sent::Cancelled(reasons) if failed_at(&reasons, 0) => {
                return Ok(WebhookOutcome::Duplicate);
            }
            Sent::Cancelled(reasons) => lost_race(&reasons).ok_or_else(|| {
                StoreError::Backend(format!(
                    "webhook transaction cancelled: {}",
                    describe_reasons(&reasons)
                ))
            })?,
        };
        attempt += 1;
        store
            .again(attempt, "payment webhook transaction", &why)
            .await?;
    }
}

fn log_outcome(w: &PaymentWebhook, outcome: &WebhookOutcome, order: Option<&Item>) {
    let status = order.and_then(|o| opt_s(o, oa::STATUS).ok().flatten());
    match outcome {
        WebhookOutcome::Ignored(why) => tracing::warn!(webhook_id = %w.webhook_id,
            order_id = %w.order_id, payment_id = %w.payment_id, status, reason = %why,
            "payment webhook recorded and ignored"),
        WebhookOutcome::Refunded => tracing::warn!(webhook_id = %w.webhook_id,
            order_id = %w.order_id, payment_id = %w.payment_id, status,
            "payment succeeded after its order stopped waiting: refunded"),
        _ => tracing::info!(webhook_id = %w.webhook_id, order_id = %w.order_id,
            outcome = %outcome_text(outcome), "payment webhook applied"),
    }
}
