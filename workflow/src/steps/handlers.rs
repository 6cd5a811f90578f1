//! What each step does. Forward steps move the order along; compensation steps each undo one
//! thing if, and only if, it was done, which is why one linear compensation path is correct
//! wherever the saga failed.

use super::payment::{ProviderAnswer, authorize};
use super::store::{Charge, NewVoucher, Notice, OrderAt, Reservation, StatusMove};
use super::{SagaState, Step, StepError, Steps};
use orders_domain::voucher::earns_voucher;
use orders_domain::{OrderStatus, VOUCHER_DISCOUNT, VoucherCode};
use serde_json::{Value, json};

impl Steps {
    pub(super) async fn run(&self, step: Step, s: &SagaState) -> Result<Value, StepError> {
        let o = &s.order;
        let at = OrderAt::now(o.order_id);
        match step {
            Step::ReserveInventory => match self.store.reserve(at, &o.items).await? {
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
            },
            Step::ProcessPayment => {
                let charge = match self.store.charge(o.order_id).await? {
                    Some(existing) => existing,
                    None => {
                        let ProviderAnswer::Charged { charge_id } =
                            authorize(&o.payment_method, self.settings.payment_transient_rate)?;
                        let charge = Charge {
                            charge_id,
                            amount: o.total_cents,
                            refunded: false,
                        };
                        self.store
                            .record_charge(at, &charge, &o.payment_method)
                            .await?
                    }
                };
                self.mark(at, step, OrderStatus::PaymentProcessed, None)
                    .await?;
                Ok(json!({"chargeId": charge.charge_id, "amountCents": charge.amount.0}))
            }
            Step::SendNotification => {
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
                self.mark(at, step, OrderStatus::Failed, None).await?;
                Ok(json!({"status": OrderStatus::Failed}))
            }
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
