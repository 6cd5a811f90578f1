//! Idempotency keys, request fingerprints and stored responses.
//!
//! A key names one logical request. Its record (fingerprint + the exact response first sent)
//! is written in the same transaction as the order and its outbox event, so there is never an
//! order without a record or a record without an order, and no "in progress" state for a
//! crash to strand. The fingerprint is SHA-256 over canonical JSON (keys sorted, no
//! insignificant whitespace, integral numbers without a fraction, null members dropped), so
//! reordering keys, re-indenting a body or spelling out an absent optional field as null is
//! the same request, while any change of value is a different one.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write;

pub const MAX_KEY_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the idempotency key must be 1-255 visible ASCII characters")]
    Syntax,
    #[error("x-idempotency-key and Idempotency-Key are both given with different values")]
    Conflicting,
    #[error("an idempotency key is required (x-idempotency-key or Idempotency-Key)")]
    Missing,
}

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let ok = !s.is_empty() && s.len() <= MAX_KEY_LEN && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(KeyError::Syntax)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key in `customer`'s namespace: `"<customer> <key>"`. A key is visible ASCII, so it
    /// holds no space: the last space splits the two unambiguously, and no key as sent (the
    /// anonymous scope, unchanged since before identity) can equal a scoped one.
    pub(crate) fn scoped_to(&self, customer: &crate::CustomerId) -> Self {
        Self(format!("{} {}", customer.as_str(), self.0))
    }
}

/// Hex SHA-256 of the canonical form of a JSON body.
pub fn fingerprint(body: &Value) -> String {
    let mut canon = String::new();
    write_canonical(body, &mut canon);
    let digest = Sha256::digest(canon.as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            // A member set to null means the same as an absent one (the validator treats
            // both as "not given"), so it does not change the fingerprint.
            let mut keys: Vec<&String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Number(n) => match n.as_f64() {
            // 1.0 and 1 are the same amount: write integral floats as integers (as JCS does).
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                let _ = write!(out, "{}", f as i64);
            }
            _ => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

/// The response as first sent, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_syntax() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(256)),
            Err(KeyError::Syntax)
        );
        assert_eq!(IdempotencyKey::parse(""), Err(KeyError::Syntax));
        assert_eq!(IdempotencyKey::parse("has space"), Err(KeyError::Syntax));
        assert_eq!(IdempotencyKey::parse("tab\t"), Err(KeyError::Syntax));
        assert_eq!(IdempotencyKey::parse("clé"), Err(KeyError::Syntax));
    }

    #[test]
    fn fingerprint_ignores_key_order_and_whitespace_only() {
        let a: Value = serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "s"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(
            fingerprint(&json!({"p": 1.0})),
            fingerprint(&json!({"p": 1}))
        );
        assert_ne!(
            fingerprint(&json!({"p": 1.5})),
            fingerprint(&json!({"p": 1}))
        );
        assert_ne!(fingerprint(&json!([1, 2])), fingerprint(&json!([2, 1])));
        assert_ne!(
            fingerprint(&json!({"a": "1"})),
            fingerprint(&json!({"a": 1}))
        );
        assert_eq!(fingerprint(&json!({})).len(), 64);
        assert_eq!(
            fingerprint(&json!({"a": 1, "voucherCode": null})),
            fingerprint(&json!({"a": 1}))
        );
    }
}
