//! `orders`: the local stack (API + relay + saga executor on SQLite), or an operations
//! command on its database. See `orders --help`.

use clap::Parser;
use orders::config::{Command, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    if let Some(Command::ParkedEvents) = config.command {
        return match orders::local::parked_events_json(&config.database).await {
            Ok(json) => {
                println!("{json}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("orders: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
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
