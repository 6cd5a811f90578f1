//! `orders`: the local stack (API + relay + saga executor on SQLite). See `orders --help`.

use clap::Parser;
use orders::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    orders::telemetry::init(config.log_format);
    match orders::local::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("orders: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
