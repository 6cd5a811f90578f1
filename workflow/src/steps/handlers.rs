//! What each step does. Forward steps move the order along; compensation steps each undo one
//! thing if, and only if, it was done, which is why one linear compensation path is correct
//! wherever the saga failed.

use super::payment::{PaymentAsk, charge_for};
use super::store::{NewVoucher, Notice, OrderAt, PaymentRequest, Reservation, StatusMove};
use super::{SagaState, Step, StepError, Steps};
use orders_domain::lifecycle::{ORDER_CANCELLED, valid_tracking_number};
use orders_domain::voucher::earns_voucher;
use orders_domain::{OrderStatus, PaymentId, PaymentStatus, VOUCHER_DISCOUNT, VoucherCode};
use serde_json::{Value, json};

impl Steps {
    pub(super) async fn run(
        &self,
        step: Step,
        s: &SagaState,
        token: Option<&str>,
    ) -> Result<Value, StepError> {
        let o = &s.order;
        let at = OrderAt::now(o.order_id);
        match step {
            Step::ReserveInventory => {
                self.not_cancelled(at).await?;
                match self.store.reserve(at, &o.items).await? {
                    Reservation::Reserved => {
                        self.mark(at, step, OrderStatus::InventoryReserved, None)
                            .await?;
                        Ok(json!({"reserved": o.items.len()}))
                    }
                    Reservation::Short {
                        product,
                        available,
                        requested,
                    } => Err(StepError::OutOfStock(format!(
                        "product {product}: {requested} requested, {available} available"
                    ))),
                }
            }
            Step::RequestPayment => {
                let token = token.ok_or_else(|| {
                    StepError::InvalidInput("RequestPayment needs its taskToken".into())
                })?;
                let rate = self.settings.payment_transient_rate;
                if rate > 0.0 && fastrand::f64() < rate {
                    return Err(StepError::Transient("payment provider timed out".into()));
                }
                // The move first: it is refused once the customer cancelled, so no payment is
                // requested for a cancelled order.
                self.mark(at, step, OrderStatus::AwaitingPayment, None)
                    .await?;
                let payment_id = PaymentId::for_order(o.order_id);
                let request = PaymentRequest {
                    payment_id: &payment_id,
                    amount: o.total_cents,
                    method: &o.payment_method,
                    token,
                };
                let status = self.store.request_payment(at, &request).await?;
                let charge = (status == PaymentStatus::Requested)
                    .then(|| charge_for(o.order_id, o.total_cents, &o.payment_method));
                let ask = PaymentAsk { payment_id, charge };
                Ok(serde_json::to_value(ask).expect("plain data serializes"))
            }
            Step::SendNotification => {
                self.not_cancelled(at).await?;
                let rate = self.settings.notification_failure_rate;
                if rate > 0.0 && fastrand::f64() < rate {
                    return Err(StepError::Transient(
                        "notification service unavailable".into(),
                    ));
                }
                let message = format!(
                    "Your order {} of {} EUR is confirmed.",
                    o.order_id, o.total_cents
                );
                let notice = Notice {
                    customer: &o.customer_id,
                    kind: "order-confirmed",
                    message: &message,
                };
                let sent = self.store.notify(at, &notice).await?;
                tracing::info!(customer_id = %o.customer_id, new = sent, "customer notified");
                Ok(json!({"notified": true}))
            }
            Step::MarkShipped => {
                let shipment = s.shipment.as_ref().ok_or_else(|| {
                    StepError::InvalidInput("MarkShipped needs $.shipment".into())
                })?;
                if !valid_tracking_number(&shipment.tracking_number) {
                    return Err(StepError::InvalidInput(format!(
                        "bad tracking number {:?}",
                        shipment.tracking_number
                    )));
                }
                self.store.mark_shipped(at, step, shipment).await?;
                Ok(json!({"trackingNumber": shipment.tracking_number}))
            }
            Step::IssueVoucher => {
                if !earns_voucher(o.total_cents) {
                    return Ok(json!({"voucherCode": null}));
                }
                let code = voucher_code_for(o.order_id);
                let voucher = NewVoucher {
                    customer: &o.customer_id,
                    code: &code,
                    discount: VOUCHER_DISCOUNT,
                };
                let code = self.store.issue_voucher(at, &voucher).await?;
                Ok(json!({"voucherCode": code.as_str()}))
            }
            Step::MarkCompleted => {
                self.mark(at, step, OrderStatus::Completed, None).await?;
                Ok(json!({"status": OrderStatus::Completed}))
            }
            Step::BeginCompensation => {
                let reason = match &s.error {
                    Some(e) if e.error == ORDER_CANCELLED => "cancelled by the customer".to_owned(),
                    Some(e) if e.cause.is_empty() => e.error.clone(),
                    Some(e) => format!("{}: {}", e.error, e.cause),
                    None => "unknown failure".to_owned(),
                };
                self.mark(at, step, OrderStatus::Compensating, Some(&reason))
                    .await?;
                Ok(json!({"reason": reason}))
            }
            Step::RefundPayment => Ok(json!({"refunded": self.store.refund(at).await?})),
            Step::ReleaseInventory => Ok(json!({"released": self.store.release(at).await?})),
            Step::RestoreVoucher => {
                let restored = match &o.voucher_code {
                    Some(code) => self.store.restore_voucher(at, code).await?,
                    None => false,
                };
                let withdrawn = self.store.withdraw_voucher(at).await?;
                Ok(json!({"restored": restored, "withdrawn": withdrawn}))
            }
            Step::MarkFailed => {
                // A failure that overtook an accepted cancellation still ends the order as
                // the customer was told it would: CANCELLED.
                let to = match self.store.cancellation(at.order).await? {
                    Some(_) => OrderStatus::Cancelled,
                    None => OrderStatus::Failed,
                };
                self.mark(at, step, to, None).await?;
                Ok(json!({"status": to}))
            }
            Step::MarkCancelled => {
                self.mark(at, step, OrderStatus::Cancelled, None).await?;
                Ok(json!({"status": OrderStatus::Cancelled}))
            }
        }
    }

    /// A step about to act on an order the customer cancelled stops with `OrderCancelled`.
    async fn not_cancelled(&self, at: OrderAt) -> Result<(), StepError> {
        match self.store.cancellation(at.order).await? {
            Some(c) => Err(StepError::OrderCancelled(c.reason.unwrap_or_default())),
            None => Ok(()),
        }
    }
}

impl Steps {
    /// The step's status change: its last act, which also marks the step SUCCEEDED.
    async fn mark(
        &self,
        at: OrderAt,
        step: Step,
        to: OrderStatus,
        reason: Option<&str>,
    ) -> Result<(), StepError> {
        let change = StatusMove { step, to, reason };
        self.store.set_status(at, change).await?;
        Ok(())
    }
}

/// The voucher an order earns has a code derived from the order id, so a re-run of the step
/// names the same voucher. From the id's last 64 bits: an order id starts with its creation
/// time (UUID v7), so its head is shared by every order of the same millisecond, while its
/// tail is 62 random bits.
pub fn voucher_code_for(order: orders_domain::OrderId) -> VoucherCode {
    let hex = order.0.simple().to_string().to_uppercase();
    VoucherCode::from_trusted(format!("VCH-{}", &hex[16..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_domain::OrderId;
    use std::collections::HashSet;

    #[test]
    fn voucher_codes_differ_for_orders_of_the_same_millisecond() {
        // 10,000 ids are made within a few milliseconds: their time prefixes collide.
        let ids: Vec<OrderId> = (0..10_000).map(|_| OrderId::new()).collect();
        let codes: HashSet<_> = ids.iter().map(|id| voucher_code_for(*id)).collect();
        assert_eq!(codes.len(), ids.len());
        let code = voucher_code_for(ids[0]);
        assert_eq!(
            code,
            voucher_code_for(ids[0]),
            "a re-run names the same voucher"
        );
        assert!(code.as_str().starts_with("VCH-") && code.as_str().len() == 20);
    }
}
