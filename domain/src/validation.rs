//! Validation of a create-order request, field by field.
//!
//! The body is walked as a `serde_json::Value` rather than deserialized with `derive`, so one
//! response can list every problem (`items[2].quantity`, `customerId`, an unknown field) instead
//! of stopping at the first, and so the same parsed value feeds the idempotency fingerprint.
//! A request that fails here is rejected before any transaction: nothing is stored.

use crate::ids::{CustomerId, ProductId, VoucherCode};
use crate::money::Cents;
use crate::order::{OrderItem, PaymentMethod};
use crate::voucher::VOUCHER_DISCOUNT;
use serde::Serialize;
use serde_json::{Map, Value};

pub const MAX_ITEMS: usize = 100;
/// Distinct products one order may list: what one atomic reservation holds on every store
/// (a DynamoDB transaction takes 100 writes, one of them the reservation's own record). An
/// order over it is refused here, on both runtimes, rather than failing in the saga.
pub const MAX_DISTINCT_PRODUCTS: usize = 99;
pub const MAX_QUANTITY: u64 = 10_000;

/// One problem with one field, as listed in a problem+json `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A request that passed validation: the only way to build an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDraft {
    pub customer_id: CustomerId,
    pub items: Vec<OrderItem>,
    pub voucher_code: Option<VoucherCode>,
    pub payment_method: PaymentMethod,
    pub subtotal: Cents,
}

impl OrderDraft {
    /// What the voucher takes off, if one is redeemed.
    pub fn discount(&self) -> Cents {
        if self.voucher_code.is_some() {
            VOUCHER_DISCOUNT.min(self.subtotal)
        } else {
            Cents::ZERO
        }
    }

    pub fn total(&self) -> Cents {
        self.subtotal.saturating_sub(self.discount())
    }
}

const FIELDS: [&str; 4] = ["customerId", "items", "voucherCode", "paymentMethod"];
const ITEM_FIELDS: [&str; 3] = ["productId", "quantity", "price"];

pub fn validate_order(body: &Value) -> Result<OrderDraft, Vec<FieldError>> {
    let mut errs = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError::new("", "the body must be a JSON object")]);
    };
    unknown_fields(obj, &FIELDS, "", &mut errs);

    let customer_id = required_str(obj, "customerId", &mut errs).and_then(|s| {
        CustomerId::parse(s)
            .map_err(|m| errs.push(FieldError::new("customerId", m)))
            .ok()
    });

    let voucher_code = optional_str(obj, "voucherCode", &mut errs).and_then(|s| {
        VoucherCode::parse(s)
            .map_err(|m| errs.push(FieldError::new("voucherCode", m)))
            .ok()
    });

    let payment_method = match optional_str(obj, "paymentMethod", &mut errs) {
        None => Some(PaymentMethod::default()),
        Some(s) => PaymentMethod::parse(s)
            .map_err(|m| errs.push(FieldError::new("paymentMethod", m)))
            .ok(),
    };

    let items = match obj.get("items") {
        None | Some(Value::Null) => {
            errs.push(FieldError::new("items", "is required"));
            None
        }
        Some(Value::Array(list)) if list.is_empty() => {
            errs.push(FieldError::new("items", "must contain at least 1 item"));
            None
        }
        Some(Value::Array(list)) if list.len() > MAX_ITEMS => {
            errs.push(FieldError::new("items", "must contain at most 100 items"));
            None
        }
        Some(Value::Array(list)) => {
            let parsed: Vec<Option<OrderItem>> = list
                .iter()
                .enumerate()
                .map(|(i, v)| item(i, v, &mut errs))
                .collect();
            let items = parsed.into_iter().collect::<Option<Vec<_>>>();
            let distinct = |items: &Vec<OrderItem>| {
                let ids: std::collections::BTreeSet<_> =
                    items.iter().map(|i| &i.product_id).collect();
                ids.len()
            };
            match items {
                Some(items) if distinct(&items) > MAX_DISTINCT_PRODUCTS => {
                    let message =
                        format!("must list at most {MAX_DISTINCT_PRODUCTS} distinct products");
                    errs.push(FieldError::new("items", message));
                    None
                }
                items => items,
            }
        }
        Some(_) => {
            errs.push(FieldError::new("items", "must be an array"));
            None
        }
    };

    let subtotal = items.as_ref().and_then(|items| {
        items.iter().try_fold(Cents::ZERO, |acc, it| {
            it.line_total().and_then(|l| acc.checked_add(l))
        })
    });

    match (customer_id, items, payment_method, subtotal) {
        (Some(customer_id), Some(items), Some(payment_method), Some(subtotal))
            if errs.is_empty() =>
        {
            Ok(OrderDraft {
                customer_id,
                items,
                voucher_code,
                payment_method,
                subtotal,
            })
        }
        _ => Err(errs),
    }
}

/// A JSON number with no fractional part, as JSON Schema's `integer` means it: `3` and `3.0`
/// alike (a schema-driven client may send either). Past 2^53 a float is not exact, so only
/// integers written as such are taken there.
pub fn whole_number(n: &serde_json::Number) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < EXACT)
            .map(|f| f as i64)
    })
}

fn item(i: usize, v: &Value, errs: &mut Vec<FieldError>) -> Option<OrderItem> {
    let at = |f: &str| format!("items[{i}].{f}");
    let Some(obj) = v.as_object() else {
        errs.push(FieldError::new(format!("items[{i}]"), "must be an object"));
        return None;
    };
    unknown_fields(obj, &ITEM_FIELDS, &format!("items[{i}]."), errs);

    let product_id = required(obj.get("productId"), at("productId"), errs, |v| {
        v.as_str()
            .ok_or("must be a string")
            .and_then(ProductId::parse)
    });
    let quantity = required(obj.get("quantity"), at("quantity"), errs, |v| {
        v.as_number()
            .and_then(whole_number)
            .filter(|q| (1..=MAX_QUANTITY as i64).contains(q))
            .map(|q| q as u32)
            .ok_or("must be an integer from 1 to 10000")
    });
    let price = required(obj.get("price"), at("price"), errs, |v| {
        let n = v.as_number().ok_or("must be a number")?;
        Cents::from_json_number(n).map_err(|e| e.to_string())
    });

    Some(OrderItem {
        product_id: product_id?,
        quantity: quantity?,
        price: price?,
    })
}

fn unknown_fields(
    obj: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
    errs: &mut Vec<FieldError>,
) {
    for k in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        errs.push(FieldError::new(format!("{prefix}{k}"), "unknown field"));
    }
}

/// A required field as `read` takes it; otherwise `None`, with the problem noted against
/// `field`: "is required" when it is absent or `null`, else the error `read` gives.
fn required<'a, T, E: Into<String>>(
    value: Option<&'a Value>,
    field: impl Into<String>,
    errs: &mut Vec<FieldError>,
    read: impl FnOnce(&'a Value) -> Result<T, E>,
) -> Option<T> {
    let problem = match value.filter(|v| !v.is_null()).map(read) {
        Some(Ok(taken)) => return Some(taken),
        Some(Err(e)) => e.into(),
        None => "is required".to_owned(),
    };
    errs.push(FieldError::new(field, problem));
    None
}

fn required_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    errs: &mut Vec<FieldError>,
) -> Option<&'a str> {
    required(obj.get(field), field, errs, |v| {
        v.as_str().ok_or("must be a string")
    })
}

/// Absent and `null` both mean "not given".
fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    errs: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(_) => required_str(obj, field, errs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Vec<String> {
        validate_order(&v)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn accepts_the_seed_request() {
        let d = validate_order(&json!({
            "customerId": "customer-123",
            "items": [{"productId": "laptop", "quantity": 1, "price": 1299.99}]
        }))
        .unwrap();
        assert_eq!(d.subtotal, Cents(129_999));
        assert_eq!(d.payment_method.as_str(), "pm_card_visa");
        assert_eq!(d.total(), Cents(129_999));
    }

    #[test]
    fn at_most_one_reservation_of_distinct_products() {
        let order = |products: usize, lines: usize| {
            let items: Vec<Value> = (0..lines)
                .map(|i| json!({"productId": format!("p{}", i % products), "quantity": 1, "price": 1}))
                .collect();
            validate_order(&json!({"customerId": "c", "items": items}))
        };
        assert!(order(MAX_DISTINCT_PRODUCTS, MAX_DISTINCT_PRODUCTS).is_ok());
        assert!(
            order(MAX_DISTINCT_PRODUCTS, MAX_ITEMS).is_ok(),
            "a product listed twice counts once"
        );
        let refused = order(MAX_DISTINCT_PRODUCTS + 1, MAX_ITEMS).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].field, "items");
        assert!(
            refused[0].message.contains("99 distinct products"),
            "{}",
            refused[0].message
        );
    }

    #[test]
    fn totals_in_exact_cents() {
        let d = validate_order(&json!({
            "customerId": "c",
            "items": [{"productId": "a", "quantity": 3, "price": 0.10}, {"productId": "b", "quantity": 1, "price": 0.20}]
        }))
        .unwrap();
        assert_eq!(d.total(), Cents(50));
    }

    #[test]
    fn voucher_discount_is_capped_by_subtotal() {
        let d = validate_order(&json!({
            "customerId": "c", "voucherCode": "V1",
            "items": [{"productId": "a", "quantity": 1, "price": 3}]
        }))
        .unwrap();
        assert_eq!(d.discount(), Cents(300));
        assert_eq!(d.total(), Cents::ZERO);
    }

    #[test]
    fn lists_every_problem() {
        let f = fields(json!({
            "customerId": "",
            "items": [
                {"productId": "a", "quantity": 0, "price": 1},
                {"productId": "b", "quantity": 1.5, "price": 1.005},
                {"quantity": 10001, "price": -1, "colour": "red"}
            ],
            "extra": true
        }));
        for want in [
            "customerId",
            "extra",
            "items[0].quantity",
            "items[1].quantity",
            "items[1].price",
            "items[2].productId",
            "items[2].quantity",
            "items[2].price",
            "items[2].colour",
        ] {
            assert!(f.contains(&want.to_string()), "missing {want} in {f:?}");
        }
    }

    #[test]
    fn rejects_shapes() {
        assert_eq!(fields(json!([])), vec![""]);
        assert_eq!(fields(json!({"customerId": "c"})), vec!["items"]);
        assert_eq!(
            fields(json!({"customerId": "c", "items": []})),
            vec!["items"]
        );
        assert_eq!(
            fields(json!({"customerId": 5, "items": "x"})),
            vec!["customerId", "items"]
        );
        let many: Vec<Value> = (0..101)
            .map(|_| json!({"productId": "a", "quantity": 1, "price": 1}))
            .collect();
        assert_eq!(
            fields(json!({"customerId": "c", "items": many})),
            vec!["items"]
        );
        assert_eq!(
            fields(json!({"customerId": "c", "paymentMethod": "visa",
            "items": [{"productId": "a", "quantity": 1, "price": 1}]})),
            vec!["paymentMethod"]
        );
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        let n = |s: &str| serde_json::from_str::<serde_json::Number>(s).unwrap();
        assert_eq!(whole_number(&n("3")), Some(3));
        assert_eq!(whole_number(&n("3.0")), Some(3));
        assert_eq!(whole_number(&n("-2.0")), Some(-2));
        assert_eq!(whole_number(&n("3.5")), None);
        assert_eq!(whole_number(&n("1e300")), None);
        let ok = validate_order(&json!({"customerId": "c", "items": [
            {"productId": "p", "quantity": 2.0, "price": 1}]}));
        assert_eq!(ok.unwrap().items[0].quantity, 2);
        assert!(
            validate_order(&json!({"customerId": "c", "items": [
            {"productId": "p", "quantity": 2.5, "price": 1}]}))
            .is_err()
        );
    }

    #[test]
    fn quantity_bounds() {
        let ok = |q: Value| {
            validate_order(&json!({"customerId": "c",
            "items": [{"productId": "a", "quantity": q, "price": 1}]}))
            .is_ok()
        };
        assert!(ok(json!(1)));
        assert!(ok(json!(10000)));
        assert!(!ok(json!(10001)));
        assert!(!ok(json!(-1)));
        assert!(!ok(json!("1")));
    }
}
