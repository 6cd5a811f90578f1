//! The HTTP API: one `Router`, served by `axum::serve` locally and by `lambda_http` on AWS.
//!
//! Handlers are thin: parse, validate, call the store, shape the answer. Every failure is an
//! `ApiError` rendered as problem+json, including axum's own (unknown route, wrong method, bad
//! body), so clients see one error format everywhere.

mod caller;
pub mod console;
mod customers;
pub mod executions;
mod health;
mod idempotency;
mod inventory;
mod json;
pub mod limits;
pub mod metrics;
pub mod openapi;
mod orders;
mod outbox;
mod paging;
pub mod problem;
pub mod subscriptions;
mod trace;
mod webhooks;

use crate::clock::Clock;
use crate::identity::Identity;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use orders_domain::standard_webhooks::WebhookSecret;
use orders_domain::store::OrderStore;
use problem::ApiError;
use std::sync::Arc;
use std::time::Duration;
use tower_http::classify::ServerErrorsFailureClass;
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
    /// How callers are established (none, bearer tokens, API Gateway's claims).
    pub identity: Identity,
    /// The Standard Webhooks secret payment webhooks are signed with; without one,
    /// `POST /webhooks/payments` answers 503 (nothing can be verified, so nothing is taken).
    pub payment_webhook_secret: Option<WebhookSecret>,
    /// The embedded runtime's subscriptions to domain events; without them (the API Lambda)
    /// `/subscriptions` is neither served nor documented.
    pub subscriptions: Option<subscriptions::SubscriptionApi>,
    // The operations console: its page and admin reads, on the embedded runtime only (like
    // `subscriptions`: the API Lambda neither serves nor documents them).
    pub console: Option<console::ConsoleApi>,
    // Redrive of failed executions (both runtimes) and the execution reads (embedded only);
    // without it the redrive route answers 404 and the reads are neither served nor documented.
    pub executions: Option<executions::ExecutionsApi>,
    // Prometheus metrics, on the embedded runtime only: with them `/metrics` is served and
    // documented and every request is measured; without them (the API Lambda) neither.
    pub metrics: Option<crate::metrics::MetricsApi>,
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
            identity: Identity::None,
            payment_webhook_secret: None,
            subscriptions: None,
            console: None,
            executions: None,
            metrics: None,
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
    let mut routes = Router::new();
    let measured = state.settings.metrics.is_some();
    if measured {
        routes = routes.merge(metrics::routes());
    }
    if state.settings.subscriptions.is_some() {
        routes = routes.merge(subscriptions::routes());
    }
    if state.settings.console.is_some() {
        routes = routes
            .merge(console::routes())
            .merge(orders::admin::routes())
            .merge(outbox::routes());
    }
    if let Some(executions) = &state.settings.executions
        && executions.reads.is_some()
    {
        routes = routes.merge(executions::read_routes());
    }
    routes
        .merge(executions::routes())
        .merge(orders::routes())
        .merge(inventory::routes())
        .merge(customers::routes())
        .merge(webhooks::routes())
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
        // Outside the guard: a shed or timed-out request is counted with its 503.
        .layer(middleware::from_fn(move |req: Request, next: Next| async move {
            if measured {
                metrics::track(req, next).await
            } else {
                next.run(req).await
            }
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id);
                // OTLP traces: the caller's span is this one's parent in the exported trace.
                trace::continue_caller(&span, req.headers());
                span
            })
            .on_failure(on_failure),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Logs a failed request as the default does (ERROR), except a 503: shedding load, a timeout
/// or storage refusing writes is an answer decided and logged where it is decided (once per
/// episode for a full disk), and one ERROR line per refused request would drown the log.
fn on_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    match class {
        ServerErrorsFailureClass::StatusCode(code)
            if code == axum::http::StatusCode::SERVICE_UNAVAILABLE =>
        {
            tracing::debug!(latency_ms = latency.as_millis() as u64, "response 503");
        }
        class => tracing::error!(classification = %class, latency = ?latency, "response failed"),
    }
}

/// The `Response` type handlers return on success.
pub type ApiResult<T = Response> = Result<T, ApiError>;
