//! The trace a request belongs to (W3C Trace Context): the caller's `traceparent` continued,
//! or a new trace when there is none or it is not valid (a receiver never fails a request over
//! its trace header). The create route stores it with the order's events, so the relay, the
//! saga's steps and the subscribers' deliveries continue the same trace.
//!
//! When spans are exported, the request's span is the caller's child (set where it is made,
//! [`continue_caller`]) and the trace stored is that span's own, so every later hop points at
//! a span the collector received. Otherwise a span id is drawn here, as no span is exported.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use orders_domain::Traceparent;
use std::convert::Infallible;

/// This request's span in its trace: a child of the caller's `traceparent`, or a new root.
pub struct RequestTrace(pub Traceparent);

/// The caller's `traceparent`, if it sent exactly one valid header.
fn caller(headers: &HeaderMap) -> Option<Traceparent> {
    let mut values = headers.get_all("traceparent").iter();
    // Two headers are as good as none: which one would be the caller's?
    match (values.next(), values.next()) {
        (Some(one), None) => one.to_str().ok().and_then(|t| Traceparent::parse(t).ok()),
        _ => None,
    }
}

/// Makes the request's span (not yet entered) a child of the caller's, when spans are
/// exported.
pub(crate) fn continue_caller(span: &tracing::Span, headers: &HeaderMap) {
    if orders_telemetry::exporting()
        && let Some(caller) = caller(headers)
    {
        orders_telemetry::continue_trace(span, &caller);
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestTrace {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        if let Some(exported) = orders_telemetry::traceparent_of(&tracing::Span::current()) {
            return Ok(RequestTrace(exported));
        }
        Ok(RequestTrace(
            caller(&parts.headers).map_or_else(Traceparent::new_root, |t| t.child()),
        ))
    }
}
