//! Money as integer cents. Prices arrive as JSON numbers in EUR (`1299.99`) and leave the same
//! way, but every sum, comparison and discount is done on `i64` cents, so 3 x 0.10 + 0.20 is
//! exactly 0.50 and never 0.5000000000000001.
//!
//! Parsing goes through the number's shortest round-trip decimal form, which is the text the
//! client wrote for any amount with up to 15 significant digits; that is how "at most two
//! decimals" is checked exactly without an arbitrary-precision JSON parser.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Largest unit price accepted: 10,000,000.00 EUR. With at most 100 items of at most 10,000
/// units, an order total stays far inside `i64` and inside the 15 digits an f64 carries exactly.
pub const MAX_PRICE: Cents = Cents(1_000_000_000);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cents(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a number")]
    NotANumber,
    #[error("must not be negative")]
    Negative,
    #[error("must have at most 2 decimal places")]
    TooPrecise,
    #[error("must be at most 10000000.00")]
    TooLarge,
}

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// Parses an amount in EUR given as a JSON number.
    pub fn from_json_number(n: &serde_json::Number) -> Result<Cents, MoneyError> {
        if let Some(u) = n.as_u64() {
            return u
                .checked_mul(100)
                .and_then(|c| i64::try_from(c).ok())
                .map(Cents)
                .filter(|c| *c <= MAX_PRICE)
                .ok_or(MoneyError::TooLarge);
        }
        if n.as_i64().is_some() {
            return Err(MoneyError::Negative);
        }
        let f = n.as_f64().ok_or(MoneyError::NotANumber)?;
        Self::from_f64_decimal(f)
    }

    fn from_f64_decimal(f: f64) -> Result<Cents, MoneyError> {
        if !f.is_finite() {
            return Err(MoneyError::NotANumber);
        }
        if f < 0.0 {
            return Err(MoneyError::Negative);
        }
        if f > MAX_PRICE.0 as f64 / 100.0 {
            return Err(MoneyError::TooLarge);
        }
        // Rust's Display for f64 is the shortest string that round-trips, without exponent.
        let text = f.to_string();
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        if frac.len() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        let int: i64 = int.parse().map_err(|_| MoneyError::NotANumber)?;
        let mut frac_cents: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| MoneyError::NotANumber)?
        };
        if frac.len() == 1 {
            frac_cents *= 10;
        }
        Ok(Cents(int * 100 + frac_cents))
    }

    pub fn checked_mul(self, qty: u32) -> Option<Cents> {
        self.0.checked_mul(i64::from(qty)).map(Cents)
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    /// Subtracts, stopping at zero: a discount never makes an order pay the customer.
    pub fn saturating_sub(self, other: Cents) -> Cents {
        Cents((self.0 - other.0).max(0))
    }

    /// The amount as a JSON number in EUR: whole euros as integers, otherwise the exact
    /// two-decimal value (cents / 100 is correctly rounded, and serde_json prints the
    /// shortest round-trip form, which is the two-decimal text).
    pub fn to_json_number(self) -> serde_json::Number {
        if self.0 % 100 == 0 {
            serde_json::Number::from(self.0 / 100)
        } else {
            serde_json::Number::from_f64(self.0 as f64 / 100.0).expect("finite")
        }
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

/// Serialized as a JSON number in EUR.
impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json_number().serialize(s)
    }
}

/// Deserialized from a JSON number in EUR, with the same checks as a request price.
impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        Cents::from_json_number(&n).map_err(serde::de::Error::custom)
    }
}

/// The OpenAPI schema of an amount in EUR, up to `maximum` when it has one.
fn eur_schema(maximum: Option<i64>) -> utoipa::openapi::ObjectBuilder {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Number)
        .minimum(Some(0))
        .maximum(maximum)
        .multiple_of(Some(0.01))
        .description(Some("Amount in EUR, at most two decimals"))
}

/// A sum of prices, for the API document. Unlike one price (`Cents`, at most 10,000,000) it
/// has no upper bound of its own: 100 items of 10,000 units each can add up to far more.
pub struct Total;

impl utoipa::PartialSchema for Total {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        eur_schema(None).into()
    }
}

impl utoipa::ToSchema for Total {}

impl utoipa::PartialSchema for Cents {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        eur_schema(Some(10_000_000))
            .examples([serde_json::json!(1299.99)])
            .into()
    }
}

impl utoipa::ToSchema for Cents {}

/// Serde adapter for machine-facing contracts (the saga input, stored rows) that carry
/// amounts as integer cents rather than EUR numbers: `#[serde(with = "orders_domain::money::as_cents")]`.
pub mod as_cents {
    use super::Cents;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Cents, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(c.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cents, D::Error> {
        i64::deserialize(d).map(Cents)
    }
}

/// Every amount is in euros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Currency {
    #[serde(rename = "EUR")]
    Eur,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Cents, MoneyError> {
        let n: serde_json::Number = serde_json::from_str(s).unwrap();
        Cents::from_json_number(&n)
    }

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(parse("1299.99"), Ok(Cents(129_999)));
        assert_eq!(parse("0.1"), Ok(Cents(10)));
        assert_eq!(parse("0.10"), Ok(Cents(10)));
        assert_eq!(parse("0"), Ok(Cents(0)));
        assert_eq!(parse("7"), Ok(Cents(700)));
        assert_eq!(parse("1e2"), Ok(Cents(10_000)));
        assert_eq!(parse("0.07"), Ok(Cents(7)));
        assert_eq!(parse("10000000"), Ok(MAX_PRICE));
    }

    #[test]
    fn rejects_bad_amounts() {
        assert_eq!(parse("1.005"), Err(MoneyError::TooPrecise));
        assert_eq!(parse("0.001"), Err(MoneyError::TooPrecise));
        assert_eq!(parse("-1"), Err(MoneyError::Negative));
        assert_eq!(parse("-0.5"), Err(MoneyError::Negative));
        assert_eq!(parse("10000000.01"), Err(MoneyError::TooLarge));
        assert_eq!(parse("18446744073709551615"), Err(MoneyError::TooLarge));
        assert_eq!(parse("1e300"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn sums_are_exact() {
        let ten = parse("0.10").unwrap();
        let total = ten
            .checked_mul(3)
            .unwrap()
            .checked_add(parse("0.20").unwrap())
            .unwrap();
        assert_eq!(total, Cents(50));
        assert_eq!(serde_json::to_string(&total).unwrap(), "0.5");
        // The f64 way gets it wrong, which is the point of integer cents.
        assert_ne!(0.1f64 + 0.2, 0.3);
    }

    #[test]
    fn renders_as_eur_numbers() {
        assert_eq!(serde_json::to_string(&Cents(129_999)).unwrap(), "1299.99");
        assert_eq!(serde_json::to_string(&Cents(10_000)).unwrap(), "100");
        assert_eq!(serde_json::to_string(&Cents(1)).unwrap(), "0.01");
        assert_eq!(
            serde_json::to_string(&Cents(123_456_789_012)).unwrap(),
            "1234567890.12"
        );
        assert_eq!(Cents(-505).to_string(), "-5.05");
    }

    #[test]
    fn discount_stops_at_zero() {
        assert_eq!(Cents(300).saturating_sub(Cents(500)), Cents::ZERO);
        assert_eq!(Cents(10_500).saturating_sub(Cents(500)), Cents(10_000));
    }
}
