//! The AWS adapters: every port of the service implemented on DynamoDB, Step Functions and
//! EventBridge, the table contract they share, and the Lambda functions that do not serve HTTP.
//!
//! # Layout
//!
//! - [`tables`]: the table contract (keys, indexes, stream, TTL, attribute names, the
//!   variables carrying the deployed names), once for the stores, the template test and
//!   [`provision`], which creates the tables on the emulator.
//! - [`dynamodb`]: the API's `OrderStore` ([`dynamodb::DynamoStore`]) and the steps'
//!   `StepStore` ([`dynamodb::DynamoStepStore`]), with the orders item's one codec
//!   ([`dynamodb::item`]) and the attribute helpers ([`dynamodb::attr`]).
//! - [`sfn`]: Step Functions as the processor's `SagaStarter` and `TaskSignaller`, and the
//!   task-token calls ([`sfn::TaskTokens`]) that resume a Task waiting on `.waitForTaskToken`.
//! - [`eventbridge`]: EventBridge as the stream processor's `EventPublisher` (the public
//!   events on the stack's custom bus).
//! - [`lambda`]: the stream, step and warehouse functions (`src/bin/orders-processor.rs`,
//!   `src/bin/orders-steps.rs`, `src/bin/orders-warehouse.rs`), wired the way the API function
//!   in the root crate is.
//! - [`sdk`]: SDK set-up, and the error description and classification every adapter uses.
//! - [`functions`]: the deployed functions and what each may touch (least privilege, checked).
//! - `moto` (feature `moto`): the emulator harness for tests.
//!
//! This crate depends on the ports (`orders-domain`, `orders-workflow`, `orders-processor`),
//! never on the HTTP service.

pub mod dynamodb;
pub mod eventbridge;
pub mod functions;
pub mod lambda;
#[cfg(feature = "moto")]
pub mod moto;
pub mod provision;
pub mod sdk;
pub mod sfn;
pub mod tables;

pub use tables::{TABLES, TableNames, TableSpec};
