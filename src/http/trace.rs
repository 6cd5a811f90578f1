//! The trace a request belongs to (W3C Trace Context): the caller's `traceparent` continued,
//! or a new trace when there is none or it is not valid (a receiver never fails a request over
//! its trace header). The create route stores it with the order's events, so the relay, the
//! saga's steps and the subscribers' deliveries continue the same trace.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use orders_domain::Traceparent;
use std::convert::Infallible;

/// This request's span in its trace: a child of the caller's `traceparent`, or a new root.
pub struct RequestTrace(pub Traceparent);

impl<S: Send + Sync> FromRequestParts<S> for RequestTrace {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let mut headers = parts.headers.get_all("traceparent").iter();
        // Two headers are as good as none: which one would be the caller's?
        let caller = match (headers.next(), headers.next()) {
            (Some(one), None) => one.to_str().ok().and_then(|t| Traceparent::parse(t).ok()),
            _ => None,
        };
        Ok(RequestTrace(
            caller.map_or_else(Traceparent::new_root, |t| t.child()),
        ))
    }
}
