//! What every AWS-side component shares: the DynamoDB table contract, client set-up and the
//! error classification that decides retry versus give up.
//!
//! The table contract lives here, once: the stores, the step Lambda, the test harness that
//! creates tables on the emulator and the template-contract test all read [`tables::TABLES`],
//! so a key or index renamed on one side and not the other fails a test rather than a
//! deployment. Nothing here knows about HTTP, orders or sagas; it sits just above the domain in
//! the dependency graph so the API, the stream processor and the step Lambda can all link it.

pub mod attr;
pub mod client;
pub mod functions;
#[cfg(feature = "moto")]
pub mod moto;
pub mod tables;

pub use client::{LambdaEnvError, init_lambda_logs, load_sdk_config};
pub use tables::{TABLES, TableNames, TableSpec};
