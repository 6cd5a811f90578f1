//! One error type for the whole API, rendered as RFC 9457 `application/problem+json`.
//!
//! Handlers return `ApiError`; nothing else reaches the client. A 5xx carries a generic detail
//! and the real cause goes to the log, so internals never leak.

use crate::identity::AuthError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders_domain::access::AccessError;
use orders_domain::standard_webhooks::VerifyError;
use orders_domain::store::StoreError;
use orders_domain::validation::FieldError;
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `WWW-Authenticate` challenge of a webhook whose signature is refused.
pub const SIGNATURE_CHALLENGE: &str = r#"StandardWebhooks realm="payments""#;

/// `Retry-After` (seconds) of a 503 answered because storage refuses writes.
pub const STORAGE_FULL_RETRY_AFTER: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request failed validation")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    NotFound(String),
    /// The detail is generic: why the token was refused is logged, not told to the caller.
    #[error("a valid bearer token is required")]
    Unauthorized(AuthError),
    #[error("{0}")]
    Forbidden(String),
    /// A webhook whose Standard Webhooks signature does not verify. Why is told: the sender
    /// needs it to fix its clock or its secret, and it reveals nothing about the secret.
    #[error("the webhook signature was refused: {0}")]
    BadSignature(VerifyError),
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed,
    #[error("this idempotency key was already used with a different request body")]
    KeyReused,
    #[error("{0}")]
    Conflict(String),
    /// The order is past the point where a cancellation can stop it; the detail says why.
    #[error("the order cannot be cancelled: {0}")]
    NotCancellable(String),
    #[error("the service is busy, retry shortly")]
    Unavailable,
    #[error("too many requests are in progress, retry shortly")]
    Overloaded,
    #[error("the request was not answered within {0} s; retry (with the same idempotency key)")]
    TimedOut(f64),
    #[error("storage refuses writes (disk full); this request changed nothing, retry later")]
    StorageFull,
    /// No webhook secret is configured, so no webhook can be verified.
    #[error("webhooks not configured")]
    WebhooksNotConfigured,
    #[error("internal error")]
    Internal(String),
}

/// The problem document; `errors` only for validation failures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl ApiError {
    /// A validation failure of one field (`""`: the body as a whole).
    pub fn invalid(field: &str, message: &str) -> Self {
        ApiError::Validation(vec![FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        }])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            Validation(_) => (
                StatusCode::BAD_REQUEST,
                "validation-error",
                "Your request is not valid",
            ),
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON"),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            BadSignature(_) => (
                StatusCode::UNAUTHORIZED,
                "invalid-signature",
                "Invalid webhook signature",
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            KeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
            ),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            NotCancellable(_) => (
                StatusCode::CONFLICT,
                "not-cancellable",
                "Order not cancellable",
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Service overloaded",
            ),
            TimedOut(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "Request timed out",
            ),
            StorageFull => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage-full",
                "Storage full",
            ),
            WebhooksNotConfigured => (
                StatusCode::SERVICE_UNAVAILABLE,
                "webhooks-not-configured",
                "Webhooks not configured",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal-error",
                "Internal server error",
            ),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Forbidden(why) => ApiError::Forbidden(why.to_owned()),
            AccessError::Hidden => ApiError::NotFound("no such resource".into()),
            AccessError::CustomerRequired => ApiError::invalid("customerId", "is required"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::VoucherUnavailable { .. } => ApiError::Conflict(e.to_string()),
            StoreError::Busy => ApiError::Unavailable,
            // Not logged here: the store logs each episode once, not every refused request.
            StoreError::StorageFull => ApiError::StorageFull,
            StoreError::Backend(msg) => ApiError::Internal(msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        // Space rarely returns within a second: a full disk asks clients to wait longer than
        // a busy or overloaded service does, and a missing secret waits for an operator.
        let retry_after = match self {
            ApiError::StorageFull => STORAGE_FULL_RETRY_AFTER,
            ApiError::WebhooksNotConfigured => "60",
            _ => "1",
        };
        // RFC 6750: no error code when the request carried no token, `invalid_token` when the
        // token it carried was refused.
        // A refused signature is challenged with a scheme of its own (RFC 9110 wants one on
        // every 401), never `Bearer`: no token would be accepted there.
        let challenge = match &self {
            ApiError::Unauthorized(AuthError::Missing) => Some("Bearer"),
            ApiError::Unauthorized(_) => Some(r#"Bearer error="invalid_token""#),
            ApiError::BadSignature(_) => Some(SIGNATURE_CHALLENGE),
            _ => None,
        };
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let detail = self.to_string();
        let errors = match self {
            ApiError::Validation(errors) => Some(errors),
            _ => None,
        };
        let problem = Problem {
            problem_type: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let body = serde_json::to_vec(&problem).expect("a problem always serializes");
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(challenge) = challenge {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(retry_after));
        }
        res
    }
}
