//! `orders`: the local stack (API + relay + saga executor on SQLite), an operations command on
//! its database, or, when `AWS_LAMBDA_RUNTIME_API` is set, the same API as a Lambda on
//! DynamoDB. See `orders --help`.

use clap::Parser;
use orders::config::{Command, Config};

// The writer thread frees what request tasks allocated (and the reverse) thousands of times a
// second; glibc's allocator serialises that on arena locks, mimalloc frees to the owning
// thread's heap without one. Measured in docs/BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let outcome = if let Some(command) = &config.command {
        match command {
            Command::ParkedEvents => orders::local::parked_events_json(&config.database)
                .await
                .map(|json| println!("{json}")),
            Command::Backup { to } => {
                orders::local::backup_json(&config.database, to).map(|json| println!("{json}"))
            }
            Command::DevKeys { dir } => orders::identity::dev::dev_keys(dir),
            Command::DevToken(t) => orders::identity::dev::dev_token(t, &config.identity),
        }
    } else if orders::lambda::in_lambda() {
        orders::lambda::run(config).await.map_err(|e| e.to_string())
    } else {
        match orders::telemetry::init_with_traces(config.log_format) {
            Ok(()) => {
                let ran = orders::local::run(config).await.map_err(|e| e.to_string());
                // After the stack stopped: its last spans are exported before the process ends.
                orders_telemetry::shutdown().await;
                ran
            }
            Err(e) => Err(e.to_string()),
        }
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("orders: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
