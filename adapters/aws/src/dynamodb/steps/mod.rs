//! The steps' store on DynamoDB: the same contract as the SQLite store, each method made
//! idempotent by a condition expression instead of a SQL transaction. Each part of the port is
//! implemented once, in the file of the data it touches: `status.rs` ([`Progress`]: the order's
//! step history and status), `inventory.rs` ([`Stock`]), `records.rs` ([`Payments`],
//! [`Notifications`]: the saga table's records), `vouchers.rs` ([`Vouchers`]).
//!
//! [`Progress`]: orders_workflow::steps::Progress
//! [`Stock`]: orders_workflow::steps::Stock
//! [`Payments`]: orders_workflow::steps::Payments
//! [`Notifications`]: orders_workflow::steps::Notifications
//! [`Vouchers`]: orders_workflow::steps::Vouchers
//!
//! Invariants: every effect a step makes is keyed by the order id (a `saga` table record, the
//! order's own `steps` map, the voucher the order earned), and every write that must happen
//! once carries a condition that fails on the second run; a failed condition is then read as
//! "already done" from the item DynamoDB returns with it (`ALL_OLD`), not from a second read.
//! Several writes that must happen together are one `TransactWriteItems`. No SDK error is
//! dropped: each becomes `StepStoreError::Unavailable` with the service's code and message,
//! which the step reports as `Transient` and the state machine retries.

mod inventory;
mod records;
mod status;
mod vouchers;

use crate::TableNames;
use crate::dynamodb::attr::{self, AttrError, Item};
use crate::sdk::{describe, is_retryable};
use crate::tables::attrs;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use orders_domain::OrderId;
use orders_workflow::steps::StepStoreError;

pub use inventory::MAX_PRODUCTS_PER_RESERVATION;

/// The steps' store over the orders, inventory, vouchers and saga tables.
#[derive(Clone)]
pub struct DynamoStepStore {
    client: Client,
    tables: TableNames,
}

impl DynamoStepStore {
    /// `tables` needs the orders, inventory, vouchers and saga names (the step function's
    /// tables, `crate::functions::STEPS.tables`).
    pub fn new(client: Client, tables: TableNames) -> Self {
        DynamoStepStore { client, tables }
    }
}

/// RFC 3339 UTC with milliseconds, the format every component writes timestamps in.
pub(crate) use orders_domain::time::format_millis as format_ts;

/// An SDK failure as the steps see it. Retryable or not, storage did not do what was asked;
/// a non-retryable one (a malformed request) is also logged, because retrying will not fix it.
fn sdk_err<E, R>(what: &str, err: &SdkError<E, R>) -> StepStoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = format!("{what}: {}", describe(err));
    if !is_retryable(err) {
        tracing::error!(error = %text, "DynamoDB refused a saga store request");
    }
    StepStoreError::Unavailable(text)
}

/// A request the builder refused (a required field unset): a defect, reported with the field.
fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StepStoreError> {
    r.map_err(|e| StepStoreError::Unavailable(format!("cannot build request: {e}")))
}

/// A stored item that does not read as this code wrote it.
fn corrupt(what: &str, err: AttrError) -> StepStoreError {
    StepStoreError::Unavailable(format!("unreadable {what}: {err}"))
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
