//! What the webhook and cancellation transactions share: one consistent read of the few items
//! a decision needs (`TransactGetItems`, one request), the transaction itself with its
//! cancellation reasons laid open, and the outbox item of an internal signal (laid out as
//! every outbox item is, `crate::dynamodb::events`).
//!
//! Both writers follow one loop: read, decide, write under conditions on what was read; a
//! condition that fails because another writer came first sends them back to read and decide
//! again, a bounded number of times (`RetryPolicy`), then `Busy`.

use super::{DynamoStore, sdk_err};
use crate::dynamodb::attr::Item;
use crate::dynamodb::events::outbox_put;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, Get, TransactGetItem, TransactWriteItem};
use orders_domain::SignalEvent;
use orders_domain::store::StoreError;

pub(super) const CONDITION_FAILED: &str = "ConditionalCheckFailed";
/// Reason codes of a cancellation that another attempt may not meet.
pub(super) const CONTENTION: [&str; 4] = [
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

pub(super) fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("building a transaction: {e}"))
}

/// What a transaction came to.
pub(super) enum Sent {
    Committed,
    /// Cancelled: one reason per item, in the order of the items.
    Cancelled(Vec<CancellationReason>),
}

/// Whether the item at `at` was cancelled by its own condition.
pub(super) fn failed_at(reasons: &[CancellationReason], at: usize) -> bool {
    reasons.get(at).and_then(|r| r.code()) == Some(CONDITION_FAILED)
}

/// A reason worth another attempt: a condition another writer broke, or contention.
pub(super) fn lost_race(reasons: &[CancellationReason]) -> Option<String> {
    reasons
        .iter()
        .filter_map(|r| r.code())
        .find(|c| *c == CONDITION_FAILED || CONTENTION.contains(c))
        .map(|c| format!("transaction cancelled: {c}"))
}

pub(super) fn describe_reasons(reasons: &[CancellationReason]) -> String {
    reasons
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let code = r.code().unwrap_or("?");
            format!("#{i} {code}: {}", r.message().unwrap_or("-"))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl DynamoStore {
    /// The items at `keys` (table, key), read together and strongly consistent, in order.
    pub(super) async fn read_together(
        &self,
        keys: Vec<(&str, Item)>,
    ) -> Result<Vec<Option<Item>>, StoreError> {
        let mut gets = Vec::with_capacity(keys.len());
        for (table, key) in keys {
            let get = Get::builder()
                .table_name(table)
                .set_key(Some(key))
                .build()
                .map_err(build_err)?;
            gets.push(TransactGetItem::builder().get(get).build());
        }
        let want = gets.len();
        let out = self
            .client
            .transact_get_items()
            .set_transact_items(Some(gets))
            .send()
            .await
            .map_err(|e| match e.as_service_error().and_then(|s| s.code()) {
                // A transaction in flight on one of the items: busy for a moment.
                Some("TransactionCanceledException") => StoreError::Busy,
                _ => sdk_err("TransactGetItems", &e),
            })?;
        let mut items: Vec<Option<Item>> = out
            .responses()
            .iter()
            .map(|r| r.item().filter(|i| !i.is_empty()).cloned())
            .collect();
        // An absent item may come back as no response at all.
        items.resize(want, None);
        Ok(items)
    }

    /// Sends `items` as one transaction.
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Sent, StoreError> {
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Sent::Committed),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    Ok(Sent::Cancelled(c.cancellation_reasons().to_vec()))
                }
                Some(other) if other.code() == Some("TransactionConflictException") => {
                    Ok(Sent::Cancelled(Vec::from([CancellationReason::builder()
                        .code("TransactionConflict")
                        .build()])))
                }
                _ => Err(sdk_err("TransactWriteItems", &err)),
            },
        }
    }

    /// The outbox item of `event`, written the way `create_order` writes `order.created` and
    /// every change its public event, so the table's stream carries it to the processor.
    pub(super) fn signal_put(&self, event: &SignalEvent) -> Result<TransactWriteItem, StoreError> {
        outbox_put(&self.tables.outbox, self.outbox_retention, event).map_err(build_err)
    }

    /// The pause before attempt `next` of a contended writer, or `Busy` once out of attempts.
    pub(super) async fn again(&self, next: u32, what: &str, why: &str) -> Result<(), StoreError> {
        if next > self.retry.attempts {
            tracing::warn!(attempts = next - 1, reason = %why, "{what} still contended, giving up");
            return Err(StoreError::Busy);
        }
        tracing::debug!(attempt = next, reason = %why, "retrying {what}");
        tokio::time::sleep(self.retry.backoff(next)).await;
        Ok(())
    }
}
