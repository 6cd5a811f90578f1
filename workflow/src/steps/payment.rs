//! The simulated payment provider, Stripe test-token style: `pm_card_visa` (and any other
//! token) is charged, a token containing `Declined` (`pm_card_chargeDeclined`,
//! `pm_card_chargeDeclinedInsufficientFunds`, ...) is declined, and a configurable share of
//! attempts fails transiently to exercise the retries. The charge is only recorded (and so
//! only "happens") once per order.

use super::StepError;

pub enum ProviderAnswer {
    Charged { charge_id: String },
}

pub fn authorize(payment_method: &str, transient_rate: f64) -> Result<ProviderAnswer, StepError> {
    if transient_rate > 0.0 && fastrand::f64() < transient_rate {
        return Err(StepError::Transient("payment provider timed out".into()));
    }
    if payment_method.contains("Declined") {
        return Err(StepError::PaymentDeclined(format!(
            "card declined ({payment_method})"
        )));
    }
    Ok(ProviderAnswer::Charged {
        charge_id: format!("ch_{}", uuid::Uuid::new_v4().simple()),
    })
}
