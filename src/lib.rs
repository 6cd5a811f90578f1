//! The order service: domain rules live in `orders-domain`, the saga in `orders-workflow`,
//! the outbox processing in `orders-processor`; this crate holds what serves them: the HTTP
//! API, idempotency, the storage trait and its SQLite implementation, configuration, and the
//! local stack that runs it all in one process.

pub mod clock;
pub mod config;
pub mod http;
pub mod idempotency;
pub mod local;
pub mod saga;
pub mod store;
pub mod telemetry;
