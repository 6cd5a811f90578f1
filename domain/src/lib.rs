//! The contracts of the order service, defined once and shared by every runtime.
//!
//! This crate is the bottom of the dependency graph: the HTTP service (`orders`), the saga
//! (`orders-workflow`), the outbox processor (`orders-processor`) and both adapter crates
//! (`orders-sqlite`, `orders-aws`) depend on it and it depends on none of them. That is what
//! lets the step and stream Lambdas link the order model without linking the HTTP service,
//! and what keeps each contract (ids, money, statuses, the outbox event, the saga input) in
//! exactly one place. Nothing here does I/O.
//!
//! # Layout
//!
//! - [`ids`], [`money`], [`time`]: the newtypes (UUIDs, integer cents) and the one timestamp
//!   format.
//! - [`order`], [`voucher`], [`validation`], [`catalogue`]: statuses and their moves, the
//!   voucher rules, the create request's validation, the seeded products.
//! - [`event`]: the outbox events (CloudEvents 1.0): the saga input `order.created` carries,
//!   and the internal signals for a waiting saga.
//! - [`lifecycle`]: what the outside actors leave on an order (payment, shipment,
//!   cancellation) and the signals that carry their results.
//! - [`idempotency`]: key rules, the request fingerprint, the stored response.
//! - [`access`]: the caller of a request and the ownership rules every route applies.
//! - [`standard_webhooks`]: Standard Webhooks signatures, signing and verifying.
//! - [`store`]: the API's storage port `OrderStore`, which lives here, below both adapters
//!   that implement it, rather than with the HTTP API that uses it.
//! - [`subscriptions`]: subscriptions to the public events, their deliveries and the port
//!   `SubscriptionStore` the subscription API and the local dispatcher share.
//! - `wire_names!`: the name <-> enum conversions of the statuses, written once.

#[macro_use]
mod wire_names;

pub mod access;
pub mod catalogue;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod lifecycle;
pub mod money;
pub mod order;
pub mod standard_webhooks;
pub mod store;
pub mod subscriptions;
pub mod time;
pub mod validation;
pub mod voucher;

pub use catalogue::CATALOGUE;
pub use event::{
    CloudEvent, EventType, OrderChange, OutboxEvent, OutboxMessage, PublicEvent, SagaInput,
    SagaItem, SignalEvent, Traceparent, VoucherIssued,
};
pub use ids::{CustomerId, EventId, OrderId, ProductId, SubscriptionId, VoucherCode};
pub use lifecycle::{PaymentId, PaymentStatus, Shipment, TaskSignal};
pub use money::{Cents, Currency, MoneyError};
pub use order::{OrderItem, OrderStatus, PaymentMethod};
pub use voucher::{VOUCHER_DISCOUNT, VOUCHER_THRESHOLD, VoucherStatus};
