//! The saga definition and the local executor: the ASL file's rules (validated, pinned), and
//! the executor's semantics over scripted step handlers.

mod asl_validation;
mod executor;
mod executor_dataflow;
mod executor_durability;
mod helpers;
