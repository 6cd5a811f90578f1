//! The steps' store on DynamoDB: the same contract as the SQLite store, each method made
//! idempotent by a condition expression instead of a SQL transaction. Each part of the port is
//! implemented once, in the file of the data it touches: `status.rs` ([`Progress`]: the order's
//! step history and cancellation request), `moves.rs` (its status moves, and [`Shipments`]),
//! `inventory.rs` ([`Stock`]), `payments.rs` ([`Payments`]: the saga table's payment record
//! and its mirror on the order), `records.rs` ([`Notifications`]), `vouchers.rs`
//! ([`Vouchers`]).
//!
//! [`Progress`]: orders_workflow::steps::Progress
//! [`Stock`]: orders_workflow::steps::Stock
//! [`Payments`]: orders_workflow::steps::Payments
//! [`Shipments`]: orders_workflow::steps::Shipments
//! [`Notifications`]: orders_workflow::steps::Notifications
//! [`Vouchers`]: orders_workflow::steps::Vouchers
//!
//! Invariants: every effect a step makes is keyed by the order id (a `saga` table record, the
//! order's own `steps` map, the voucher the order earned), and every write that must happen
//! once carries a condition that fails on the second run; a failed condition is then read as
//! "already done" from the item DynamoDB returns with it (`ALL_OLD`), not from a second read.
//! Several writes that must happen together are one `TransactWriteItems`; a change that
//! publishes (a status move, a voucher issued) is one with its public event (`publish.rs`).
//! No SDK error is dropped: each becomes `StepStoreError::Unavailable` with the service's code
//! and message, which the step reports as `Transient` and the state machine retries.

mod inventory;
mod moves;
mod payments;
mod publish;
mod records;
mod status;
mod vouchers;

use crate::TableNames;
use crate::dynamodb::attr::{self, AttrError, Item};
use crate::dynamodb::events::OutboxRetention;
use crate::sdk::{conditional, describe, is_retryable};
use crate::tables::attrs;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::Put;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};
use orders_domain::OrderId;
use orders_workflow::steps::StepStoreError;
use orders_workflow::steps::store::StepResult;

/// The steps' store over the orders, inventory, vouchers and saga tables.
#[derive(Clone)]
pub struct DynamoStepStore {
    client: Client,
    tables: TableNames,
    /// Retention: when the outbox items it puts expire.
    outbox_retention: OutboxRetention,
}

impl DynamoStepStore {
    /// `tables` needs the orders, outbox (for the public events), inventory, vouchers and saga
    /// names (the step function's tables, `crate::functions::STEPS.tables`).
    pub fn new(client: Client, tables: TableNames) -> Self {
        DynamoStepStore {
            client,
            tables,
            outbox_retention: OutboxRetention::default(),
        }
    }

    /// The outbox items it puts expire `retention` after their creation (default 30 days).
    pub fn with_outbox_retention(mut self, retention: OutboxRetention) -> Self {
        self.outbox_retention = retention;
        self
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

/// A conditional write's outcome as the steps see it: `true` if it was made, `false` if its
/// condition found the effect already there (or nothing to undo).
fn guarded<T, E, R>(what: &str, sent: Result<T, SdkError<E, R>>) -> StepResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    conditional(sent)
        .map(|made| made.is_some())
        .map_err(|e| sdk_err(what, &e))
}

/// A put inside a transaction of an item that must not exist yet (`key` names its key).
fn put_new(table: &str, item: Item, key: &str) -> PutBuilder {
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#key)")
        .expression_attribute_names("#key", key)
}

impl DynamoStepStore {
    /// A strongly consistent read of the item of `table` at `key`.
    fn get(&self, table: &str, key: Item) -> GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
    }

    /// One of the order's saga records, read strongly consistent.
    async fn saga_record(&self, order: OrderId, record: &str) -> StepResult<Option<Item>> {
        let got = self
            .get(&self.tables.saga, saga_key(order, record))
            .send()
            .await
            .map_err(|e| sdk_err(&format!("read {record}"), &e))?;
        Ok(got.item)
    }

    /// An update of the item of `table` at `key`.
    fn update(&self, table: &str, key: Item) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(table)
            .set_key(Some(key))
    }

    /// A put of a saga record that only a first run makes: refused when the record exists.
    fn put_once(&self, record: Item) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.tables.saga)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(#order)")
            .expression_attribute_names("#order", attrs::saga::ORDER)
    }

    /// Sends `writes` as one transaction whose first write carries the condition that makes
    /// it happen once: `true` if it was made, `false` if that first condition failed (done
    /// already, or nothing to undo). Any other failure is an error naming `what`.
    pub(crate) async fn transact_once(
        &self,
        what: &str,
        writes: Vec<TransactWriteItem>,
    ) -> StepResult<bool> {
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if condition_failed(c.cancellation_reasons().first()) =>
                {
                    Ok(false)
                }
                _ => Err(sdk_err(what, &e)),
            },
        }
    }
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
