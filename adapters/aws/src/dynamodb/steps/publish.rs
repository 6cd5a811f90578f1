//! How the steps write a change of the order item: alone as an `UpdateItem` when it publishes
//! nothing, and with its public event's outbox item in one `TransactWriteItems` when it does
//! (`crate::dynamodb::events`), so the event exists exactly when the change does.
//!
//! Both paths report a failed condition the same way, with the order's old image (`ALL_OLD`,
//! which a transaction returns in its `CancellationReasons`), so a move decides between a
//! cancellation and a stale read without another request whichever way it was sent. A
//! transaction cancelled by another one in flight on the item (`TransactionConflict`) is a
//! lost race like a stale version: the caller reads again.

use super::{DynamoStepStore, condition_failed, sdk_err};
use crate::dynamodb::attr::Item;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem, Update};
use orders_workflow::steps::StepStoreError;
use orders_workflow::steps::store::StepResult;

/// Reason codes of a transaction cancelled by contention rather than by a condition.
const CONTENTION: [&str; 4] = [
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// What a conditional write of the order came to.
#[derive(Debug)]
pub(super) enum Written {
    Done,
    /// Its condition failed; the order as it was (none if it does not exist).
    Refused(Option<Item>),
    /// Another writer's transaction was in flight: read again and decide again.
    Contended,
}

/// Whether a cancelled transaction lost to contention.
pub(super) fn contended(reasons: &[CancellationReason]) -> bool {
    reasons
        .iter()
        .filter_map(CancellationReason::code)
        .any(|c| CONTENTION.contains(&c))
}

/// Each write's reason code, in order, for an error message.
pub(super) fn codes(reasons: &[CancellationReason]) -> String {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("?")).collect();
    codes.join(", ")
}

impl DynamoStepStore {
    /// Sends `update` of the order, with `event` (its outbox put) in the same transaction.
    pub(super) async fn write_order(
        &self,
        what: &str,
        update: Update,
        event: Option<TransactWriteItem>,
    ) -> StepResult<Written> {
        let Some(event) = event else {
            return self.update_alone(what, update).await;
        };
        let writes = vec![TransactWriteItem::builder().update(update).build(), event];
        Ok(match self.transact(what, writes).await? {
            Ok(()) => Written::Done,
            Err(reasons) if condition_failed(reasons.first()) => {
                Written::Refused(reasons.first().and_then(|r| r.item()).cloned())
            }
            Err(reasons) if contended(&reasons) => Written::Contended,
            Err(reasons) => {
                return Err(StepStoreError::Unavailable(format!(
                    "{what}: transaction cancelled: {}",
                    codes(&reasons)
                )));
            }
        })
    }

    /// `update` as one `UpdateItem`: the same request a transaction would hold.
    async fn update_alone(&self, what: &str, update: Update) -> StepResult<Written> {
        let sent = self
            .client
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .set_return_values_on_condition_check_failure(
                update.return_values_on_condition_check_failure,
            )
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Written::Done),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Written::Refused(c.item().cloned()))
                }
                _ => Err(sdk_err(what, &e)),
            },
        }
    }

    /// Sends `writes` as one transaction: committed, or cancelled with one reason per write
    /// (in their order). A conflict reported outside a cancellation reads as one.
    pub(super) async fn transact(
        &self,
        what: &str,
        writes: Vec<TransactWriteItem>,
    ) -> StepResult<Result<(), Vec<CancellationReason>>> {
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Ok(())),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    Ok(Err(c.cancellation_reasons().to_vec()))
                }
                Some(other) if other.code() == Some("TransactionConflictException") => {
                    let conflict = CancellationReason::builder()
                        .code("TransactionConflict")
                        .build();
                    Ok(Err(vec![conflict]))
                }
                _ => Err(sdk_err(what, &e)),
            },
        }
    }
}
