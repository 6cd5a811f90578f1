//! The order's lifecycle. Status changes only move along the saga's edges (`PENDING ->
//! INVENTORY_RESERVED -> AWAITING_PAYMENT -> PAYMENT_PROCESSED -> SHIPPED -> COMPLETED`; any
//! status before SHIPPED `-> COMPENSATING -> FAILED | CANCELLED`), each one a conditional
//! update on the order's `version`. Once the parcel is SHIPPED nothing is compensated: a
//! shipped order can only complete.

use crate::ids::ProductId;
use crate::money::Cents;
use serde::{Deserialize, Serialize};

crate::wire_names! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum OrderStatus with ALL {
        Pending = "PENDING",
        InventoryReserved = "INVENTORY_RESERVED",
        AwaitingPayment = "AWAITING_PAYMENT",
        PaymentProcessed = "PAYMENT_PROCESSED",
        Shipped = "SHIPPED",
        Completed = "COMPLETED",
        Compensating = "COMPENSATING",
        Failed = "FAILED",
        Cancelled = "CANCELLED",
    }
    unknown: UnknownStatus = |s| UnknownStatus(s.to_owned());
}

impl OrderStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Completed | OrderStatus::Failed | OrderStatus::Cancelled
        )
    }

    /// Whether a customer may still cancel: only before the parcel leaves the warehouse.
    pub fn is_cancellable(self) -> bool {
        use OrderStatus::*;
        matches!(
            self,
            Pending | InventoryReserved | AwaitingPayment | PaymentProcessed
        )
    }

    /// Whether `self` is one of the forward statuses a cancellation request stops the saga
    /// from entering (every forward move is refused once cancellation was asked for).
    pub fn is_forward(self) -> bool {
        use OrderStatus::*;
        matches!(
            self,
            Pending | InventoryReserved | AwaitingPayment | PaymentProcessed | Shipped | Completed
        )
    }

    /// Whether the saga may move an order from `self` to `next`. Staying put is allowed so
    /// that a step re-run after a crash is a no-op rather than an error.
    pub fn can_move_to(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        self == next
            || matches!(
                (self, next),
                (Pending, InventoryReserved)
                    | (InventoryReserved, AwaitingPayment)
                    | (AwaitingPayment, PaymentProcessed)
                    | (PaymentProcessed, Shipped)
                    | (Shipped, Completed)
                    | (
                        Pending | InventoryReserved | AwaitingPayment | PaymentProcessed,
                        Compensating
                    )
                    | (Compensating, Failed | Cancelled)
            )
    }
}

impl OrderStatus {
    /// Whether an order in `self` has already been through `target`: a step re-run after a
    /// crash finds its status change done and must treat it as a no-op, not an error.
    pub fn has_reached(self, target: OrderStatus) -> bool {
        use OrderStatus::*;
        let forward = |s: OrderStatus| match s {
            Pending => Some(0),
            InventoryReserved => Some(1),
            AwaitingPayment => Some(2),
            PaymentProcessed => Some(3),
            Shipped => Some(4),
            Completed => Some(5),
            Compensating | Failed | Cancelled => None,
        };
        match (forward(self), forward(target)) {
            (Some(a), Some(b)) => a >= b,
            _ => self == target || (matches!(self, Failed | Cancelled) && target == Compensating),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

/// One line of an order, as accepted and as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    #[schema(example = "laptop")]
    pub product_id: ProductId,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: u32,
    pub price: Cents,
}

impl OrderItem {
    pub fn line_total(&self) -> Option<Cents> {
        self.price.checked_mul(self.quantity)
    }
}

/// A Stripe-style test payment method token (`pm_card_visa`, `pm_card_chargeDeclined`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentMethod(String);

impl PaymentMethod {
    pub const DEFAULT: &'static str = "pm_card_visa";

    /// `pm_` followed by 1-125 ASCII letters, digits or underscores.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let rest = s.strip_prefix("pm_").ok_or("must start with pm_")?;
        if rest.is_empty() || rest.len() > 125 {
            return Err("must be 4-128 characters");
        }
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err("may contain only letters, digits and underscores");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for PaymentMethod {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_moves_only_forward() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        use OrderStatus::*;
        assert!(Pending.can_move_to(InventoryReserved));
        assert!(PaymentProcessed.can_move_to(Compensating));
        assert!(!Completed.can_move_to(Compensating));
        assert!(!Failed.can_move_to(Pending));
        assert!(!Pending.can_move_to(Completed));
        assert!(Compensating.can_move_to(Compensating));
        assert!(PaymentProcessed.has_reached(InventoryReserved));
        assert!(!InventoryReserved.has_reached(PaymentProcessed));
        assert!(Failed.has_reached(Compensating));
        assert!(!Compensating.has_reached(Failed));
        assert!(!Failed.has_reached(Completed));
        assert!(!Completed.has_reached(Compensating));
        assert!(InventoryReserved.can_move_to(AwaitingPayment));
        assert!(!InventoryReserved.can_move_to(PaymentProcessed));
        assert!(AwaitingPayment.can_move_to(Compensating));
        assert!(
            !Shipped.can_move_to(Compensating),
            "a shipped parcel is not compensated"
        );
        assert!(Compensating.can_move_to(Cancelled));
        assert!(!Cancelled.can_move_to(Failed));
        assert!(Shipped.has_reached(AwaitingPayment));
        assert!(Cancelled.has_reached(Compensating));
        assert!(Cancelled.is_terminal() && !Shipped.is_terminal());
        assert!(PaymentProcessed.is_cancellable() && !Shipped.is_cancellable());
        assert!(!Compensating.is_cancellable());
    }

    #[test]
    fn payment_method_syntax() {
        assert!(PaymentMethod::parse("pm_card_visa").is_ok());
        assert!(PaymentMethod::parse("pm_card_chargeDeclined").is_ok());
        assert!(PaymentMethod::parse("card_visa").is_err());
        assert!(PaymentMethod::parse("pm_").is_err());
        assert!(PaymentMethod::parse("pm_a-b").is_err());
    }
}
