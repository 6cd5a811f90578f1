//! The payment and notification records: one `saga` table item each, put only if absent, so a
//! re-run finds the first run's record. A refund flips the charge's `refunded` flag under a
//! condition, so it happens once.

use super::{DynamoStepStore, bool_av, corrupt, format_ts, guarded, saga_key, sdk_err};
use crate::dynamodb::attr::{self, Item};
use crate::tables::attrs::saga;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use orders_domain::{Cents, OrderId};
use orders_workflow::steps::store::Charge;
use orders_workflow::steps::store::{Notice, OrderAt, StepResult};
use orders_workflow::steps::{Notifications, Payments, StepStoreError};

fn read_charge(item: &Item) -> Result<Charge, StepStoreError> {
    let bad = |e| corrupt("charge record", e);
    Ok(Charge {
        charge_id: attr::get_s(item, saga::CHARGE_ID).map_err(bad)?.to_owned(),
        amount: Cents(attr::get_n(item, saga::AMOUNT).map_err(bad)?),
        refunded: attr::get_bool(item, saga::REFUNDED).map_err(bad)?,
    })
}

#[async_trait]
impl Payments for DynamoStepStore {
    async fn charge(&self, order: OrderId) -> StepResult<Option<Charge>> {
        let record = self.saga_record(order, saga::CHARGE).await?;
        record.as_ref().map(read_charge).transpose()
    }

    async fn record_charge(&self, at: OrderAt, charge: &Charge, via: &str) -> StepResult<Charge> {
        let OrderAt { order, now } = at;
        let now = format_ts(now);
        let mut item = saga_key(order, saga::CHARGE);
        item.insert(saga::CHARGE_ID.to_owned(), attr::s(&charge.charge_id));
        item.insert(saga::AMOUNT.to_owned(), attr::n(charge.amount.0));
        item.insert(saga::REFUNDED.to_owned(), bool_av(charge.refunded));
        item.insert(saga::PAYMENT_METHOD.to_owned(), attr::s(via));
        item.insert(saga::CREATED_AT.to_owned(), attr::s(&now));
        item.insert(saga::UPDATED_AT.to_owned(), attr::s(&now));
        let sent = self
            .put_once(item)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(charge.clone()),
            Err(e) => match e.as_service_error() {
                // An earlier run charged: that charge stands, whatever this run was told.
                Some(PutItemError::ConditionalCheckFailedException(c)) => match c.item() {
                    Some(old) => read_charge(old),
                    None => self.charge(order).await?.ok_or_else(|| {
                        StepStoreError::Unavailable(format!(
                            "charge of order {order} refused as existing, then not found"
                        ))
                    }),
                },
                _ => Err(sdk_err("record charge", &e)),
            },
        }
    }

    async fn refund(&self, at: OrderAt) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        let sent = self
            .update(&self.tables.saga, saga_key(order, saga::CHARGE))
            .update_expression("SET #refunded = :yes, #updated = :now")
            .condition_expression("#refunded = :no")
            .expression_attribute_names("#refunded", saga::REFUNDED)
            .expression_attribute_names("#updated", saga::UPDATED_AT)
            .expression_attribute_values(":yes", bool_av(true))
            .expression_attribute_values(":no", bool_av(false))
            .expression_attribute_values(":now", attr::s(format_ts(now)))
            .send()
            .await;
        guarded("refund", sent)
    }
}

#[async_trait]
impl Notifications for DynamoStepStore {
    async fn notify(&self, at: OrderAt, notice: &Notice<'_>) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        let record = format!("{}{}", saga::NOTIFICATION_PREFIX, notice.kind);
        let mut item = saga_key(order, &record);
        item.insert(saga::CUSTOMER.to_owned(), attr::s(notice.customer.as_str()));
        item.insert(saga::MESSAGE.to_owned(), attr::s(notice.message));
        item.insert(saga::CREATED_AT.to_owned(), attr::s(format_ts(now)));
        let sent = self.put_once(item).send().await;
        guarded("record notification", sent)
    }
}
