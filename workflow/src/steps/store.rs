//! What the steps need from storage. Every method is idempotent per order: called twice, it
//! has the effect of once, and reports what it found the second time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::{Cents, CustomerId, OrderId, OrderStatus, ProductId, SagaItem, VoucherCode};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub charge_id: String,
    pub amount: Cents,
    pub refunded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Changed {
        version: i64,
    },
    /// The order already was at (or past) the target: a re-run.
    Unchanged,
}

/// Everything the steps need from storage, in the parts below: each adapter implements each
/// part once, in the module of its technology that holds that data.
///
/// How a step is driven matters to the SQLite adapter: the local executor runs a whole step as
/// one writer job, over a store whose every call completes without waiting, and polls the
/// step's future exactly once inside that job (`orders_sqlite`). So a step handler must await
/// nothing but this store: no timer, no channel, no other I/O. The step Lambda awaits the same
/// handler on the DynamoDB adapter like any other future.
pub trait StepStore: Progress + Stock + Payments + Notifications + Vouchers {}

impl<T: Progress + Stock + Payments + Notifications + Vouchers> StepStore for T {}

/// The order's step history and status, kept on the order itself.
#[async_trait]
pub trait Progress: Send + Sync {
    /// Counts an attempt of `step` for the order's step history.
    async fn step_attempt(
        &self,
        order: OrderId,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<(), StepStoreError>;
    /// Records how the latest attempt ended (`None`: succeeded).
    async fn step_result(
        &self,
        order: OrderId,
        step: Step,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StepStoreError>;
    /// Moves the order to `to` with a conditional update on its version. Already at or past
    /// `to`: `Unchanged`. A move the lifecycle forbids: `InvalidTransition`. The status change
    /// is the last act of `step`, so the same transaction marks `step` SUCCEEDED: nobody sees
    /// an order in its new status with the step that moved it still running.
    async fn set_status(
        &self,
        order: OrderId,
        step: Step,
        to: OrderStatus,
        failure_reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StatusChange, StepStoreError>;
}

/// Stock held for orders.
#[async_trait]
pub trait Stock: Send + Sync {
    /// Takes every item's quantity from stock, all or none, unless the order already holds a
    /// reservation (then nothing changes).
    async fn reserve(
        &self,
        order: OrderId,
        items: &[SagaItem],
        now: DateTime<Utc>,
    ) -> Result<Reservation, StepStoreError>;
    /// Returns a held reservation to stock; `false` if there was none held.
    async fn release(&self, order: OrderId, now: DateTime<Utc>) -> Result<bool, StepStoreError>;
}

/// The charge of each order.
#[async_trait]
pub trait Payments: Send + Sync {
    async fn charge(&self, order: OrderId) -> Result<Option<Charge>, StepStoreError>;
    /// Stores a charge unless one exists; returns the one stored.
    async fn record_charge(
        &self,
        order: OrderId,
        charge: &Charge,
        payment_method: &str,
        now: DateTime<Utc>,
    ) -> Result<Charge, StepStoreError>;
    /// Marks a charge refunded; `false` if there was no unrefunded charge.
    async fn refund(&self, order: OrderId, now: DateTime<Utc>) -> Result<bool, StepStoreError>;
}

/// Customer notifications, one per order and kind.
#[async_trait]
pub trait Notifications: Send + Sync {
    /// Records a notification of `kind` once; `false` if it was already recorded.
    async fn notify(
        &self,
        order: OrderId,
        customer: &CustomerId,
        kind: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StepStoreError>;
}

/// Vouchers earned and redeemed by orders.
#[async_trait]
pub trait Vouchers: Send + Sync {
    /// Issues the order's voucher (READY) unless it has one; returns the order's voucher code.
    async fn issue_voucher(
        &self,
        order: OrderId,
        customer: &CustomerId,
        code: &VoucherCode,
        discount: Cents,
        now: DateTime<Utc>,
    ) -> Result<VoucherCode, StepStoreError>;
    /// Disables the voucher this order earned if it is still READY (the order failed after
    /// the voucher was issued); `false` if there was none to withdraw.
    async fn withdraw_voucher(
        &self,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<bool, StepStoreError>;
    /// Puts a voucher this order redeemed back to READY; `false` if it was not USED by it.
    async fn restore_voucher(
        &self,
        code: &VoucherCode,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<bool, StepStoreError>;
}
