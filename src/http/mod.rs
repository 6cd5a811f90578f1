//! The HTTP API: one `Router`, served by `axum::serve` locally and by `lambda_http` on AWS.
//!
//! Handlers are thin: parse, validate, call the store, shape the answer. Every failure is an
//! `ApiError` rendered as problem+json, including axum's own (unknown route, wrong method, bad
//! body), so clients see one error format everywhere.

mod customers;
mod health;
mod idempotency;
mod inventory;
mod json;
pub mod limits;
pub mod openapi;
mod orders;
pub mod problem;

use crate::clock::Clock;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use orders_domain::store::OrderStore;
use problem::ApiError;
use std::sync::Arc;
use std::time::Duration;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use json::BodyLimit;

/// A resource id from the path, as sent: each route answers a malformed one its own way (404
/// where existence must not leak, 400 where the id is a parameter).
type RawId = axum::extract::Path<String>;

/// Behaviour the operator can tune (see `Config`).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub idempotency_ttl: Duration,
    pub require_idempotency_key: bool,
    pub body_limit: usize,
    /// Requests handled at once; more are shed with a 503.
    pub max_in_flight: usize,
    /// Time to answer one request, reading its body included; then a 503.
    pub request_timeout: Duration,
}

impl ApiSettings {
    /// How long an idempotency record replays.
    pub fn ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.idempotency_ttl).unwrap_or(chrono::Duration::MAX)
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            idempotency_ttl: Duration::from_secs(600),
            require_idempotency_key: false,
            body_limit: 64 * 1024,
            max_in_flight: 1024,
            request_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn OrderStore>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<ApiSettings>,
}

pub fn router(state: AppState) -> Router {
    let limit = state.settings.body_limit;
    let guard =
        limits::RequestGuard::new(state.settings.max_in_flight, state.settings.request_timeout);
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(orders::routes())
        .merge(inventory::routes())
        .merge(customers::routes())
        .merge(health::routes())
        .merge(openapi::routes())
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(move |mut req: Request, next: Next| async move {
            req.extensions_mut().insert(BodyLimit(limit));
            next.run(req).await
        }))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            guard.clone().run(req, next)
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The `Response` type handlers return on success.
pub type ApiResult<T = Response> = Result<T, ApiError>;
