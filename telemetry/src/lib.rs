//! Traces over OTLP, for every binary of the service (the local stack and each Lambda): the
//! exporter installed when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set
//! ([`otlp`]), and the two conversions between a stored W3C `traceparent` and a `tracing` span
//! that carry one trace across the outbox, the saga's steps and the deliveries.
//!
//! Invariant: a hop continues the trace from what was *stored* (the event's or the execution's
//! `traceparent`), never from a span held in memory, so a trace survives a restart between two
//! hops. When nothing is exported, both conversions do nothing at the cost of one load: no
//! OpenTelemetry layer is installed and no exporter thread runs.

pub mod otlp;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use orders_domain::Traceparent;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use otlp::{OtlpError, exporting, flush, shutdown};

/// Makes `span` a child of `parent` in the exported trace. Call it before the span is first
/// entered (an OpenTelemetry span's parent is fixed when it starts). Does nothing when no
/// spans are exported.
pub fn continue_trace(span: &tracing::Span, parent: &Traceparent) {
    if !exporting() {
        return;
    }
    if let Some(parent) = span_context(parent) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
}

/// The `traceparent` of `span` as exported: its trace and its own span id, so whatever
/// continues from it points at a span the collector received. None when nothing is exported
/// (the caller keeps its own ids then).
pub fn traceparent_of(span: &tracing::Span) -> Option<Traceparent> {
    if !exporting() {
        return None;
    }
    let cx = span.context();
    let own = cx.span().span_context().clone();
    if !own.is_valid() {
        return None;
    }
    Traceparent::parse(&format!(
        "00-{:032x}-{:016x}-{:02x}",
        own.trace_id(),
        own.span_id(),
        own.trace_flags().to_u8()
    ))
    .ok()
}

/// The trace a later event of an order carries, from the order's stored one (its request's
/// span). Exported, that span itself, so the event's consumers point at a span the collector
/// has; otherwise a new span id in the same trace, as nothing names the hop.
pub fn later_event_trace(stored: Traceparent) -> Traceparent {
    if exporting() { stored } else { stored.child() }
}

/// The remote span a stored `traceparent` names.
fn span_context(t: &Traceparent) -> Option<SpanContext> {
    let flags = t.as_str().get(53..55)?;
    let context = SpanContext::new(
        TraceId::from_hex(t.trace_id()).ok()?,
        SpanId::from_hex(t.span_id()).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_traceparent_names_its_remote_span() {
        let t =
            Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let c = span_context(&t).unwrap();
        assert_eq!(
            format!("{:032x}", c.trace_id()),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(format!("{:016x}", c.span_id()), "00f067aa0ba902b7");
        assert!(c.is_sampled() && c.is_remote());
        let unsampled =
            Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!span_context(&unsampled).unwrap().is_sampled());
    }

    #[test]
    fn nothing_is_continued_or_read_when_nothing_is_exported() {
        let span = tracing::info_span!("hop");
        continue_trace(&span, &Traceparent::new_root());
        assert_eq!(traceparent_of(&span), None);
    }
}
