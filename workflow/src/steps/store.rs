//! What the steps need from storage. Every method is idempotent per order: called twice, it
//! has the effect of once, and reports what it found the second time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::lifecycle::{CancelRequest, PaymentStatus, Shipment};
use orders_domain::{
    Cents, CustomerId, OrderId, OrderStatus, PaymentId, ProductId, SagaItem, VoucherCode,
};

use super::Step;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepStoreError {
    /// Storage could not answer now; the step is retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("order {0} not found")]
    OrderNotFound(OrderId),
    #[error("order cannot move from {from} to {to}")]
    InvalidTransition { from: OrderStatus, to: OrderStatus },
    /// The customer asked to cancel: no forward move and no new effect.
    #[error("the order was cancelled")]
    Cancelled { reason: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Stock is held for the order (now, or by an earlier run).
    Reserved,
    /// Nothing was taken: this product is unknown or short.
    Short {
        product: ProductId,
        available: i64,
        requested: u32,
    },
}

/// What RequestPayment records before it asks the provider: the payment and the task token
/// its webhook will complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest<'a> {
    pub payment_id: &'a PaymentId,
    pub amount: Cents,
    pub method: &'a str,
    pub token: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Changed {
        version: i64,
    },
    /// The order already was at (or past) the target: a re-run.
    Unchanged,
}

/// The order a call is about and when it is made: every effect is keyed by the order and
/// stamped with the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderAt {
    pub order: OrderId,
    pub now: DateTime<Utc>,
}

impl OrderAt {
    /// `order`, now.
    pub fn now(order: OrderId) -> Self {
        OrderAt {
            order,
            now: Utc::now(),
        }
    }
}

/// A status change a step makes: to `to`, with the reason when the order fails or starts
/// compensating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusMove<'a> {
    pub step: Step,
    pub to: OrderStatus,
    pub reason: Option<&'a str>,
}

/// A customer notification of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice<'a> {
    pub customer: &'a CustomerId,
    pub kind: &'a str,
    pub message: &'a str,
}

/// The voucher an order earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewVoucher<'a> {
    pub customer: &'a CustomerId,
    pub code: &'a VoucherCode,
    pub discount: Cents,
}

pub type StepResult<T> = Result<T, StepStoreError>;

/// Everything the steps need from storage, in the parts below: each adapter implements each
/// part once, in the module of its technology that holds that data.
///
/// How a step is driven matters to the SQLite adapter: the local executor runs a whole step as
/// one writer job, over a store whose every call completes without waiting, and polls the
/// step's future exactly once inside that job (`orders_sqlite`). So a step handler must await
/// nothing but this store: no timer, no channel, no other I/O. The step Lambda awaits the same
/// handler on the DynamoDB adapter like any other future.
pub trait StepStore: Progress + Stock + Payments + Shipments + Notifications + Vouchers {}

impl<T: Progress + Stock + Payments + Shipments + Notifications + Vouchers> StepStore for T {}

/// The order's step history and status, kept on the order itself.
#[async_trait]
pub trait Progress: Send + Sync {
    /// Counts an attempt of `step` for the order's step history.
    async fn step_attempt(&self, at: OrderAt, step: Step) -> StepResult<()>;
    /// Records how the latest attempt ended (`None`: succeeded).
    async fn step_result(&self, at: OrderAt, step: Step, error: Option<&str>) -> StepResult<()>;
    /// Moves the order with a conditional update on its version. Already at or past the
    /// target: `Unchanged`. A move the lifecycle forbids: `InvalidTransition`. The status
    /// change is the last act of its step, so the same transaction marks the step SUCCEEDED:
    /// nobody sees an order in its new status with the step that moved it still running.
    /// Once a cancellation was asked for, every move to a forward status
    /// (`OrderStatus::is_forward`) not yet reached is refused with `Cancelled`, in the same
    /// conditional write: that is what makes a cancellation and a step racing on one order
    /// come out one way or the other, never both.
    async fn set_status(&self, at: OrderAt, change: StatusMove<'_>) -> StepResult<StatusChange>;
    /// The customer's cancellation request, if there is one (for steps that move nothing).
    async fn cancellation(&self, order: OrderId) -> StepResult<Option<CancelRequest>>;
}

/// Stock held for orders.
#[async_trait]
pub trait Stock: Send + Sync {
    /// Takes every item's quantity from stock, all or none, unless the order already holds a
    /// reservation (then nothing changes).
    async fn reserve(&self, at: OrderAt, items: &[SagaItem]) -> StepResult<Reservation>;
    /// Returns a held reservation to stock; `false` if there was none held.
    async fn release(&self, at: OrderAt) -> StepResult<bool>;
}

/// The payment of each order (one per order, `PaymentId::for_order`).
#[async_trait]
pub trait Payments: Send + Sync {
    /// Records the payment as REQUESTED with `request.token`, or, when it is still
    /// REQUESTED, replaces its token (a retried RequestPayment waits on a new one). Returns
    /// the payment's status after the call: anything but REQUESTED means the provider already
    /// answered, and it must not be asked again.
    async fn request_payment(
        &self,
        at: OrderAt,
        request: &PaymentRequest<'_>,
    ) -> StepResult<PaymentStatus>;
    /// Marks a SUCCEEDED payment REFUNDED; `false` if there was none to refund.
    async fn refund(&self, at: OrderAt) -> StepResult<bool>;
}

/// The parcel of each order.
#[async_trait]
pub trait Shipments: Send + Sync {
    /// Records the warehouse's shipment and moves the order to SHIPPED, in one conditional
    /// write with `set_status`'s rules (refused with `Cancelled` once cancellation was asked
    /// for; `Unchanged` when already recorded) and its step bookkeeping.
    async fn mark_shipped(
        &self,
        at: OrderAt,
        step: Step,
        shipment: &Shipment,
    ) -> StepResult<StatusChange>;
}

/// Customer notifications, one per order and kind.
#[async_trait]
pub trait Notifications: Send + Sync {
    /// Records a notification once per kind; `false` if it was already recorded.
    async fn notify(&self, at: OrderAt, notice: &Notice<'_>) -> StepResult<bool>;
}

/// Vouchers earned and redeemed by orders.
#[async_trait]
pub trait Vouchers: Send + Sync {
    /// Issues the order's voucher (READY) unless it has one; returns the order's voucher code.
    async fn issue_voucher(&self, at: OrderAt, new: &NewVoucher<'_>) -> StepResult<VoucherCode>;
    /// Disables the voucher this order earned if it is still READY (the order failed after
    /// the voucher was issued); `false` if there was none to withdraw.
    async fn withdraw_voucher(&self, at: OrderAt) -> StepResult<bool>;
    /// Puts a voucher this order redeemed back to READY; `false` if it was not USED by it.
    async fn restore_voucher(&self, at: OrderAt, code: &VoucherCode) -> StepResult<bool>;
}
