//! The saga steps' storage on DynamoDB: the same contract as the SQLite store, each method
//! made idempotent by a condition expression instead of a SQL transaction.
//!
//! Invariants: every effect a step makes is keyed by the order id (a `saga` table record, the
//! order's own `steps` map, the voucher the order earned), and every write that must happen
//! once carries a condition that fails on the second run; a failed condition is then read as
//! "already done" from the item DynamoDB returns with it (`ALL_OLD`), not from a second read.
//! Several writes that must happen together are one `TransactWriteItems`. No SDK error is
//! dropped: each becomes `SagaStoreError::Unavailable` with the service's code and message,
//! which the step reports as `Transient` and the state machine retries.

mod inventory;
mod records;
mod status;
mod vouchers;

use crate::steps::store::{Charge, Reservation, StatusChange};
use crate::steps::{SagaStore, SagaStoreError, Step};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use chrono::{DateTime, Utc};
use orders_aws::TableNames;
use orders_aws::attr::{self, AttrError, Item};
use orders_aws::client::{describe, is_retryable};
use orders_aws::tables::attrs;
use orders_domain::{Cents, CustomerId, OrderId, OrderStatus, SagaItem, VoucherCode};

pub use inventory::MAX_PRODUCTS_PER_RESERVATION;

/// The saga store over the orders, inventory, vouchers and saga tables.
#[derive(Clone)]
pub struct DynamoSagaStore {
    client: Client,
    tables: TableNames,
}

impl DynamoSagaStore {
    /// `tables` needs the orders, inventory, vouchers and saga names (the step function's
    /// tables, `orders_aws::functions::STEPS.tables`).
    pub fn new(client: Client, tables: TableNames) -> Self {
        DynamoSagaStore { client, tables }
    }
}

/// RFC 3339 UTC with milliseconds, the format every component writes timestamps in.
pub(crate) use orders_domain::time::format_millis as format_ts;

/// An SDK failure as the steps see it. Retryable or not, storage did not do what was asked;
/// a non-retryable one (a malformed request) is also logged, because retrying will not fix it.
fn sdk_err<E, R>(what: &str, err: &SdkError<E, R>) -> SagaStoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = format!("{what}: {}", describe(err));
    if !is_retryable(err) {
        tracing::error!(error = %text, "DynamoDB refused a saga store request");
    }
    SagaStoreError::Unavailable(text)
}

/// A request the builder refused (a required field unset): a defect, reported with the field.
fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, SagaStoreError> {
    r.map_err(|e| SagaStoreError::Unavailable(format!("cannot build request: {e}")))
}

/// A stored item that does not read as this code wrote it.
fn corrupt(what: &str, err: AttrError) -> SagaStoreError {
    SagaStoreError::Unavailable(format!("unreadable {what}: {err}"))
}

fn order_key(order: OrderId) -> Item {
    Item::from([(attrs::order::ID.to_owned(), attr::s(order.to_string()))])
}

fn saga_key(order: OrderId, record: &str) -> Item {
    Item::from([
        (attrs::saga::ORDER.to_owned(), attr::s(order.to_string())),
        (attrs::saga::RECORD.to_owned(), attr::s(record)),
    ])
}

fn voucher_key(code: &str) -> Item {
    Item::from([(attrs::voucher::CODE.to_owned(), attr::s(code))])
}

/// Whether a transaction's item was cancelled by its own condition.
fn condition_failed(reason: Option<&CancellationReason>) -> bool {
    reason.and_then(CancellationReason::code) == Some("ConditionalCheckFailed")
}

fn bool_av(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

#[async_trait]
impl SagaStore for DynamoSagaStore {
    async fn step_attempt(
        &self,
        order: OrderId,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<(), SagaStoreError> {
        self.attempt(order, step, now).await
    }

    async fn step_result(
        &self,
        order: OrderId,
        step: Step,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), SagaStoreError> {
        self.result(order, step, error, now).await
    }

    async fn reserve(
        &self,
        order: OrderId,
        items: &[SagaItem],
        now: DateTime<Utc>,
    ) -> Result<Reservation, SagaStoreError> {
        self.reserve_items(order, items, now).await
    }

    async fn release(&self, order: OrderId, now: DateTime<Utc>) -> Result<bool, SagaStoreError> {
        self.release_items(order, now).await
    }

    async fn charge(&self, order: OrderId) -> Result<Option<Charge>, SagaStoreError> {
        self.read_charge(order).await
    }

    async fn record_charge(
        &self,
        order: OrderId,
        charge: &Charge,
        payment_method: &str,
        now: DateTime<Utc>,
    ) -> Result<Charge, SagaStoreError> {
        self.put_charge(order, charge, payment_method, now).await
    }

    async fn refund(&self, order: OrderId, now: DateTime<Utc>) -> Result<bool, SagaStoreError> {
        self.refund_charge(order, now).await
    }

    async fn notify(
        &self,
        order: OrderId,
        customer: &CustomerId,
        kind: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, SagaStoreError> {
        self.put_notification(order, customer, kind, message, now)
            .await
    }

    async fn issue_voucher(
        &self,
        order: OrderId,
        customer: &CustomerId,
        code: &VoucherCode,
        discount: Cents,
        now: DateTime<Utc>,
    ) -> Result<VoucherCode, SagaStoreError> {
        self.put_voucher(order, customer, code, discount, now).await
    }

    async fn withdraw_voucher(
        &self,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<bool, SagaStoreError> {
        self.disable_earned_voucher(order, now).await
    }

    async fn restore_voucher(
        &self,
        code: &VoucherCode,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<bool, SagaStoreError> {
        self.ready_redeemed_voucher(code, order, now).await
    }

    async fn set_status(
        &self,
        order: OrderId,
        step: Step,
        to: OrderStatus,
        failure_reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StatusChange, SagaStoreError> {
        self.move_status(order, step, to, failure_reason, now).await
    }
}
