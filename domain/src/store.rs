//! The API's storage port: what the HTTP layer needs from a database, so it never knows which
//! one it talks to. It lives here, below every adapter, because its adapters (`orders-sqlite`,
//! `orders-aws`) must not depend on the HTTP service that uses it.
//!
//! The one promise every implementation keeps: `create_order` writes the order, its outbox
//! event, the idempotency record (when a key is given) and the voucher redemption (when a code
//! is given) atomically, or writes nothing. A replay or a fingerprint mismatch is decided
//! inside that same atomic unit, which is what makes N concurrent requests with one key
//! produce exactly one order. The contract suite every implementation must pass is in the
//! test support crate (`tests/support/src/contract.rs`), run against SQLite and against DynamoDB on the
//! emulator.

use crate::idempotency::{IdempotencyKey, StoredResponse};
use crate::lifecycle::{CancelRequest, PaymentView, PaymentWebhook, Shipment, WebhookOutcome};
use crate::validation::OrderDraft;
use crate::{
    Cents, CustomerId, EventId, OrderId, OrderItem, OrderStatus, OutboxEvent, PaymentMethod,
    ProductId, SagaInput, SagaItem, VoucherCode, VoucherStatus,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

mod operator;
pub use operator::{
    AllOrders, OperatorStore, OrderSummary, ParkedOutboxEvent, RetryParked, SummaryPage,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("voucher {code} {reason}")]
    VoucherUnavailable {
        code: String,
        reason: VoucherRefusal,
    },
    #[error("the database is busy")]
    Busy,
    /// The storage has no room for the write (a full disk, or the database at its size
    /// limit); the write changed nothing and may succeed once space returns.
    #[error("storage is full: writes are refused")]
    StorageFull,
    #[error("storage failure: {0}")]
    Backend(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VoucherRefusal {
    #[error("does not exist")]
    Unknown,
    #[error("belongs to another customer")]
    OtherCustomer,
    #[error("is not READY")]
    NotReady,
}

/// A new order with everything its creation transaction writes.
#[derive(Debug, Clone)]
pub struct CreateOrder {
    pub order: NewOrder,
    pub event: OutboxEvent,
    pub idempotency: Option<NewIdempotencyRecord>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub items: Vec<OrderItem>,
    pub subtotal: Cents,
    pub discount: Cents,
    pub total: Cents,
    pub payment_method: PaymentMethod,
    pub voucher_code: Option<VoucherCode>,
    pub created_at: DateTime<Utc>,
}

impl CreateOrder {
    /// Everything the creation of `order` writes: its `order.created` event and, with a key
    /// and the request's fingerprint, the idempotency record that keeps `response` for `ttl`.
    pub fn new(
        order: NewOrder,
        key: Option<(IdempotencyKey, String)>,
        response: StoredResponse,
        ttl: Duration,
    ) -> Self {
        let now = order.created_at;
        let event = OutboxEvent::order_created(EventId::new(), now, order.saga_input());
        let idempotency = key.map(|(key, fingerprint)| NewIdempotencyRecord {
            key,
            fingerprint,
            response,
            expires_at: now
                .checked_add_signed(ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        });
        CreateOrder {
            order,
            event,
            idempotency,
            now,
        }
    }
}

impl NewOrder {
    /// The order a validated draft becomes, with a new id, created at `now`.
    pub fn from_draft(draft: OrderDraft, now: DateTime<Utc>) -> Self {
        NewOrder {
            id: OrderId::new(),
            discount: draft.discount(),
            total: draft.total(),
            customer_id: draft.customer_id,
            items: draft.items,
            subtotal: draft.subtotal,
            payment_method: draft.payment_method,
            voucher_code: draft.voucher_code,
            created_at: now,
        }
    }

    /// What the saga is started with.
    pub fn saga_input(&self) -> SagaInput {
        SagaInput {
            order_id: self.id,
            customer_id: self.customer_id.clone(),
            items: self
                .items
                .iter()
                .map(|i| SagaItem {
                    product_id: i.product_id.clone(),
                    quantity: i.quantity,
                })
                .collect(),
            total_cents: self.total,
            payment_method: self.payment_method.as_str().to_owned(),
            voucher_code: self.voucher_code.clone(),
        }
    }
}

/// An order's lines as both stores keep them: one JSON text of `{productId, quantity,
/// priceCents}`, cents rather than EUR numbers, so nothing is rounded on the way.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredItem {
    product_id: String,
    quantity: u32,
    #[serde(with = "crate::money::as_cents")]
    price_cents: Cents,
}

/// The stored text of an order's lines.
pub fn items_to_text(items: &[OrderItem]) -> String {
    let stored: Vec<StoredItem> = items
        .iter()
        .map(|i| StoredItem {
            product_id: i.product_id.to_string(),
            quantity: i.quantity,
            price_cents: i.price,
        })
        .collect();
    serde_json::to_string(&stored).expect("plain data serializes")
}

/// An order's lines from their stored text; `None` if it does not read as
/// [`items_to_text`] writes it.
pub fn items_from_text(text: &str) -> Option<Vec<OrderItem>> {
    let stored: Vec<StoredItem> = serde_json::from_str(text).ok()?;
    let line = |i: StoredItem| OrderItem {
        product_id: ProductId::from_trusted(i.product_id),
        quantity: i.quantity,
        price: i.price_cents,
    };
    Some(stored.into_iter().map(line).collect())
}

#[derive(Debug, Clone)]
pub struct NewIdempotencyRecord {
    pub key: IdempotencyKey,
    pub fingerprint: String,
    pub response: StoredResponse,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    pub response: StoredResponse,
    pub expires_at: DateTime<Utc>,
}

impl IdempotencyRecord {
    /// Same key, same payload: replay. Same key, other payload: the caller answers 422.
    pub fn outcome_for(self, fingerprint: &str) -> CreateOutcome {
        if self.fingerprint == fingerprint {
            CreateOutcome::Replayed(self.response)
        } else {
            CreateOutcome::KeyReused
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// A live record with the same fingerprint: the first response, to send again.
    Replayed(StoredResponse),
    /// A live record with another fingerprint.
    KeyReused,
}

/// An order as GET shows it: the live state, not the snapshot the 201 carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order as it was created.
    pub order: NewOrder,
    pub status: OrderStatus,
    pub version: i64,
    pub failure_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub voucher_issued: Option<VoucherRecord>,
    pub steps: Vec<StepRecord>,
    /// Once RequestPayment asked the provider.
    pub payment: Option<PaymentView>,
    /// Once the warehouse reported the parcel shipped.
    pub shipment: Option<Shipment>,
    pub cancellation: Option<CancelRequest>,
}

/// A customer's cancellation (`PATCH /orders/{id}`): what its one transaction writes.
#[derive(Debug, Clone)]
pub struct CancelOrder {
    pub order: OrderId,
    pub reason: Option<String>,
    /// With a key: the record that keeps the response the transaction's outcome gives.
    pub idempotency: Option<(IdempotencyKey, String)>,
    pub ttl: Duration,
    pub now: DateTime<Utc>,
}

/// What a cancellation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Recorded now, with the signal for the saga: the order as it is after the write.
    Accepted(OrderRecord),
    /// Asked before (or the order is CANCELLED): nothing changed.
    AlreadyRequested(OrderRecord),
    /// Too late (SHIPPED, COMPLETED, FAILED) or failing already (COMPENSATING without a
    /// request): nothing changed.
    NotCancellable(OrderRecord),
    NotFound,
    Replayed(StoredResponse),
    KeyReused,
}

/// How a cancellation's response is built from the order it leaves, so that the
/// idempotency record written in the same transaction holds exactly what is sent.
pub type Respond<'a> = &'a (dyn Fn(&OrderRecord) -> StoredResponse + Send + Sync);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherRecord {
    pub code: VoucherCode,
    pub customer_id: CustomerId,
    pub discount: Cents,
    pub status: VoucherStatus,
    /// The order that earned it.
    pub order_id: OrderId,
}

/// One saga step of one order, as recorded by the step handlers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub step: String,
    pub status: String,
    pub attempts: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// Keyset position in a customer's newest-first order list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCursor {
    pub created_at: String,
    pub order_id: OrderId,
}

/// A product's stock level as an operator sets it, at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub product: ProductId,
    pub available: i64,
    pub at: DateTime<Utc>,
}

/// One page of a customer's orders, newest first: at most `limit`, after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOrders {
    pub customer: CustomerId,
    pub limit: u32,
    pub after: Option<ListCursor>,
}

#[derive(Debug, Clone)]
pub struct OrderPage {
    pub orders: Vec<OrderRecord>,
    pub next: Option<ListCursor>,
}

#[async_trait]
pub trait OrderStore: Send + Sync {
    /// The atomic write described in the module docs. A store may answer a replay from a
    /// cheaper read first, but the decision that counts is the one inside the write.
    async fn create_order(&self, cmd: CreateOrder) -> Result<CreateOutcome, StoreError>;

    async fn get_order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError>;

    async fn list_orders(&self, query: &ListOrders) -> Result<OrderPage, StoreError>;

    async fn get_inventory(&self, product: &ProductId) -> Result<Option<i64>, StoreError>;

    /// Creates or overwrites a product's stock level (an operator's PUT, not a saga movement).
    async fn set_inventory(&self, level: StockLevel) -> Result<(), StoreError>;

    async fn list_vouchers(&self, customer: &CustomerId) -> Result<Vec<VoucherRecord>, StoreError>;

    /// Records a verified payment webhook and its effect in one atomic write:
    /// - the `webhook-id` is kept; seen before: `Duplicate`, nothing else changes;
    /// - `payment.succeeded` for the order's REQUESTED payment while the order is
    ///   AWAITING_PAYMENT with no cancellation asked: the payment SUCCEEDED, the order
    ///   PAYMENT_PROCESSED (version + 1), and a `TaskSignal::Succeed` with output
    ///   `{"paymentId", "amountCents"}` for the payment's task token: `Applied`;
    /// - `payment.failed` in that same situation: the payment FAILED and a
    ///   `TaskSignal::Fail` (`PaymentDeclined`, the reason): `Applied`;
    /// - a success for a REQUESTED payment whose order no longer waits for it (cancellation
    ///   asked, compensating, failed, cancelled): the payment REFUNDED at once: `Refunded`;
    ///   a failure then: the payment FAILED, `Ignored`;
    /// - anything else (unknown order or payment, another payment id, an amount that is not
    ///   the payment's, a payment already settled): `Ignored` with the reason.
    async fn apply_payment_webhook(
        &self,
        webhook: &PaymentWebhook,
    ) -> Result<WebhookOutcome, StoreError>;

    /// A customer's cancellation in one atomic write: the idempotency check (as
    /// `create_order`'s), then by the order's state: cancellable (`OrderStatus::is_cancellable`)
    /// with no request yet: the request (reason, time; version + 1), a
    /// `TaskSignal::CancelWaiting` for the order's saga, and the idempotency record of
    /// `respond(order after)`: `Accepted`. Already asked, or CANCELLED: `AlreadyRequested`
    /// (its idempotency record written too). Otherwise `NotCancellable`, nothing written.
    async fn cancel_order(
        &self,
        cmd: CancelOrder,
        respond: Respond<'_>,
    ) -> Result<CancelOutcome, StoreError>;

    /// Storage health, for /health: reads answer, and writes are not being refused for want
    /// of space ([`StoreError::StorageFull`] while they are).
    async fn ping(&self) -> Result<(), StoreError>;
}
