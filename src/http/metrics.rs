//! `GET /metrics` (Prometheus text exposition) and the request metrics behind it, on the
//! embedded runtime only: mounted, documented and measured where the runtime gives the API a
//! [`MetricsApi`] (the local stack does; the API Lambda does not).
//!
//! With identity on, scraping is an admin's (401 without a token, 403 with a customer's), as
//! every other operations route; with it off, open. A scraper on a private network may use a
//! listener of its own instead ([`scrape_router`], `--metrics-listen`): only `/metrics`, no
//! token, nothing else reachable through it.
//!
//! Requests are labelled by the route's template (`MatchedPath`), never by the path sent, so
//! ids never become labels; a request no route matched is `unmatched`.

use super::caller::Authenticated;
use super::idempotency::REPLAYED_HEADER;
use super::problem::ApiError;
use super::{ApiResult, AppState};
use crate::metrics::{
    HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL, MetricsApi, ORDERS_CREATED_TOTAL,
    ORDERS_REPLAYED_TOTAL, Refusal,
};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Instant;

pub(crate) const PATH: &str = "/metrics";
/// The exposition format's media type (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where a valid token can still be refused: scraping is an admin's.
pub(crate) const ADMIN_OPERATIONS: [(&str, &str); 1] = [("get", PATH)];

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(metrics))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain; version=0.0.4",
            description = "The service's metrics in the Prometheus text exposition format"),
        (status = 503, body = super::problem::Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn metrics(State(s): State<AppState>, Authenticated(caller): Authenticated) -> ApiResult {
    caller.require_admin()?;
    let api = s
        .settings
        .metrics
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no such resource".into()))?;
    Ok(exposition(api).await)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(metrics))]
pub(crate) struct MetricsDoc;

async fn exposition(api: &MetricsApi) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], api.render().await).into_response()
}

/// The router of the separate metrics listener: `/metrics` without a token, and nothing else.
pub fn scrape_router(api: MetricsApi) -> Router {
    Router::new()
        .route(
            PATH,
            get(|State(api): State<MetricsApi>| async move { exposition(&api).await }),
        )
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(api)
}

/// Middleware: counts each answered request and the time it took, by route template, method
/// and status code. Outside the load guard, so shed and timed-out requests count too.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let began = Instant::now();
    let res = next.run(req).await;
    let seconds = began.elapsed().as_secs_f64();
    let status = res.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS_TOTAL, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "route" => route, "method" => method)
        .record(seconds);
    res
}

/// The standard methods by name; any other (extension methods are allowed by HTTP) is one
/// label, so a client cannot mint label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts what one `POST /orders` came to: created, replayed, or refused with its reason.
pub(crate) fn count_create(result: &ApiResult) {
    match result {
        Ok(res) if res.headers().contains_key(REPLAYED_HEADER) => {
            metrics::counter!(ORDERS_REPLAYED_TOTAL).increment(1);
        }
        Ok(_) => metrics::counter!(ORDERS_CREATED_TOTAL).increment(1),
        Err(e) => refusal(e).count(),
    }
}

/// The reason label of a refused create.
fn refusal(e: &ApiError) -> Refusal {
    use ApiError::*;
    match e {
        Validation(_) | BadRequest(_) | MalformedJson(_) | UnsupportedMediaType
        | PayloadTooLarge(_) => Refusal::Invalid,
        Unauthorized(_) => Refusal::Unauthorized,
        Forbidden(_) => Refusal::Forbidden,
        KeyReused => Refusal::KeyReused,
        Conflict(_) => Refusal::Voucher,
        Unavailable | Overloaded | TimedOut(_) | StorageFull => Refusal::Unavailable,
        // Nothing else is answered by the create route.
        _ => Refusal::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::AuthError;

    #[test]
    fn refusals_have_their_reason_and_methods_a_bounded_label() {
        assert_eq!(
            refusal(&ApiError::invalid("items", "empty")),
            Refusal::Invalid
        );
        assert_eq!(refusal(&ApiError::PayloadTooLarge(1)), Refusal::Invalid);
        assert_eq!(
            refusal(&ApiError::Unauthorized(AuthError::Missing)),
            Refusal::Unauthorized
        );
        assert_eq!(refusal(&ApiError::KeyReused), Refusal::KeyReused);
        assert_eq!(
            refusal(&ApiError::Conflict("voucher".into())),
            Refusal::Voucher
        );
        assert_eq!(refusal(&ApiError::StorageFull), Refusal::Unavailable);
        assert_eq!(refusal(&ApiError::Internal("x".into())), Refusal::Internal);
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
