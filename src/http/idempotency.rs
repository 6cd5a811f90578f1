//! The idempotency key of a request, from its headers: `x-idempotency-key` (the seed's name)
//! or `Idempotency-Key` (IETF draft), both allowed only when they agree. Extracted before the
//! body is read, so a bad key is refused before anything else is looked at. The key's rules
//! and the fingerprint live in `orders_domain::idempotency`; only the headers are HTTP's.
//!
//! One key space serves every idempotent route (`POST /orders`, `PATCH /orders/{id}`), so the
//! fingerprint covers the method and the path as well as the body: a key first used to create
//! an order can never replay that 201 for a cancellation (or one order's cancellation for
//! another's); it is a reuse with another request, a 422.

use super::AppState;
use super::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use orders_domain::idempotency::{IdempotencyKey, KeyError, fingerprint};
use serde_json::Value;

pub const HEADER: &str = "x-idempotency-key";
pub const HEADER_IETF: &str = "idempotency-key";
/// Set to `true` on a response replayed from the idempotency record.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The request's key, if any; missing is refused when the settings require a key.
pub struct IdempotencyHeader(pub Option<IdempotencyKey>);

impl FromRequestParts<AppState> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        match from_headers(&parts.headers) {
            Ok(None) if s.settings.require_idempotency_key => Err(KeyError::Missing),
            other => other,
        }
        .map(IdempotencyHeader)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
    }
}

/// The fingerprint of one request: its method, its path (in the canonical form the route
/// gives it, so two spellings of one order id are one request) and its body.
pub fn request_fingerprint(method: &Method, path: &str, body: &Value) -> String {
    fingerprint(&serde_json::json!({
        "method": method.as_str(),
        "path": path,
        "body": body,
    }))
}

/// Reads the key from either header name; both present must agree, and each at most once.
fn from_headers(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, KeyError> {
    let read = |name: &str| -> Result<Option<IdempotencyKey>, KeyError> {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => v
                .to_str()
                .map_err(|_| KeyError::Syntax)
                .and_then(IdempotencyKey::parse)
                .map(Some),
            (Some(_), Some(_)) => Err(KeyError::Conflicting),
        }
    };
    match (read(HEADER)?, read(HEADER_IETF)?) {
        (Some(a), Some(b)) if a != b => Err(KeyError::Conflicting),
        (a, b) => Ok(a.or(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn both_header_names() {
        let mut h = HeaderMap::new();
        assert_eq!(from_headers(&h), Ok(None));
        h.insert("idempotency-key", HeaderValue::from_static("k1"));
        assert_eq!(from_headers(&h).unwrap().unwrap().as_str(), "k1");
        h.insert("x-idempotency-key", HeaderValue::from_static("k1"));
        assert!(from_headers(&h).is_ok());
        h.insert("x-idempotency-key", HeaderValue::from_static("k2"));
        assert_eq!(from_headers(&h), Err(KeyError::Conflicting));
        h.append("x-idempotency-key", HeaderValue::from_static("k1"));
        assert_eq!(from_headers(&h), Err(KeyError::Conflicting));
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let body = serde_json::json!({"status": "CANCELLED"});
        let fp = |m: &Method, p: &str, b: &Value| request_fingerprint(m, p, b);
        let base = fp(&Method::PATCH, "/orders/a", &body);
        assert_eq!(
            base,
            fp(
                &Method::PATCH,
                "/orders/a",
                &serde_json::json!({"status": "CANCELLED"})
            )
        );
        assert_ne!(base, fp(&Method::POST, "/orders/a", &body));
        assert_ne!(base, fp(&Method::PATCH, "/orders/b", &body));
        assert_ne!(
            base,
            fp(
                &Method::PATCH,
                "/orders/a",
                &serde_json::json!({"status": "X"})
            )
        );
        assert_ne!(base, fingerprint(&body), "not the body's alone");
    }
}
