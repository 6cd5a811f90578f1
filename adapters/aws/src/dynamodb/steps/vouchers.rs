//! The voucher an order earns, and the one it redeemed. Issuing is one transaction: the
//! voucher (put only if its code is free) and the order's `voucherIssued` (set only if unset),
//! so an order earns at most one voucher and a re-run returns the first one's code. Withdraw
//! and restore are single conditional updates on the voucher's status and order.

use super::{
    DynamoStepStore, built, condition_failed, corrupt, format_ts, guarded, order_key, put_new,
    sdk_err, voucher_key,
};
use crate::dynamodb::attr;
use crate::tables::attrs::{order as o, voucher as v};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use orders_domain::{OrderId, VoucherCode, VoucherStatus};
use orders_workflow::steps::store::{NewVoucher, OrderAt, StepResult};
use orders_workflow::steps::{StepStoreError, Vouchers};

/// One conditional status change of a voucher.
struct VoucherMove<'a> {
    code: &'a str,
    from: VoucherStatus,
    to: VoucherStatus,
    /// The attribute that must name the order: who earned it, or who redeemed it.
    holder: &'static str,
    /// Whether the move forgets the holder (a restored voucher is nobody's redemption).
    clear_holder: bool,
    order: OrderId,
    now: DateTime<Utc>,
}

impl DynamoStepStore {
    /// Moves a voucher `from` -> `to` if its `holder` attribute names the order; `false` when
    /// it did not match (absent, another status, another order's).
    async fn move_voucher(&self, m: VoucherMove<'_>) -> Result<bool, StepStoreError> {
        let expression = if m.clear_holder {
            "SET #status = :to, #updated = :now REMOVE #holder"
        } else {
            "SET #status = :to, #updated = :now"
        };
        let sent = self
            .update(&self.tables.vouchers, voucher_key(m.code))
            .update_expression(expression)
            .condition_expression("#status = :from AND #holder = :order")
            .expression_attribute_names("#status", v::STATUS)
            .expression_attribute_names("#updated", v::UPDATED_AT)
            .expression_attribute_names("#holder", m.holder)
            .expression_attribute_values(":from", attr::s(m.from.as_str()))
            .expression_attribute_values(":to", attr::s(m.to.as_str()))
            .expression_attribute_values(":order", attr::s(m.order.to_string()))
            .expression_attribute_values(":now", attr::s(format_ts(m.now)))
            .send()
            .await;
        guarded("update voucher", sent)
    }
}

#[async_trait]
impl Vouchers for DynamoStepStore {
    async fn issue_voucher(&self, at: OrderAt, new: &NewVoucher<'_>) -> StepResult<VoucherCode> {
        let OrderAt { order, now } = at;
        let (customer, code, discount) = (new.customer, new.code, new.discount);
        let now = format_ts(now);
        let mut item = voucher_key(code.as_str());
        item.insert(v::CUSTOMER.to_owned(), attr::s(customer.as_str()));
        item.insert(v::CREATED_KEY.to_owned(), attr::s(format!("{now}#{code}")));
        item.insert(v::DISCOUNT.to_owned(), attr::n(discount.0));
        item.insert(v::STATUS.to_owned(), attr::s(VoucherStatus::Ready.as_str()));
        item.insert(v::EARNED_BY.to_owned(), attr::s(order.to_string()));
        item.insert(v::CREATED_AT.to_owned(), attr::s(&now));
        item.insert(v::UPDATED_AT.to_owned(), attr::s(&now));
        let put = put_new(&self.tables.vouchers, item, v::CODE).build();
        let put = built(put)?;
        let mark = Update::builder()
            .table_name(&self.tables.orders)
            .set_key(Some(order_key(order)))
            .update_expression("SET #issued = :code")
            .condition_expression("attribute_exists(#id) AND attribute_not_exists(#issued)")
            .expression_attribute_names("#id", o::ID)
            .expression_attribute_names("#issued", o::VOUCHER_ISSUED)
            .expression_attribute_values(":code", attr::s(code.as_str()))
            // On a re-run the old order names the voucher already issued: no second read.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build();
        let mark = built(mark)?;
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(mark).build())
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(code.clone()),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
            err.as_service_error()
        {
            let reasons = c.cancellation_reasons();
            if let Some(reason) = reasons.get(1).filter(|r| condition_failed(Some(r))) {
                let Some(old) = reason.item() else {
                    return Err(StepStoreError::OrderNotFound(order));
                };
                if let Some(issued) =
                    attr::opt_s(old, o::VOUCHER_ISSUED).map_err(|e| corrupt("order", e))?
                {
                    return Ok(VoucherCode::from_trusted(issued.to_owned()));
                }
            }
            if condition_failed(reasons.first()) {
                // The code belongs to a voucher this order did not earn.
                return Err(StepStoreError::Unavailable(format!(
                    "voucher code {code} is already taken"
                )));
            }
        }
        Err(sdk_err("issue voucher", &err))
    }

    async fn withdraw_voucher(&self, at: OrderAt) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        let got = self
            .get(&self.tables.orders, order_key(order))
            .projection_expression("#issued")
            .expression_attribute_names("#issued", o::VOUCHER_ISSUED)
            .send()
            .await
            .map_err(|e| sdk_err("read order", &e))?;
        let issued = match got.item() {
            Some(item) => attr::opt_s(item, o::VOUCHER_ISSUED).map_err(|e| corrupt("order", e))?,
            None => None,
        };
        let Some(code) = issued else {
            return Ok(false);
        };
        self.move_voucher(VoucherMove {
            code,
            from: VoucherStatus::Ready,
            to: VoucherStatus::Disabled,
            holder: v::EARNED_BY,
            clear_holder: false,
            order,
            now,
        })
        .await
    }

    async fn restore_voucher(&self, at: OrderAt, code: &VoucherCode) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        self.move_voucher(VoucherMove {
            code: code.as_str(),
            from: VoucherStatus::Used,
            to: VoucherStatus::Ready,
            holder: v::REDEEMED_BY,
            clear_holder: true,
            order,
            now,
        })
        .await
    }
}
