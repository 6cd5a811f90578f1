//! The payment webhook's body, read strictly: `{"type", "data": {"paymentId", "orderId",
//! "amount", "reason"?}}` (and the optional top-level `timestamp` the Standard Webhooks
//! payload carries). Unknown fields and ill-typed values are refused with every problem
//! listed, as a request body is; an event type this service does not know is not a problem
//! (providers add types), it is reported as [`Payload::Other`] before its data is looked at.

use orders_domain::lifecycle::{MAX_REASON_CHARS, PaymentId, PaymentResult};
use orders_domain::validation::FieldError;
use orders_domain::{Cents, OrderId};
use serde_json::{Map, Number, Value};

/// A payment result as the body states it (the webhook's id and time come from its headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvent {
    pub result: PaymentResult,
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Cents,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Payment(PaymentEvent),
    /// An event type not handled here, by name.
    Other(String),
}

const FIELDS: [&str; 3] = ["type", "timestamp", "data"];
const DATA_FIELDS: [&str; 4] = ["paymentId", "orderId", "amount", "reason"];
/// The largest amount: the cents of every integer an f64 holds exactly.
const MAX_AMOUNT_CENTS: f64 = 9_007_199_254_740_992.0;

fn error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn unknown(obj: &Map<String, Value>, known: &[&str], prefix: &str, errs: &mut Vec<FieldError>) {
    for k in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        errs.push(error(format!("{prefix}{k}"), "unknown field"));
    }
}

pub fn parse(body: &Value) -> Result<Payload, Vec<FieldError>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![error("", "the body must be a JSON object")]);
    };
    let result = match obj.get("type") {
        Some(Value::String(t)) => match t.as_str() {
            "payment.succeeded" => PaymentResult::Succeeded,
            "payment.failed" => PaymentResult::Failed,
            other => return Ok(Payload::Other(other.to_owned())),
        },
        None | Some(Value::Null) => return Err(vec![error("type", "is required")]),
        Some(_) => return Err(vec![error("type", "must be a string")]),
    };
    let mut errs = Vec::new();
    unknown(obj, &FIELDS, "", &mut errs);
    if obj
        .get("timestamp")
        .is_some_and(|t| !t.is_string() && !t.is_null())
    {
        errs.push(error("timestamp", "must be a string"));
    }
    let Some(data) = obj.get("data").and_then(Value::as_object) else {
        errs.push(error("data", "must be an object"));
        return Err(errs);
    };
    unknown(data, &DATA_FIELDS, "data.", &mut errs);
    let payment_id = required(data, "paymentId", &mut errs, |v| {
        v.as_str()
            .ok_or("must be a string")
            .and_then(PaymentId::parse)
    });
    let order_id = required(data, "orderId", &mut errs, order_id);
    let amount = required(data, "amount", &mut errs, |v| {
        v.as_number().ok_or("must be a number").and_then(amount)
    });
    let reason = match data.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if (1..=MAX_REASON_CHARS).contains(&r.chars().count()) => {
            Some(r.clone())
        }
        Some(_) => {
            errs.push(error("data.reason", "must be a string of 1-500 characters"));
            None
        }
    };
    match (payment_id, order_id, amount) {
        (Some(payment_id), Some(order_id), Some(amount)) if errs.is_empty() => {
            Ok(Payload::Payment(PaymentEvent {
                result,
                payment_id,
                order_id,
                amount,
                reason,
            }))
        }
        _ => Err(errs),
    }
}

/// `data.<name>` as `read` takes it; otherwise `None`, with the problem noted.
fn required<T>(
    data: &Map<String, Value>,
    name: &str,
    errs: &mut Vec<FieldError>,
    read: impl FnOnce(&Value) -> Result<T, &'static str>,
) -> Option<T> {
    let problem = match data.get(name).filter(|v| !v.is_null()).map(read) {
        Some(Ok(v)) => return Some(v),
        Some(Err(m)) => m,
        None => "is required",
    };
    errs.push(error(format!("data.{name}"), problem));
    None
}

fn order_id(v: &Value) -> Result<OrderId, &'static str> {
    v.as_str()
        .ok_or("must be a string")?
        .parse()
        .map_err(|_| "must be an order id (UUID)")
}

/// An amount in EUR as the provider sends it: like a price (not negative, at most two
/// decimals), but as large as an order total may be, which is beyond one price's cap. A
/// number with two decimals is the double nearest `cents / 100`, so that is the test.
pub fn amount(n: &Number) -> Result<Cents, &'static str> {
    if let Some(u) = n.as_u64() {
        return u
            .checked_mul(100)
            .and_then(|c| i64::try_from(c).ok())
            .map(Cents)
            .ok_or("is too large");
    }
    let f = n
        .as_f64()
        .filter(|f| f.is_finite() && *f >= 0.0)
        .ok_or("must not be negative")?;
    let cents = (f * 100.0).round();
    if cents >= MAX_AMOUNT_CENTS {
        return Err("is too large");
    }
    if cents / 100.0 != f {
        return Err("must have at most 2 decimal places");
    }
    Ok(Cents(cents as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Vec<String> {
        parse(&v)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    fn body(data: Value) -> Value {
        json!({"type": "payment.succeeded", "data": data})
    }

    fn data() -> Value {
        json!({"paymentId": "pay_abc", "orderId": "0190c1d2-e3f4-7a8b-9c0d-1e2f3a4b5c6d", "amount": 1299.99})
    }

    #[test]
    fn a_payment_result_parses() {
        let Payload::Payment(p) = parse(&body(data())).unwrap() else {
            panic!("not a payment")
        };
        assert_eq!(p.result, PaymentResult::Succeeded);
        assert_eq!(p.payment_id.as_str(), "pay_abc");
        assert_eq!(p.amount, Cents(129_999));
        assert_eq!(p.reason, None);
        let mut failed =
            json!({"type": "payment.failed", "timestamp": "2026-01-01T00:00:00Z", "data": data()});
        failed["data"]["reason"] = "card declined".into();
        let Payload::Payment(p) = parse(&failed).unwrap() else {
            panic!("not a payment")
        };
        assert_eq!(
            (p.result, p.reason.as_deref()),
            (PaymentResult::Failed, Some("card declined"))
        );
    }

    #[test]
    fn other_types_are_not_errors_whatever_their_data() {
        assert_eq!(
            parse(&json!({"type": "payment.refunded", "data": 7, "x": 1})),
            Ok(Payload::Other("payment.refunded".into()))
        );
        assert_eq!(fields(json!({"data": data()})), ["type"]);
        assert_eq!(fields(json!({"type": 1})), ["type"]);
        assert_eq!(fields(json!([])), [""]);
    }

    #[test]
    fn a_malformed_payment_lists_every_problem() {
        assert_eq!(fields(json!({"type": "payment.succeeded"})), ["data"]);
        let mut d = data();
        d["extra"] = 1.into();
        d["amount"] = json!(1.005);
        d["paymentId"] = json!("ch_1");
        d["orderId"] = json!("nope");
        d["reason"] = json!("");
        let mut got = fields(body(d));
        got.sort();
        assert_eq!(
            got,
            [
                "data.amount",
                "data.extra",
                "data.orderId",
                "data.paymentId",
                "data.reason"
            ]
        );
        let mut top = body(data());
        top["extra"] = 1.into();
        top["timestamp"] = 5.into();
        assert_eq!(fields(top), ["extra", "timestamp"]);
        let mut d = data();
        d.as_object_mut().unwrap().remove("amount");
        assert_eq!(fields(body(d)), ["data.amount"]);
    }

    #[test]
    fn amounts_are_exact_cents() {
        let a = |s: &str| amount(&serde_json::from_str::<Number>(s).unwrap());
        assert_eq!(a("1299.99"), Ok(Cents(129_999)));
        assert_eq!(a("0.1"), Ok(Cents(10)));
        assert_eq!(a("0.07"), Ok(Cents(7)));
        assert_eq!(a("7"), Ok(Cents(700)));
        assert_eq!(a("7.0"), Ok(Cents(700)));
        assert_eq!(a("0"), Ok(Cents(0)));
        assert_eq!(
            a("20000000.05"),
            Ok(Cents(2_000_000_005)),
            "over one price's cap"
        );
        assert!(a("1.005").is_err());
        assert!(a("0.001").is_err());
        assert!(a("-1").is_err());
        assert!(a("-0.5").is_err());
        assert!(a("1e300").is_err());
    }
}
