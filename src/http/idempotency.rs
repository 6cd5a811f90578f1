//! The idempotency key of a request, from its headers: `x-idempotency-key` (the seed's name)
//! or `Idempotency-Key` (IETF draft), both allowed only when they agree. Extracted before the
//! body is read, so a bad key is refused before anything else is looked at. The key's rules
//! and the fingerprint live in `orders_domain::idempotency`; only the headers are HTTP's.

use super::AppState;
use super::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use orders_domain::idempotency::{IdempotencyKey, KeyError};

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
}
