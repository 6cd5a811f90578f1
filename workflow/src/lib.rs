//! The saga: `statemachine.asl.json` (the single source of truth, deployed to Step Functions
//! as is), a durable local executor of that file, and the step handlers shared by both runtimes.
//!
//! # Layout
//!
//! - [`asl`]: the state machine file, loaded and checked (states, paths, Retry/Catch, the
//!   substitutions a deployment must supply).
//! - [`executor`]: the local executor with Step Functions' semantics, and its port
//!   [`executor::ExecutionStore`] (durable snapshots and history) and
//!   [`executor::TaskHandler`] (what a Task state calls).
//! - [`steps`]: the step handlers, written once, and their port [`steps::StepStore`] (the
//!   steps' effects: stock, charges, notifications, vouchers, the order's progress).
//!
//! No I/O of its own and no adapter: `orders-sqlite` and `orders-aws` implement the ports;
//! the local stack (`orders`) and the step Lambda (`orders-aws`) drive the handlers.

pub mod asl;
pub mod executor;
pub mod steps;
