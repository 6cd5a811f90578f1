//! `OrderStore` on DynamoDB: the tables of `crate::tables`, one `TransactWriteItems` per
//! order.
//!
//! Creating an order is a single request whether it is new, a replay or a refused key reuse:
//! the idempotency put carries `ReturnValuesOnConditionCheckFailure = ALL_OLD`, so when the
//! key is taken the cancellation itself brings back the stored response and fingerprint
//! (`create/`), and no read is made before it. Reads are strongly consistent except the
//! customer listings, which go through a global secondary index and are eventually consistent
//! on AWS (a just-created order may be missing from a listing for a moment, never from GET).
//! Item layouts follow `crate::tables::attrs`; encoding and decoding live in
//! [`crate::dynamodb::item`]. The trait is implemented in `store.rs`, the create transaction in
//! `create/`, the payment webhook's in `webhook.rs`, the cancellation's in `cancel.rs` (what
//! the last two share in `write.rs`).

mod cancel;
mod create;
mod store;
mod webhook;
mod write;

use crate::TableNames;
use crate::dynamodb::events::OutboxRetention;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use chrono::{DateTime, Utc};
use orders_domain::store::StoreError;
use std::time::Duration;

/// How `create_order` retries a transaction cancelled by a conflict or throttling: `attempts`
/// in all, sleeping a random time in `[min, cap]` scaled up with each attempt (full jitter
/// over an exponential bound), so contending writers spread out instead of colliding again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub min: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            min: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `next` (2, 3, ...).
    fn backoff(&self, next: u32) -> Duration {
        let min = self.min.as_millis() as u64;
        let cap = self.cap.as_millis() as u64;
        let bound = min
            .saturating_mul(1 << next.saturating_sub(1).min(16))
            .clamp(min, cap.max(min));
        Duration::from_millis(fastrand::u64(min..=bound))
    }
}

pub struct DynamoStore {
    client: Client,
    tables: TableNames,
    retry: RetryPolicy,
    /// Retention: when the outbox items it puts expire.
    outbox_retention: OutboxRetention,
}

impl DynamoStore {
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self {
            client,
            tables,
            retry: RetryPolicy::default(),
            outbox_retention: OutboxRetention::default(),
        }
    }

    /// The outbox items it puts expire `retention` after their creation (default 30 days).
    pub fn with_outbox_retention(mut self, retention: OutboxRetention) -> Self {
        self.outbox_retention = retention;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    /// Puts each product of [`orders_domain::CATALOGUE`] unless it already exists, so a
    /// restart or a second instance never resets stock that orders have since taken.
    pub async fn seed_catalogue(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        store::seed_catalogue(self, now).await
    }
}

/// Throttling codes: the SDK has already retried these, so what reaches the store is
/// sustained overload, answered as `Busy` (503, retry later) rather than as a failure.
const THROTTLING: [&str; 3] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];

/// Maps a failed call onto the store's errors, keeping the service's code and message.
fn sdk_err<E, R>(op: &str, err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(se) = err
        && se.err().code().is_some_and(|c| THROTTLING.contains(&c))
    {
        return StoreError::Busy;
    }
    StoreError::Backend(format!("{op}: {}", crate::sdk::describe(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_its_bounds_and_grows() {
        let p = RetryPolicy::default();
        for next in 2..10 {
            for _ in 0..200 {
                let d = p.backoff(next);
                assert!(d >= p.min && d <= p.cap, "{d:?} for attempt {next}");
            }
        }
        // The second attempt waits at most 2 x min; a late one may reach the cap.
        assert!((0..200).all(|_| p.backoff(2) <= p.min * 2));
        assert!((0..500).any(|_| p.backoff(8) > p.min * 4));
    }
}
