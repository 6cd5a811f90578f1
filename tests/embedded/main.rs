//! The embedded stack: the HTTP API over SQLite, the store contract suites on SQLite,
//! the local executor over the SQLite execution store, the saga steps and the whole local
//! stack in process, with the subscribers of its domain events.

mod actors;
mod backup;
mod concurrency;
mod domain_events;
mod execution_store_sqlite;
mod executor;
mod http_api;
mod identity;
mod lifecycle_http;
mod metrics;
mod queue_sqlite;
mod redrive;
mod retention;
mod saga_e2e;
mod saga_faults;
mod saga_races;
mod saga_steps;
mod saga_store_sqlite;
mod signals;
mod storage_full;
mod store_contract_sqlite;
mod subscriptions;
