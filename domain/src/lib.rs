//! The contracts of the order service, defined once and shared by every runtime.
//!
//! This crate is the bottom of the dependency graph: the HTTP service (`orders`), the saga
//! (`orders-workflow`) and the outbox processor (`orders-processor`) all depend on it and it
//! depends on none of them. That is what lets the step and stream Lambdas link the order model
//! without linking the HTTP service, and what keeps each contract (ids, money, statuses, the
//! outbox event, the saga input) in exactly one place. Nothing here does I/O.

pub mod catalogue;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod money;
pub mod order;
pub mod store;
pub mod time;
pub mod validation;
pub mod voucher;

pub use catalogue::CATALOGUE;
pub use event::{OutboxEvent, SagaInput, SagaItem};
pub use ids::{CustomerId, EventId, OrderId, ProductId, VoucherCode};
pub use money::{Cents, Currency, MoneyError};
pub use order::{OrderItem, OrderStatus, PaymentMethod};
pub use voucher::{VOUCHER_DISCOUNT, VOUCHER_THRESHOLD, VoucherStatus};
