//! The order service: domain rules live in `orders-domain`, the saga in `orders-workflow`,
//! the outbox processing in `orders-processor`; this crate holds what serves them: the HTTP
//! API, idempotency, the storage trait with its SQLite and DynamoDB implementations,
//! configuration, and the two launchers of one router: the local stack that runs it all in one
//! process, and the API Lambda.

pub mod clock;
pub mod config;
pub mod http;
pub mod idempotency;
pub mod lambda;
pub mod local;
pub mod saga;
pub mod store;
pub mod telemetry;
