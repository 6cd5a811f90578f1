//! Vouchers: orders over 100.00 EUR earn one 5.00 EUR voucher, issued READY by the saga and
//! redeemed (READY -> USED) inside the order's own create transaction; a failed order puts its
//! redeemed voucher back to READY.

use crate::money::Cents;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a voucher takes off an order.
pub const VOUCHER_DISCOUNT: Cents = Cents(500);
/// An order must total strictly more than this to earn a voucher.
pub const VOUCHER_THRESHOLD: Cents = Cents(10_000);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoucherStatus {
    Ready,
    Used,
    Disabled,
}

impl VoucherStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VoucherStatus::Ready => "READY",
            VoucherStatus::Used => "USED",
            VoucherStatus::Disabled => "DISABLED",
        }
    }
}

impl fmt::Display for VoucherStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VoucherStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "READY" => Ok(VoucherStatus::Ready),
            "USED" => Ok(VoucherStatus::Used),
            "DISABLED" => Ok(VoucherStatus::Disabled),
            other => Err(format!("unknown voucher status {other:?}")),
        }
    }
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
}
