//! `GET /console`: the operations page, served by the binary itself on the embedded runtime
//! (on AWS the Step Functions console draws the same state machine with the visited states).
//!
//! The page is plain HTML, CSS and ES modules compiled into the binary (`console/`): nothing
//! to build, nothing fetched from elsewhere. Every answer carries a Content-Security-Policy of
//! `default-src 'self'`, so no inline script or style can run even if some text of an order
//! were to contain markup; the page writes text with `textContent` only. The assets are open
//! (they hold no data); everything the page shows comes from the admin-only API with the token
//! the operator enters once per tab. The state machine it draws is the very definition the
//! executor runs (`orders_workflow::asl::DEFINITION`).

use super::AppState;
use super::problem::ApiError;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orders_domain::access::Caller;
use orders_domain::store::OperatorStore;
use std::sync::Arc;

/// What the console's API needs: the store's operator port. Present on the embedded runtime
/// only; without it (the API Lambda) neither the page nor its routes are served or documented.
#[derive(Clone)]
pub struct ConsoleApi {
    pub store: Arc<dyn OperatorStore>,
}

impl std::fmt::Debug for ConsoleApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleApi").finish_non_exhaustive()
    }
}

pub(crate) const PATH: &str = "/console";

/// Only this origin's files; no inline code, no framing, no plugins.
const CSP: &str = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; \
                   form-action 'none'; object-src 'none'";

/// The page's files: (name under /console/, content type, bytes).
const ASSETS: [(&str, &str, &str); 6] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("console/app.js"),
    ),
    (
        "attention.js",
        "text/javascript; charset=utf-8",
        include_str!("console/attention.js"),
    ),
    (
        "graph.js",
        "text/javascript; charset=utf-8",
        include_str!("console/graph.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("console/api.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("console/console.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("console/icon.svg"),
    ),
];

const INDEX: &str = include_str!("console/index.html");

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route(PATH, get(page))
        .route("/console/", get(page))
        .route("/console/statemachine.json", get(definition))
        .route("/console/settings.json", get(settings));
    for (name, content_type, body) in ASSETS {
        r = r.route(
            &format!("{PATH}/{name}"),
            get(move || async move { asset(content_type, body) }),
        );
    }
    r
}

/// The operator port, for an admin on a runtime that has it (else the route does not exist).
pub(crate) fn operator(s: &AppState, caller: &Caller) -> Result<Arc<dyn OperatorStore>, ApiError> {
    caller.require_admin()?;
    s.settings
        .console
        .as_ref()
        .map(|c| c.store.clone())
        .ok_or_else(|| ApiError::NotFound("no such resource".into()))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The files change only with the binary: a reload after an upgrade must not mix versions.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[utoipa::path(get, path = "/console", tag = "operations",
    responses((status = 200, content_type = "text/html", body = String,
        description = "The operations page (embedded runtime): orders live, one order's saga drawn from the state machine, and the repairs: cancel, redrive, retry")))]
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn definition() -> Response {
    asset("application/json", orders_workflow::asl::DEFINITION)
}

/// Whether the page must ask for a token before it calls the API.
async fn settings(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    let bearer = !matches!(s.settings.identity, crate::identity::Identity::None);
    let body = if bearer {
        r#"{"auth":"bearer"}"#
    } else {
        r#"{"auth":"none"}"#
    };
    asset("application/json", body)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    page,
    super::orders::admin::all_orders,
    super::orders::admin::order_summary,
    super::outbox::parked_events,
    super::outbox::retry_parked,
))]
pub(crate) struct ConsoleDoc;

/// Every console API operation is an admin's (the page itself is open).
pub(crate) const ADMIN_OPERATIONS: [(&str, &str); 4] = [
    ("get", super::orders::admin::PATH),
    ("get", "/admin/orders/{orderId}"),
    ("get", super::outbox::PARKED),
    ("post", "/outbox/parked/{eventId}/retry"),
];

#[cfg(test)]
mod tests;
