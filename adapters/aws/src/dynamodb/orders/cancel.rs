//! `cancel_order`: one read of the order and of the idempotency key (`TransactGetItems`, or a
//! `GetItem` without a key), the decision of `OrderStore::cancel_order`'s rules, and one
//! `TransactWriteItems`:
//! - accepted: the order update (`cancelRequestedAt`, `cancelReason`, version + 1, conditional
//!   on the version read and on no request yet), the outbox `CancelWaiting` signal for the
//!   saga execution named on the order (`executionName`, the order.created event id), and the
//!   idempotency record of the response;
//! - already requested: the idempotency record alone (the response was true at the read);
//! - not cancellable, or a live key: nothing.
//!
//! The idempotency put has `create_order`'s condition (absent, or expired by `expiresAt`);
//! when it fails, or the order moved since the read, the decision is made again from a new
//! read, a bounded number of times. An order written before `executionName` existed gets no
//! signal (logged): its saga stops at its next step, which the cancel guard refuses.

use super::DynamoStore;
use super::store::{get_item, with_voucher};
use super::write::{Sent, build_err, describe_reasons, lost_race};
use crate::dynamodb::attr::{Item, n, opt_s, s};
use crate::dynamodb::item::{idempotency_item, idempotency_record, key};
use crate::tables::attrs::{idempotency as ia, order as oa};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use orders_domain::idempotency::IdempotencyKey;
use orders_domain::lifecycle::CancelRequest;
use orders_domain::store::{CancelOrder, CancelOutcome, NewIdempotencyRecord, OrderRecord};
use orders_domain::store::{Respond, StoreError};
use orders_domain::time::{format_millis as format_ts, parse_ts};
use orders_domain::{OrderStatus, SignalEvent, TaskSignal};

/// What the read decided.
enum Plan {
    Done(CancelOutcome),
    /// Write the request: the order after it, and the version it was read at.
    Accept(OrderRecord, i64),
    /// Keep the response of an earlier request under the key.
    Again(OrderRecord),
}

impl DynamoStore {
    /// The order item and, with a key, its live idempotency record.
    async fn read_for_cancel(
        &self,
        cmd: &CancelOrder,
    ) -> Result<(Option<Item>, Option<Item>), StoreError> {
        let order = key(oa::ID, cmd.order.to_string());
        let Some((k, _)) = &cmd.idempotency else {
            let got = get_item(self, &self.tables.orders, order).await?;
            return Ok((got, None));
        };
        let mut read = self
            .read_together(vec![
                (self.tables.orders.as_str(), order),
                (self.tables.idempotency.as_str(), key(ia::ID, k.as_str())),
            ])
            .await?;
        let idem = read.pop().flatten();
        Ok((read.pop().flatten(), idem))
    }

    async fn decide_cancel(
        &self,
        cmd: &CancelOrder,
        order: Option<Item>,
        idem: Option<Item>,
    ) -> Result<Plan, StoreError> {
        if let (Some((_, fingerprint)), Some(rec)) = (&cmd.idempotency, idem) {
            let rec = idempotency_record(&rec)?;
            if rec.expires_at > cmd.now {
                return Ok(Plan::Done(if &rec.fingerprint == fingerprint {
                    CancelOutcome::Replayed(rec.response)
                } else {
                    CancelOutcome::KeyReused
                }));
            }
        }
        let Some(item) = order else {
            return Ok(Plan::Done(CancelOutcome::NotFound));
        };
        let record = with_voucher(self, &item).await?;
        if record.cancellation.is_some() || record.status == OrderStatus::Cancelled {
            return Ok(match cmd.idempotency {
                Some(_) => Plan::Again(record),
                None => Plan::Done(CancelOutcome::AlreadyRequested(record)),
            });
        }
        if !record.status.is_cancellable() {
            return Ok(Plan::Done(CancelOutcome::NotCancellable(record)));
        }
        // Stored with milliseconds: the record answered now is the one a GET reads later.
        let now = parse_ts(&format_ts(cmd.now)).unwrap_or(cmd.now);
        let read_at = record.version;
        let mut after = record;
        after.version += 1;
        after.updated_at = now;
        after.cancellation = Some(CancelRequest {
            reason: cmd.reason.clone(),
            requested_at: now,
        });
        Ok(Plan::Accept(after, read_at))
    }

    fn idempotency_put(
        &self,
        cmd: &CancelOrder,
        key: &IdempotencyKey,
        fingerprint: &str,
        respond: Respond<'_>,
        after: &OrderRecord,
    ) -> Result<TransactWriteItem, StoreError> {
        let rec = NewIdempotencyRecord {
            key: key.clone(),
            fingerprint: fingerprint.to_owned(),
            response: respond(after),
            expires_at: cmd
                .now
                .checked_add_signed(cmd.ttl)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
        };
        let put = Put::builder()
            .table_name(&self.tables.idempotency)
            .set_item(Some(idempotency_item(&rec)))
            .condition_expression("attribute_not_exists(#id) OR #exp <= :now")
            .expression_attribute_names("#id", ia::ID)
            .expression_attribute_names("#exp", ia::EXPIRES_AT)
            .expression_attribute_values(":now", s(format_ts(cmd.now)))
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn cancel_writes(
        &self,
        cmd: &CancelOrder,
        after: &OrderRecord,
        read_at: i64,
        execution: Option<&str>,
        respond: Respond<'_>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let now = format_ts(after.updated_at);
        let mut set = "SET #cr = :now, #v = :next, #up = :now".to_owned();
        let mut update = Update::builder()
            .table_name(&self.tables.orders)
            .set_key(Some(key(oa::ID, cmd.order.to_string())))
            .condition_expression("#v = :v AND attribute_not_exists(#cr)")
            .expression_attribute_names("#cr", oa::CANCEL_REQUESTED_AT)
            .expression_attribute_names("#v", oa::VERSION)
            .expression_attribute_names("#up", oa::UPDATED_AT)
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":v", n(read_at))
            .expression_attribute_values(":next", n(read_at + 1));
        if let Some(reason) = &cmd.reason {
            set.push_str(", #why = :why");
            update = update
                .expression_attribute_names("#why", oa::CANCEL_REASON)
                .expression_attribute_values(":why", s(reason));
        }
        let update = update.update_expression(set).build().map_err(build_err)?;
        let mut writes = vec![TransactWriteItem::builder().update(update).build()];
        match execution {
            Some(execution) => {
                let signal = TaskSignal::CancelWaiting {
                    execution: execution.to_owned(),
                    reason: cmd.reason.clone(),
                };
                writes.push(self.signal_put(&SignalEvent::new(cmd.now, cmd.order, signal))?);
            }
            None => tracing::warn!(order_id = %cmd.order,
                "order has no saga execution name (created before it was recorded): \
                 cancellation recorded without a signal; its next step stops the saga"),
        }
        if let Some((k, fingerprint)) = &cmd.idempotency {
            writes.push(self.idempotency_put(cmd, k, fingerprint, respond, after)?);
        }
        Ok(writes)
    }
}

pub async fn cancel_order(
    store: &DynamoStore,
    cmd: &CancelOrder,
    respond: Respond<'_>,
) -> Result<CancelOutcome, StoreError> {
    let mut attempt = 1;
    loop {
        let (order, idem) = store.read_for_cancel(cmd).await?;
        let execution = match &order {
            Some(item) => opt_s(item, oa::EXECUTION)
                .map_err(|e| StoreError::Backend(format!("unreadable item: {e}")))?
                .map(str::to_owned),
            None => None,
        };
        let (writes, outcome) = match store.decide_cancel(cmd, order, idem).await? {
            Plan::Done(outcome) => return Ok(outcome),
            Plan::Accept(after, read_at) => {
                let writes =
                    store.cancel_writes(cmd, &after, read_at, execution.as_deref(), respond)?;
                (writes, CancelOutcome::Accepted(after))
            }
            Plan::Again(record) => {
                let Some((k, fingerprint)) = &cmd.idempotency else {
                    return Ok(CancelOutcome::AlreadyRequested(record));
                };
                let put = store.idempotency_put(cmd, k, fingerprint, respond, &record)?;
                (vec![put], CancelOutcome::AlreadyRequested(record))
            }
        };
        let why = match store.transact(writes).await? {
            Sent::Committed => return Ok(outcome),
            // The key was taken, or the order moved, since the read: decide again.
            Sent::Cancelled(reasons) => lost_race(&reasons).ok_or_else(|| {
                StoreError::Backend(format!(
                    "cancel transaction cancelled: {}",
                    describe_reasons(&reasons)
                ))
            })?,
        };
        attempt += 1;
        store.again(attempt, "cancel transaction", &why).await?;
    }
}
