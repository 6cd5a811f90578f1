//! The order's payment: the saga table's `payment` record (status, task token, amount), and
//! its mirror on the order item (`paymentId`, `paymentStatus`), which is what GET reads. Both
//! change in one `TransactWriteItems`, so they never disagree.
//!
//! Recording is a put-if-absent; a re-run finds the record in the cancellation's old image
//! (`ALL_OLD`) and, while it is still REQUESTED, replaces the token with one update
//! conditional on that status: a webhook settling the payment meanwhile wins, and the re-run
//! reads the settled status from the failed condition. A refund flips SUCCEEDED to REFUNDED
//! under a condition, so it happens once.

use super::{DynamoStepStore, built, condition_failed, corrupt, format_ts, order_key, put_new};
use super::{saga_key, sdk_err};
use crate::dynamodb::attr::{self, Item};
use crate::tables::attrs::{order as o, saga};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use orders_domain::{OrderId, PaymentStatus};
use orders_workflow::steps::store::{OrderAt, PaymentRequest, StepResult};
use orders_workflow::steps::{Payments, StepStoreError};

/// The payment status stored in a payment record.
fn status_of(record: &Item) -> StepResult<PaymentStatus> {
    let text = attr::get_s(record, saga::STATUS).map_err(|e| corrupt("payment", e))?;
    text.parse()
        .map_err(|_| StepStoreError::Unavailable(format!("unreadable payment status {text:?}")))
}

impl DynamoStepStore {
    /// The update of the order item's payment mirror to `status` (the order must exist).
    fn mirror(
        &self,
        order: OrderId,
        status: PaymentStatus,
        set_id: Option<&str>,
    ) -> StepResult<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(&self.tables.orders)
            .set_key(Some(order_key(order)))
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", o::ID)
            .expression_attribute_names("#ps", o::PAYMENT_STATUS)
            .expression_attribute_values(":ps", attr::s(status.as_str()));
        update = match set_id {
            Some(id) => update
                .update_expression("SET #ps = :ps, #pid = :pid")
                .expression_attribute_names("#pid", o::PAYMENT_ID)
                .expression_attribute_values(":pid", attr::s(id)),
            None => update.update_expression("SET #ps = :ps"),
        };
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// Replaces a REQUESTED payment's token; the status after (settled meanwhile: that one).
    async fn replace_token(&self, at: OrderAt, token: &str) -> StepResult<PaymentStatus> {
        let sent = self
            .update(&self.tables.saga, saga_key(at.order, saga::PAYMENT))
            .update_expression("SET #token = :token, #updated = :now")
            .condition_expression("#status = :requested")
            .expression_attribute_names("#token", saga::TASK_TOKEN)
            .expression_attribute_names("#updated", saga::UPDATED_AT)
            .expression_attribute_names("#status", saga::STATUS)
            .expression_attribute_values(":token", attr::s(token))
            .expression_attribute_values(":now", attr::s(format_ts(at.now)))
            .expression_attribute_values(":requested", attr::s(PaymentStatus::Requested.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(PaymentStatus::Requested),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => match c.item() {
                    Some(old) => status_of(old),
                    None => Err(StepStoreError::Unavailable(format!(
                        "payment record of order {} vanished",
                        at.order
                    ))),
                },
                _ => Err(sdk_err("replace payment token", &e)),
            },
        }
    }
}

#[async_trait]
impl Payments for DynamoStepStore {
    async fn request_payment(
        &self,
        at: OrderAt,
        request: &PaymentRequest<'_>,
    ) -> StepResult<PaymentStatus> {
        let OrderAt { order, now } = at;
        let now = format_ts(now);
        let mut record = saga_key(order, saga::PAYMENT);
        record.extend([
            (
                saga::PAYMENT_ID.to_owned(),
                attr::s(request.payment_id.as_str()),
            ),
            (
                saga::STATUS.to_owned(),
                attr::s(PaymentStatus::Requested.as_str()),
            ),
            (saga::AMOUNT.to_owned(), attr::n(request.amount.0)),
            (saga::PAYMENT_METHOD.to_owned(), attr::s(request.method)),
            (saga::TASK_TOKEN.to_owned(), attr::s(request.token)),
            (saga::CREATED_AT.to_owned(), attr::s(&now)),
            (saga::UPDATED_AT.to_owned(), attr::s(&now)),
        ]);
        let put = put_new(&self.tables.saga, record, saga::ORDER)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let writes = vec![
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build(),
            self.mirror(
                order,
                PaymentStatus::Requested,
                Some(request.payment_id.as_str()),
            )?,
        ];
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(PaymentStatus::Requested),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
            err.as_service_error()
        {
            let reasons = c.cancellation_reasons();
            if condition_failed(reasons.first()) {
                let old = reasons.first().and_then(|r| r.item());
                return match old.map(status_of).transpose()? {
                    Some(PaymentStatus::Requested) => self.replace_token(at, request.token).await,
                    Some(settled) => Ok(settled),
                    None => Err(StepStoreError::Unavailable(
                        "payment condition failed without the old item (ALL_OLD)".into(),
                    )),
                };
            }
            if condition_failed(reasons.get(1)) {
                return Err(StepStoreError::OrderNotFound(order));
            }
        }
        Err(sdk_err("request payment", &err))
    }

    async fn refund(&self, at: OrderAt) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        let flip = Update::builder()
            .table_name(&self.tables.saga)
            .set_key(Some(saga_key(order, saga::PAYMENT)))
            .update_expression("SET #status = :refunded, #updated = :now")
            .condition_expression("#status = :succeeded")
            .expression_attribute_names("#status", saga::STATUS)
            .expression_attribute_names("#updated", saga::UPDATED_AT)
            .expression_attribute_values(":refunded", attr::s(PaymentStatus::Refunded.as_str()))
            .expression_attribute_values(":succeeded", attr::s(PaymentStatus::Succeeded.as_str()))
            .expression_attribute_values(":now", attr::s(format_ts(now)));
        let writes = vec![
            TransactWriteItem::builder()
                .update(built(flip.build())?)
                .build(),
            self.mirror(order, PaymentStatus::Refunded, None)?,
        ];
        // No payment, or not SUCCEEDED (never charged, failed, refunded already): `false`.
        self.transact_once("refund payment", writes).await
    }
}
