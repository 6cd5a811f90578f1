//! Subscriptions to the public domain events (the embedded runtime's; on AWS consumers use
//! EventBridge rules), their deliveries, and the storage port both the API and the
//! dispatcher use.
//!
//! A subscription names a URL, the event types it wants and the secret its deliveries are
//! signed with. Each public event written after the subscription exists becomes one delivery
//! per subscription that wants its type, in the same transaction as the event (so none is lost
//! to a crash). A delivery is PENDING until its subscriber answers 2xx (DELIVERED) or it is
//! given up on (FAILED: the dead letter, which an operator may send again). Per order and
//! subscription they go out in `sequence` order: a PENDING delivery waits while an earlier
//! PENDING one of the same order and subscription exists, and a FAILED one no longer holds the
//! later ones back. A subscription whose subscriber answered 410 Gone is disabled: its pending
//! deliveries become FAILED and it gets no new ones.
//!
//! The port lives here, below the SQLite adapter that implements it, like `store::OrderStore`.

use crate::event::EventType;
use crate::ids::{EventId, OrderId, SubscriptionId};
use crate::standard_webhooks::WebhookSecret;
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;

/// A subscriber's URL as the subscription API accepted it (absolute http(s), a host its rules
/// allow). The rules need DNS, so they are the API's; this type only keeps what passed them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriberUrl(String);

impl SubscriberUrl {
    /// A URL the subscription API's rules accepted, or one read back from storage.
    pub fn from_checked(url: String) -> Self {
        SubscriberUrl(url)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why and since when a subscription gets no deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// A subscription as the API shows it: never its secret, which is shown once, at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub url: SubscriberUrl,
    pub types: Vec<EventType>,
    pub created_at: DateTime<Utc>,
    pub disabled: Option<Disabled>,
}

/// A subscription to create.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub id: SubscriptionId,
    pub url: SubscriberUrl,
    pub types: Vec<EventType>,
    pub secret: WebhookSecret,
    pub created_at: DateTime<Utc>,
}

/// An enabled subscription as the dispatcher needs it: where to send, and how to sign.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: SubscriptionId,
    pub url: SubscriberUrl,
    pub secret: WebhookSecret,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delivery state {0:?}")]
pub struct UnknownDeliveryState(pub String);

crate::wire_names! {
    /// Where a delivery stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum DeliveryState with ALL {
        /// Not yet answered 2xx, and not given up on: due now or after its backoff.
        Pending = "PENDING",
        Delivered = "DELIVERED",
        /// The dead letter: given up on after a day of retries, or its subscription disabled.
        Failed = "FAILED",
    }
    unknown: UnknownDeliveryState = |s| UnknownDeliveryState(s.to_owned());
}

impl serde::Serialize for DeliveryState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl utoipa::PartialSchema for DeliveryState {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(DeliveryState::ALL.map(DeliveryState::as_str)))
            .description(Some(
                "PENDING until the subscriber answers 2xx (DELIVERED) or it is given up on \
                 (FAILED: after a day of retries, or its subscription disabled).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for DeliveryState {}

/// One delivery of one event to one subscription, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: EventId,
    pub event_type: EventType,
    pub order_id: OrderId,
    /// The event's `sequence`: the order's version after the change.
    pub sequence: u64,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The subscriber's HTTP status on the last attempt (none: no answer, or not tried yet).
    pub last_status: Option<u16>,
    /// Why the last attempt failed, or why the delivery was given up on.
    pub last_error: Option<String>,
    /// PENDING only: not before this.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// DELIVERED or FAILED: when.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where a listing of deliveries goes on: after the delivery of this outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeliveryCursor(pub i64);

/// A page of a subscription's deliveries, oldest event first.
#[derive(Debug, Clone)]
pub struct DeliveryQuery {
    pub subscription: SubscriptionId,
    /// Only deliveries in this state (none: all).
    pub state: Option<DeliveryState>,
    pub limit: u32,
    pub after: Option<DeliveryCursor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    /// Set when more may follow.
    pub next: Option<DeliveryCursor>,
}

/// What asking to send a delivery again came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// FAILED before, PENDING and due now.
    Retried,
    /// No such subscription, or no delivery of that event to it.
    NotFound,
    /// The delivery is PENDING or DELIVERED: there is nothing to send again.
    NotFailed,
    /// The subscription is disabled: nothing would be sent.
    SubscriptionDisabled,
}

/// A delivery the dispatcher may send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub subscription: SubscriptionId,
    /// The event's outbox row: the delivery's key within its subscription.
    pub event_seq: i64,
    pub event_id: EventId,
    /// The stored CloudEvent, exactly: the body sent.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the first of them was made (none before the first).
    pub first_attempt: Option<DateTime<Utc>>,
}

/// The deliveries of one subscription due now, and when its next backoff ends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DueBatch {
    pub deliveries: Vec<DueDelivery>,
    /// The earliest `next_attempt_at` after now among its PENDING deliveries.
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// What one attempt came to, decided by the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// 2xx: DELIVERED.
    Delivered,
    /// Failed; try again at `next_at`.
    Retry { next_at: DateTime<Utc> },
    /// Failed, and the retry window is over: FAILED.
    Dead,
    /// 410 Gone: FAILED, and the subscription is disabled.
    Gone,
}

/// One attempt's outcome, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub subscription: SubscriptionId,
    pub event_seq: i64,
    pub at: DateTime<Utc>,
    /// The first attempt of this delivery (`at` itself for the first).
    pub first_attempt: DateTime<Utc>,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub result: AttemptResult,
}

/// The subscriptions' storage: the API's side (create, list, delete, the dead letters and
/// their retry) and the dispatcher's (what is due, what came of it).
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    async fn create_subscription(&self, new: NewSubscription) -> Result<Subscription, StoreError>;

    /// Every subscription, oldest first.
    async fn list_subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;

    async fn get_subscription(
        &self,
        id: SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError>;

    /// Deletes the subscription and all its deliveries; `false` if there was none.
    async fn delete_subscription(&self, id: SubscriptionId) -> Result<bool, StoreError>;

    /// Disables the subscription (it gets no new deliveries) and dead-letters its PENDING
    /// ones with `reason`; `false` if there was none or it was disabled already.
    async fn disable_subscription(
        &self,
        id: SubscriptionId,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// A page of the subscription's deliveries; `None` if there is no such subscription.
    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Option<DeliveryPage>, StoreError>;

    /// Makes the FAILED delivery of `event` to `id` PENDING again and due at `now`, with a new
    /// retry window.
    async fn retry_delivery(
        &self,
        id: SubscriptionId,
        event: EventId,
        now: DateTime<Utc>,
    ) -> Result<RetryOutcome, StoreError>;

    /// The enabled subscriptions, with their secrets.
    async fn targets(&self) -> Result<Vec<Target>, StoreError>;

    /// Up to `limit` deliveries of `subscription` due at `now`, none of the events in
    /// `in_flight`, and each the earliest PENDING delivery of its order to this subscription.
    async fn due(
        &self,
        subscription: SubscriptionId,
        now: DateTime<Utc>,
        limit: usize,
        in_flight: &[i64],
    ) -> Result<DueBatch, StoreError>;

    /// Records the outcomes of attempts, all in one write.
    async fn record_attempts(&self, outcomes: Vec<DeliveryOutcome>) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_states_have_their_wire_names() {
        let names: Vec<&str> = DeliveryState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["PENDING", "DELIVERED", "FAILED"]);
        assert_eq!("FAILED".parse(), Ok(DeliveryState::Failed));
        assert!("failed".parse::<DeliveryState>().is_err());
    }
}
