//! The outside actors the local stack simulates, over their real interfaces: the payment
//! provider simulator over HTTP (its cards, its idempotency, its signed and retried
//! webhooks), the warehouse worker on the SQLite queue and the executor's task-token API
//! (heartbeats, refusals, stale tokens, a restart mid-packing), and one order through the
//! whole local stack.

mod lifecycle;
mod receiver;
mod simulator;
mod simulator_function;
mod warehouse;
