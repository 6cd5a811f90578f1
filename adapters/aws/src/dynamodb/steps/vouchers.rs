//! The voucher an order earns, and the one it redeemed. Issuing is a read of the order, then
//! one transaction: the voucher (put only if its code is free), the order's `voucherIssued`
//! (set only if unset) with its version + 1, conditional on the version read like every move,
//! and the public `voucher.issued` event at that version. So an order earns at most one
//! voucher, a re-run returns the first one's code from the read and writes nothing, and a
//! stale read is read again. Withdraw and restore are single conditional updates on the
//! voucher's status and order.

use super::publish::{codes, contended};
use super::status::STATUS_TRIES;
use super::{
    DynamoStepStore, built, condition_failed, corrupt, format_ts, guarded, order_key, put_new,
    sdk_err, voucher_key,
};
use crate::dynamodb::attr;
use crate::dynamodb::events::{continued_trace, outbox_put};
use crate::tables::attrs::{order as o, voucher as v};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use orders_domain::event::{CloudEvent, VoucherIssued};
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
        let stamp = format_ts(now);
        let mut item = voucher_key(code.as_str());
        item.insert(v::CUSTOMER.to_owned(), attr::s(customer.as_str()));
        item.insert(
            v::CREATED_KEY.to_owned(),
            attr::s(format!("{stamp}#{code}")),
        );
        item.insert(v::DISCOUNT.to_owned(), attr::n(discount.0));
        item.insert(v::STATUS.to_owned(), attr::s(VoucherStatus::Ready.as_str()));
        item.insert(v::EARNED_BY.to_owned(), attr::s(order.to_string()));
        item.insert(v::CREATED_AT.to_owned(), attr::s(&stamp));
        item.insert(v::UPDATED_AT.to_owned(), attr::s(&stamp));
        let put = built(put_new(&self.tables.vouchers, item, v::CODE).build())?;
        let bad = |e| corrupt("order", e);
        for _ in 0..STATUS_TRIES {
            let got = self
                .get(&self.tables.orders, order_key(order))
                .projection_expression("#id, #version, #issued, #trace")
                .expression_attribute_names("#id", o::ID)
                .expression_attribute_names("#version", o::VERSION)
                .expression_attribute_names("#issued", o::VOUCHER_ISSUED)
                .expression_attribute_names("#trace", o::TRACEPARENT)
                .send()
                .await
                .map_err(|e| sdk_err("read order", &e))?;
            let Some(read) = got.item() else {
                return Err(StepStoreError::OrderNotFound(order));
            };
            // A re-run: the first voucher stands, and nothing is written or published again.
            if let Some(issued) = attr::opt_s(read, o::VOUCHER_ISSUED).map_err(bad)? {
                return Ok(VoucherCode::from_trusted(issued.to_owned()));
            }
            let version = attr::get_n(read, o::VERSION).map_err(bad)?;
            let mark = Update::builder()
                .table_name(&self.tables.orders)
                .set_key(Some(order_key(order)))
                .update_expression("SET #issued = :code, #version = :next, #updated = :now")
                .condition_expression("#version = :expected AND attribute_not_exists(#issued)")
                .expression_attribute_names("#issued", o::VOUCHER_ISSUED)
                .expression_attribute_names("#version", o::VERSION)
                .expression_attribute_names("#updated", o::UPDATED_AT)
                .expression_attribute_values(":code", attr::s(code.as_str()))
                .expression_attribute_values(":next", attr::n(version + 1))
                .expression_attribute_values(":expected", attr::n(version))
                .expression_attribute_values(":now", attr::s(&stamp))
                // A failed condition returns the order: issued meanwhile, or only stale.
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            let mut event = CloudEvent::voucher_issued(
                now,
                version + 1,
                VoucherIssued {
                    order_id: order,
                    customer_id: customer.clone(),
                    voucher_code: code.clone(),
                    discount_cents: discount,
                },
            );
            event.traceparent = continued_trace(read).map_err(bad)?;
            let writes = vec![
                TransactWriteItem::builder().put(put.clone()).build(),
                TransactWriteItem::builder()
                    .update(built(mark.build())?)
                    .build(),
                built(outbox_put(
                    &self.tables.outbox,
                    self.outbox_retention,
                    &event,
                ))?,
            ];
            let reasons = match self.transact("issue voucher", writes).await? {
                Ok(()) => return Ok(code.clone()),
                Err(reasons) => reasons,
            };
            let stale = condition_failed(reasons.get(1));
            if stale {
                let Some(old) = reasons[1].item() else {
                    return Err(StepStoreError::OrderNotFound(order));
                };
                if let Some(issued) = attr::opt_s(old, o::VOUCHER_ISSUED).map_err(bad)? {
                    return Ok(VoucherCode::from_trusted(issued.to_owned()));
                }
            }
            if condition_failed(reasons.first()) {
                // The code belongs to a voucher this order did not earn.
                return Err(StepStoreError::Unavailable(format!(
                    "voucher code {code} is already taken"
                )));
            }
            if !stale && !contended(&reasons) {
                return Err(StepStoreError::Unavailable(format!(
                    "issue voucher: transaction cancelled: {}",
                    codes(&reasons)
                )));
            }
            // Another change of the order since the read: read again.
        }
        Err(StepStoreError::Unavailable(format!(
            "order {order} changed concurrently {STATUS_TRIES} times"
        )))
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
