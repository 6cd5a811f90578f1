//! The local executor of `workflow/statemachine.asl.json` with Step Functions' semantics,
//! over the SQLite execution store: what it runs, how data flows through the states, and what
//! survives a crash, a store failure or a pending retry, and callback Tasks waiting for their
//! task tokens.

mod callbacks;
mod dataflow;
mod durability;
mod faults;
mod helpers;
mod observed;
mod recorded;
mod runs;
