//! The create-order body, validated with the rules of Orders' `domain::validation` (the same
//! POST body, so the benchmark's load generator drives both with one payload): `customerId` and
//! `productId` 1-128 characters, not blank, no control characters; `items` 1-100 with at most
//! 99 distinct products; `quantity` an integer 1-10000 (`2.0` counts as an integer); `price` a
//! number >= 0 with at most two decimals, at most 10,000,000.00; optional `paymentMethod`
//! (`pm_` and 1-125 letters, digits or underscores; default `pm_card_visa`); unknown fields
//! refused. Money is integer cents from here on. `voucherCode` (redeeming an earned voucher)
//! is not modelled and is refused.
//!
//! Unlike Orders, which refuses a bad body with 400 before storing anything, a Restate `send`
//! is accepted (202) as soon as the ingress has logged it; only a body that is not JSON is
//! refused there. The saga validates first and ends a bad order with a terminal error (code
//! 400) before any state is written, so nothing is reserved, charged or recorded for it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const MAX_ITEMS: usize = 100;
pub const MAX_DISTINCT_PRODUCTS: usize = 99;
pub const MAX_QUANTITY: i64 = 10_000;
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;
pub const DEFAULT_PAYMENT_METHOD: &str = "pm_card_visa";

/// One validated line, the price in cents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub product_id: String,
    pub quantity: u32,
    pub price_cents: i64,
}

/// A request that passed validation: what the saga keeps in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Draft {
    pub customer_id: String,
    pub items: Vec<Item>,
    pub payment_method: String,
    pub total_cents: i64,
}

impl Draft {
    /// Quantities per distinct product, in a stable order (what one reservation holds).
    pub fn per_product(&self) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        for it in &self.items {
            *out.entry(it.product_id.clone()).or_insert(0u32) += it.quantity;
        }
        out
    }
}

/// Every problem of `body`, as `field: message`, or the draft.
pub fn validate(body: &Value) -> Result<Draft, Vec<String>> {
    let mut errs = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(vec![": the body must be a JSON object".into()]);
    };
    unknown(
        obj,
        &["customerId", "items", "voucherCode", "paymentMethod"],
        "",
        &mut errs,
    );
    let customer_id = name(obj.get("customerId"), "customerId", true, &mut errs);
    // Redeeming a voucher needs the customer's vouchers, which the peer does not keep: a code
    // is refused rather than silently ignored (Orders answers 409 for a code it cannot use).
    if name(obj.get("voucherCode"), "voucherCode", false, &mut errs).is_some() {
        errs.push("voucherCode: redemption is not modelled by the peer".into());
    }
    let payment_method = match obj.get("paymentMethod") {
        None | Some(Value::Null) => Some(DEFAULT_PAYMENT_METHOD.to_owned()),
        Some(Value::String(s)) if payment_method_ok(s) => Some(s.clone()),
        Some(_) => {
            errs.push("paymentMethod: must be pm_ and 1-125 letters, digits or underscores".into());
            None
        }
    };
    let items = match obj.get("items") {
        Some(Value::Array(list)) if (1..=MAX_ITEMS).contains(&list.len()) => {
            let parsed: Vec<Option<Item>> = list
                .iter()
                .enumerate()
                .map(|(i, v)| item(i, v, &mut errs))
                .collect();
            parsed.into_iter().collect::<Option<Vec<_>>>()
        }
        Some(Value::Array(_)) => {
            errs.push(format!("items: must contain 1 to {MAX_ITEMS} items"));
            None
        }
        None | Some(Value::Null) => {
            errs.push("items: is required".into());
            None
        }
        Some(_) => {
            errs.push("items: must be an array".into());
            None
        }
    };
    let total = items.as_ref().and_then(|items| {
        items.iter().try_fold(0i64, |acc, it| {
            it.price_cents
                .checked_mul(i64::from(it.quantity))
                .and_then(|l| acc.checked_add(l))
        })
    });
    if let Some(items) = &items {
        let distinct: std::collections::BTreeSet<_> = items.iter().map(|i| &i.product_id).collect();
        if distinct.len() > MAX_DISTINCT_PRODUCTS {
            errs.push(format!(
                "items: must list at most {MAX_DISTINCT_PRODUCTS} distinct products"
            ));
        }
    }
    match (customer_id, items, payment_method, total) {
        (Some(customer_id), Some(items), Some(payment_method), Some(total_cents))
            if errs.is_empty() =>
        {
            Ok(Draft {
                customer_id,
                items,
                payment_method,
                total_cents,
            })
        }
        _ => Err(errs),
    }
}

fn unknown(obj: &Map<String, Value>, known: &[&str], prefix: &str, errs: &mut Vec<String>) {
    for k in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        errs.push(format!("{prefix}{k}: unknown field"));
    }
}

/// A 1-128 character name with no control character and not blank.
fn name(v: Option<&Value>, field: &str, required: bool, errs: &mut Vec<String>) -> Option<String> {
    let problem = match v {
        None | Some(Value::Null) if !required => return None,
        None | Some(Value::Null) => "is required",
        Some(Value::String(s)) if s.is_empty() => "must not be empty",
        Some(Value::String(s)) if s.trim().is_empty() => "must not be blank",
        Some(Value::String(s)) if s.chars().count() > 128 => "must be at most 128 characters",
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            "must not contain control characters"
        }
        Some(Value::String(s)) => return Some(s.clone()),
        Some(_) => "must be a string",
    };
    errs.push(format!("{field}: {problem}"));
    None
}

fn payment_method_ok(s: &str) -> bool {
    s.strip_prefix("pm_").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 125
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

fn item(i: usize, v: &Value, errs: &mut Vec<String>) -> Option<Item> {
    let Some(obj) = v.as_object() else {
        errs.push(format!("items[{i}]: must be an object"));
        return None;
    };
    unknown(
        obj,
        &["productId", "quantity", "price"],
        &format!("items[{i}]."),
        errs,
    );
    let product_id = name(
        obj.get("productId"),
        &format!("items[{i}].productId"),
        true,
        errs,
    );
    let quantity = obj
        .get("quantity")
        .and_then(Value::as_number)
        .and_then(whole)
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .map(|q| q as u32);
    if quantity.is_none() {
        errs.push(format!(
            "items[{i}].quantity: must be an integer from 1 to 10000"
        ));
    }
    let price = obj
        .get("price")
        .and_then(Value::as_number)
        .ok_or("must be a number");
    let price = price.and_then(cents);
    if let Err(why) = price {
        errs.push(format!("items[{i}].price: {why}"));
    }
    Some(Item {
        product_id: product_id?,
        quantity: quantity?,
        price_cents: price.ok()?,
    })
}

/// A JSON number with no fractional part (`3` or `3.0`), exact below 2^53.
fn whole(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0)
            .map(|f| f as i64)
    })
}

/// An amount in EUR as exact cents: at most two decimals, not negative, not above the limit.
pub fn cents(n: &serde_json::Number) -> Result<i64, &'static str> {
    if let Some(u) = n.as_u64() {
        return u
            .checked_mul(100)
            .and_then(|c| i64::try_from(c).ok())
            .filter(|c| *c <= MAX_PRICE_CENTS)
            .ok_or("must be at most 10000000.00");
    }
    if n.as_i64().is_some() {
        return Err("must not be negative");
    }
    let f = n
        .as_f64()
        .filter(|f| f.is_finite())
        .ok_or("must be a number")?;
    if f < 0.0 {
        return Err("must not be negative");
    }
    if f > MAX_PRICE_CENTS as f64 / 100.0 {
        return Err("must be at most 10000000.00");
    }
    // Display of f64 is the shortest text that round-trips, without an exponent.
    let text = f.to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    if frac.len() > 2 {
        return Err("must have at most 2 decimal places");
    }
    let int: i64 = int.parse().map_err(|_| "must be a number")?;
    let frac_cents: i64 = format!("{frac:0<2}")
        .parse()
        .map_err(|_| "must be a number")?;
    Ok(int * 100 + frac_cents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_benchmark_body_in_cents() {
        let d = validate(&json!({"customerId": "peer-1",
            "items": [{"productId": "laptop", "quantity": 1, "price": 1299.99}]}))
        .unwrap();
        assert_eq!(d.total_cents, 129_999);
        assert_eq!(d.payment_method, "pm_card_visa");
        let d = validate(&json!({"customerId": "c", "items": [
            {"productId": "a", "quantity": 3, "price": 0.10},
            {"productId": "a", "quantity": 2.0, "price": 7}]}))
        .unwrap();
        assert_eq!(d.total_cents, 1430);
        assert_eq!(d.per_product()["a"], 5);
    }

    #[test]
    fn lists_every_problem() {
        let errs = validate(&json!({"customerId": " ", "extra": 1, "items": [
            {"productId": "a", "quantity": 0, "price": 1.005},
            {"quantity": 10001, "price": -1, "colour": "red"}]}))
        .unwrap_err();
        for want in [
            "customerId",
            "extra",
            "items[0].quantity",
            "items[0].price",
            "items[1].productId",
            "items[1].quantity",
            "items[1].price",
            "items[1].colour",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(&format!("{want}:"))),
                "{want}: {errs:?}"
            );
        }
        assert!(validate(&json!({"customerId": "c", "items": []})).is_err());
        assert!(
            validate(&json!({"customerId": "c", "paymentMethod": "visa",
            "items": [{"productId": "a", "quantity": 1, "price": 1}]}))
            .is_err()
        );
        assert!(validate(&json!([])).is_err());
    }

    #[test]
    fn exact_cents() {
        let c = |s: &str| cents(&serde_json::from_str(s).unwrap());
        assert_eq!(c("1299.99"), Ok(129_999));
        assert_eq!(c("0.1"), Ok(10));
        assert_eq!(c("0.07"), Ok(7));
        assert_eq!(c("1e2"), Ok(10_000));
        assert_eq!(c("10000000"), Ok(MAX_PRICE_CENTS));
        assert!(c("10000000.01").is_err());
        assert!(c("1.005").is_err());
        assert!(c("-0.5").is_err());
    }
}
