//! Vouchers: orders over 100.00 EUR earn one 5.00 EUR voucher, issued READY by the saga and
//! redeemed (READY -> USED) inside the order's own create transaction; a failed order puts its
//! redeemed voucher back to READY.

use crate::money::Cents;
use serde::{Deserialize, Serialize};

/// What a voucher takes off an order.
pub const VOUCHER_DISCOUNT: Cents = Cents(500);
/// An order must total strictly more than this to earn a voucher.
pub const VOUCHER_THRESHOLD: Cents = Cents(10_000);

crate::wire_names! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum VoucherStatus {
        Ready = "READY",
        Used = "USED",
        Disabled = "DISABLED",
    }
    unknown: String = |s| format!("unknown voucher status {s:?}");
}

/// Whether an order of this total earns a voucher.
pub fn earns_voucher(total: Cents) -> bool {
    total > VOUCHER_THRESHOLD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_strict() {
        assert!(!earns_voucher(Cents(10_000)));
        assert!(earns_voucher(Cents(10_001)));
    }

    /// The stores read back what `as_str` wrote, and the API shows serde's form of the same.
    #[test]
    fn status_names_round_trip_and_match_serde() {
        for s in [
            VoucherStatus::Ready,
            VoucherStatus::Used,
            VoucherStatus::Disabled,
        ] {
            assert_eq!(s.as_str().parse::<VoucherStatus>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(
            "ready".parse::<VoucherStatus>().unwrap_err(),
            r#"unknown voucher status "ready""#
        );
    }
}
