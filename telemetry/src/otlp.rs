//! The OTLP/HTTP exporter: on when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, with the standard variables
//! (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the only one served; `OTEL_SERVICE_NAME`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER`), read by the SDK.
//!
//! Spans go through the SDK's batch processor (its own thread) to an HTTP client over the
//! workspace's reqwest, run on the caller's tokio runtime. The provider is process-wide, so
//! [`flush`] (a Lambda's end of invocation) and [`shutdown`] (a process stopping) reach it
//! from anywhere; a process that never installed it pays one load per call.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use std::sync::OnceLock;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// OTLP's default export timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("{PROTOCOL}={0:?} is not supported: use http/protobuf (the default)")]
    Protocol(String),
    #[error("the OTLP exporter needs a tokio runtime to send on")]
    NoRuntime,
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
    #[error("the OTLP exporter is already installed")]
    Installed,
}

/// Whether this process exports spans.
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

/// The layer that exports `tracing` spans, when the environment names an endpoint; None
/// otherwise (nothing is started). `default_service` names the service unless
/// `OTEL_SERVICE_NAME` does.
pub fn layer_from_env<S>(
    default_service: &str,
) -> Result<Option<OpenTelemetryLayer<S, Tracer>>, OtlpError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var(ENDPOINT).is_none() && var(TRACES_ENDPOINT).is_none() {
        return Ok(None);
    }
    if let Some(p) = var(TRACES_PROTOCOL).or_else(|| var(PROTOCOL))
        && !p.trim().eq_ignore_ascii_case("http/protobuf")
    {
        return Err(OtlpError::Protocol(p));
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| OtlpError::NoRuntime)?;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("orders-otlp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OtlpError::Build(e.to_string()))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(OnRuntime { client, runtime })
        .build()
        .map_err(|e| OtlpError::Build(e.to_string()))?;
    let service = var(SERVICE_NAME).unwrap_or_else(|| default_service.to_owned());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer("orders");
    if PROVIDER.set(provider).is_err() {
        return Err(OtlpError::Installed);
    }
    Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
}

/// Exports the spans ended so far and waits for the collector's answer. For a Lambda at the
/// end of an invocation, before its environment is frozen.
pub async fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let provider = provider.clone();
        // The batch processor's thread sends on this runtime: wait off its workers.
        let flushed = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "spans not exported");
        }
    }
}

/// Exports what is left and stops the exporter: the last call of a process that exports.
pub async fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let provider = provider.clone();
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = stopped {
            eprintln!("spans not exported at shutdown: {e}");
        }
    }
}

/// The exporter's HTTP client: the batch processor's thread is no tokio worker, so each
/// request is spawned onto the runtime the exporter was built on, and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let answer = client.execute(request).await?;
            let mut response = Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                response = response.header(name.as_str(), value.as_bytes());
            }
            let body = answer.bytes().await?;
            Ok::<_, HttpError>(response.body(body)?)
        });
        sent.await?
    }
}
