//! Logging: readable lines locally, JSON (one object per line, for CloudWatch) on Lambda.
//! `RUST_LOG` overrides the default filter. With `OTEL_EXPORTER_OTLP_ENDPOINT` set the spans
//! are also exported over OTLP (`orders-telemetry`); the process calls
//! [`orders_telemetry::shutdown`] last so the final batch is not lost.

use crate::config::LogFormat;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Logs only, never an exporter (the benchmark's binaries).
pub fn init(format: LogFormat) {
    let _ = install(format, false);
}

/// Logs, and the OTLP exporter when the environment asks for it; a bad OTLP setting is
/// refused before anything starts.
pub fn init_with_traces(format: LogFormat) -> Result<(), orders_telemetry::OtlpError> {
    install(format, true)
}

fn install(format: LogFormat, traces: bool) -> Result<(), orders_telemetry::OtlpError> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => {
            let logs = builder.finish();
            let otel = traces
                .then(|| orders_telemetry::otlp::layer_from_env("orders"))
                .transpose()?
                .flatten();
            logs.with(otel).try_init()
        }
        LogFormat::Json => {
            let logs = builder.json().flatten_event(true).finish();
            let otel = traces
                .then(|| orders_telemetry::otlp::layer_from_env("orders"))
                .transpose()?
                .flatten();
            logs.with(otel).try_init()
        }
    };
    Ok(())
}

/// For a Lambda serving HTTP: the response is read whole (ending the request's span with it)
/// and the spans are exported before it is returned, since the environment may be frozen as
/// soon as it is. Nothing changes when nothing is exported.
pub async fn flush_after(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !orders_telemetry::exporting() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => axum::body::Body::from(bytes),
        Err(e) => {
            tracing::warn!(error = %e, "response body unreadable");
            axum::body::Body::empty()
        }
    };
    orders_telemetry::flush().await;
    Response::from_parts(parts, body)
}
