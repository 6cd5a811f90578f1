//! The Lambda functions of the AWS runtime, wired one way: a thin `main` calls the function's
//! `run()`, which calls [`start`] (JSON logs, configuration read and checked once, the SDK
//! configuration), builds its adapters and hands one handler to the runtime loop.
//!
//! Configuration errors stop the cold start with a message naming the variable, instead of
//! failing every invocation later. The API function (`orders::lambda` in the root crate) is
//! wired the same way; the functions here (stream, steps, warehouse) do not link the HTTP
//! service.

pub mod steps;
pub mod stream;
pub mod warehouse;

use crate::tables::MissingTable;

#[derive(Debug, thiserror::Error)]
pub enum LambdaEnvError {
    #[error(transparent)]
    MissingTable(#[from] MissingTable),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A function binary's exit: the error as its message (the variable a bad configuration
/// names, not a `Debug` dump), and a failure status Lambda reports as an init error.
pub fn exit(binary: &str, outcome: Result<(), lambda_runtime::Error>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{binary}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether this process runs inside AWS Lambda: only the Lambda environment sets
/// `AWS_LAMBDA_RUNTIME_API`, and the runtime cannot run without it.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// The start of every function: JSON log lines (one object per event, for CloudWatch;
/// `RUST_LOG` sets the filter) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. an ADOT
/// collector layer), spans over OTLP (each handler calls `orders_telemetry::flush` before
/// answering, as the environment may be frozen after); then its configuration, then the SDK
/// configuration from the standard AWS environment. A configuration error is logged and
/// returned.
pub async fn start<C, E: std::fmt::Display>(
    config: impl FnOnce() -> Result<C, E>,
) -> Result<(C, aws_config::SdkConfig), E> {
    init_logs();
    let config = config().inspect_err(|e| {
        tracing::error!(error = %e, "refusing to start: bad configuration");
    })?;
    Ok((config, crate::sdk::load_sdk_config().await))
}

fn init_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(filter)
        .with_current_span(true)
        .without_time()
        .finish();
    // A bad OTLP setting costs the traces, not the function: it serves, and says why.
    let (otel, refused) = match orders_telemetry::otlp::layer_from_env("orders") {
        Ok(otel) => (otel, None),
        Err(e) => (None, Some(e)),
    };
    let _ = logs.with(otel).try_init();
    if let Some(e) = refused {
        tracing::error!(error = %e, "spans are not exported");
    }
}
