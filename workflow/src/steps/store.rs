//! What the steps need from storage. Every method is idempotent per order: called twice, it
//! has the effect of once, and reports what it found the second time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::{Cents, CustomerId, OrderId, OrderStatus, ProductId, SagaItem, VoucherCode};

use super::Step;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SagaStoreError {
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

#[async_trait]
pub trait SagaStore: Send + Sync {
    /// Counts an attempt of `step` for the order's step history.
    async fn step_attempt(
        &self,
        order: OrderId,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<(), SagaStoreError>;
    /// Records how the latest attempt ended (`None`: succeeded).
    async fn step_result(
        &self,
        order: OrderId,
        step: Step,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), SagaStoreError>;

    /// Takes every item's quantity from stock, all or none, unless the order already holds a
    /// reservation (then nothing changes).
    async fn reserve(
        &self,
        order: OrderId,
        items: &[SagaItem],
        now: DateTime<Utc>,
    ) -> Result<Reservation, SagaStoreError>;
    /// Returns a held reservation to stock; `false` if there was none held.
    async fn release(&self, order: OrderId, now: DateTime<Utc>) -> Result<bool, SagaStoreError>;

    async fn charge(&self, order: OrderId) -> Result<Option<Charge>, SagaStoreError>;
    /// Stores a charge unless one exists; returns the one stored.
    async fn record_charge(
        &self,
        order: OrderId,
        charge: &Charge,
        payment_method: &str,
        now: DateTime<Utc>,
    ) -> Result<Charge, SagaStoreError>;
    /// Marks a charge refunded; `false` if there was no unrefunded charge.
    async fn refund(&self, order: OrderId, now: DateTime<Utc>) -> Result<bool, SagaStoreError>;

    /// Records a notification of `kind` once; `false` if it was already recorded.
    async fn notify(
        &self,
        order: OrderId,
        customer: &CustomerId,
        kind: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, SagaStoreError>;

    /// Issues the order's voucher (READY) unless it has one; returns the order's voucher code.
    async fn issue_voucher(
        &self,
        order: OrderId,
        customer: &CustomerId,
        code: &VoucherCode,
        discount: Cents,
        now: DateTime<Utc>,
    ) -> Result<VoucherCode, SagaStoreError>;
    /// Disables the voucher this order earned if it is still READY (the order failed after
    /// the voucher was issued); `false` if there was none to withdraw.
    async fn withdraw_voucher(
        &self,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<bool, SagaStoreError>;
    /// Puts a voucher this order redeemed back to READY; `false` if it was not USED by it.
    async fn restore_voucher(
        &self,
        code: &VoucherCode,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<bool, SagaStoreError>;

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
    ) -> Result<StatusChange, SagaStoreError>;
}
