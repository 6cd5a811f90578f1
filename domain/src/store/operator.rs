//! The operations console's port (embedded runtime): every order at a glance, and the relay's
//! parked events. A port of its own, not part of `OrderStore`, since only the local stack
//! serves it; its user is the HTTP layer, its adapter the SQLite store.

use super::{ListCursor, StoreError};
use crate::{Cents, CustomerId, EventId, OrderId, OrderStatus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One page of every customer's orders, newest first, of one status and one customer when
/// given: at most `limit`, after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllOrders {
    pub status: Option<OrderStatus>,
    pub customer: Option<CustomerId>,
    pub limit: u32,
    pub after: Option<ListCursor>,
}

/// An order as a list of every order shows it: no lines, no step history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub total: Cents,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub failure_reason: Option<String>,
    pub cancellation_requested: bool,
    /// Its saga's execution name (the `order.created` event id), once written.
    pub execution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryPage {
    pub orders: Vec<OrderSummary>,
    pub next: Option<ListCursor>,
}

/// An outbox event the relay parked (it could never act on it), with the reason it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedOutboxEvent {
    pub event_id: String,
    pub order_id: String,
    /// The CloudEvent `type`, when the payload reads as JSON.
    pub event_type: Option<String>,
    pub reason: String,
    pub attempts: u32,
    pub parked_at: String,
}

/// What asking the relay to try a parked event again came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryParked {
    /// Pending again: the relay takes it on its next pass.
    Retried,
    NotFound,
    /// The event exists but is not parked (pending or done): nothing changed.
    NotParked,
}

#[async_trait]
pub trait OperatorStore: Send + Sync {
    async fn all_orders(&self, query: &AllOrders) -> Result<SummaryPage, StoreError>;

    async fn order_summary(&self, id: OrderId) -> Result<Option<OrderSummary>, StoreError>;

    /// How many orders (of `customer`, when given) are in each status; none: absent.
    async fn status_counts(
        &self,
        customer: Option<&CustomerId>,
    ) -> Result<Vec<(OrderStatus, u64)>, StoreError>;

    /// Every parked event, oldest first.
    async fn parked(&self) -> Result<Vec<ParkedOutboxEvent>, StoreError>;

    /// Clears the park of `event` (and its attempt count), so the relay tries it again.
    async fn retry_parked(&self, event: EventId) -> Result<RetryParked, StoreError>;
}
