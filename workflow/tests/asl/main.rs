//! The saga definition: the ASL file's rules, validated and pinned (the executor that runs
//! it is tested over the SQLite store, in the root crate's `tests/embedded/executor/`).

mod asl_validation;
mod callbacks;
mod retry_rules;
