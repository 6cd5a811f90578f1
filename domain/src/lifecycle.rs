//! What the order's outside actors leave on it: the payment the provider confirms by webhook,
//! the shipment the warehouse reports, the customer's cancellation request, and the internal
//! signals that carry their results to the waiting saga.
//!
//! The invariants these types serve: one payment per order, its id derived from the order id
//! (so a re-run of the request is the same payment at the provider); a webhook is applied at
//! most once, by its `webhook-id`; and no order ends FAILED or CANCELLED holding a charge (a
//! success that arrives too late is refunded as it is recorded).

use crate::ids::OrderId;
use crate::money::Cents;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The provider's id of an order's payment: `pay_` and the order id's 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "pay_0190c1d2e3f47a8b9c0d1e2f3a4b5c6d")]
pub struct PaymentId(String);

impl PaymentId {
    pub fn for_order(order: OrderId) -> Self {
        PaymentId(format!("pay_{}", order.0.simple()))
    }

    /// `pay_` and 1-64 ASCII letters or digits, as a provider may send it.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let rest = s.strip_prefix("pay_").ok_or("must start with pay_")?;
        if rest.is_empty() || rest.len() > 64 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("must be pay_ and 1-64 letters or digits");
        }
        Ok(PaymentId(s.to_owned()))
    }

    pub fn from_trusted(s: String) -> Self {
        PaymentId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PaymentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

crate::wire_names! {
    /// A payment's state: REQUESTED until the provider's webhook says SUCCEEDED or FAILED;
    /// a succeeded payment is REFUNDED by compensation, or at once when it arrives too late.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum PaymentStatus with ALL {
        Requested = "REQUESTED",
        Succeeded = "SUCCEEDED",
        Failed = "FAILED",
        Refunded = "REFUNDED",
    }
    unknown: String = |s: &str| s.to_owned();
}

/// An order's payment as GET shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub payment_id: PaymentId,
    pub status: PaymentStatus,
}

/// The warehouse's report that the parcel left: what GET shows once SHIPPED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    #[schema(example = "TRK-4F2A9C1B")]
    pub tracking_number: String,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub shipped_at: DateTime<Utc>,
}

/// A tracking number is 1-64 visible ASCII characters.
pub fn valid_tracking_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// The customer's request to cancel, as recorded on the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pub reason: Option<String>,
    pub requested_at: DateTime<Utc>,
}

/// The longest cancellation reason accepted.
pub const MAX_REASON_CHARS: usize = 500;

/// What the provider reports for a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentResult {
    #[serde(rename = "payment.succeeded")]
    Succeeded,
    #[serde(rename = "payment.failed")]
    Failed,
}

/// A verified payment webhook, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentWebhook {
    /// The Standard Webhooks `webhook-id`: the same id twice has one effect.
    pub webhook_id: String,
    pub result: PaymentResult,
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Cents,
    pub reason: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// What applying a webhook came to. Every one is acknowledged with a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Its result was recorded and the waiting saga will be signalled.
    Applied,
    /// This `webhook-id` was applied before; nothing changed now.
    Duplicate,
    /// A charge that succeeded after its order stopped waiting for it (cancelled, failed,
    /// timed out): recorded and refunded in the same write.
    Refunded,
    /// Recorded, nothing else to do (unknown order or payment, a payment already settled,
    /// an amount that does not match): the reason is logged.
    Ignored(String),
}

/// The error names the saga's Catch matches on a signalled failure.
pub const PAYMENT_DECLINED: &str = "PaymentDeclined";
pub const ORDER_CANCELLED: &str = "OrderCancelled";

/// An internal signal for a waiting saga, carried by the outbox (never published): it is
/// written in the same transaction as the fact it reports, so an acknowledged webhook or
/// cancellation always reaches the saga, at least once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "camelCase")]
pub enum TaskSignal {
    /// Completes the task waiting on `token` with `output`.
    #[serde(rename_all = "camelCase")]
    Succeed { token: String, output: Value },
    /// Fails the task waiting on `token` with the named error.
    #[serde(rename_all = "camelCase")]
    Fail {
        token: String,
        error: String,
        cause: String,
    },
    /// Fails whatever task the order's saga (`execution`, its name) waits in with
    /// `OrderCancelled`; if it waits in none, its next step sees the request and stops.
    #[serde(rename_all = "camelCase")]
    CancelWaiting {
        execution: String,
        reason: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_ids_are_the_orders_and_parse() {
        let order = OrderId::new();
        let id = PaymentId::for_order(order);
        assert_eq!(PaymentId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.as_str().len(), 36);
        assert!(PaymentId::parse("pay_").is_err());
        assert!(PaymentId::parse("ch_1").is_err());
        assert!(PaymentId::parse("pay_a-b").is_err());
    }

    #[test]
    fn signals_round_trip_tagged() {
        let s = TaskSignal::Fail {
            token: "t".into(),
            error: PAYMENT_DECLINED.into(),
            cause: "card declined".into(),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["signal"], "fail");
        assert_eq!(serde_json::from_value::<TaskSignal>(v).unwrap(), s);
        let c: TaskSignal =
            serde_json::from_str(r#"{"signal":"cancelWaiting","execution":"e","reason":null}"#)
                .unwrap();
        assert!(matches!(c, TaskSignal::CancelWaiting { .. }));
    }

    #[test]
    fn tracking_numbers() {
        assert!(valid_tracking_number("TRK-1"));
        assert!(!valid_tracking_number(""));
        assert!(!valid_tracking_number("a b"));
    }
}
