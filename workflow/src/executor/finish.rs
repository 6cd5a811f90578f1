//! A Task's transition written by its handler, in the same atomic write as the Task's effects.
//!
//! Without it a Task costs two writes: the handler's (its effects) and the executor's record
//! of where the result leads. A handler whose writes go to the executor's own store can do
//! both in one: [`TaskHandler::invoke_and_record`](super::TaskHandler::invoke_and_record) gets
//! a [`Finish`], turns its result into the [`Record`] the executor would have recorded,
//! and writes that under the store's seq check together with its effects.
//!
//! Nothing of the executor's argument changes. The transition is computed by the same code
//! as the executor's own record (Retry, Catch, the effect-free states after it), and it is
//! written only if it continues the stored history: if a token call or the deadline moved
//! the execution on first, the handler reports [`Finished::Refused`] and the runner carries
//! on from what the store holds, exactly as when its own record loses. A crash can no longer
//! fall between the effects and the record; a crash before the write loses both, and the
//! Task runs again, as before.

use super::TaskError;
use super::store::{ExecutionSnapshot, HistoryEvent};
use serde_json::Value;
use std::sync::Arc;

/// What a Task's result leads to: the snapshot to store and the events that explain it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub snapshot: ExecutionSnapshot,
    pub events: Vec<HistoryEvent>,
}

type Compute = dyn Fn(Result<Value, TaskError>) -> Record + Send + Sync;

/// Turns a Task's result into its [`Record`]. It may be called more than once (a write
/// refused for want of space runs again); each call gives the transition from the same base.
#[derive(Clone)]
pub struct Finish(Arc<Compute>);

impl Finish {
    pub(super) fn new(
        compute: impl Fn(Result<Value, TaskError>) -> Record + Send + Sync + 'static,
    ) -> Self {
        Finish(Arc::new(compute))
    }

    pub fn record(&self, result: Result<Value, TaskError>) -> Record {
        (self.0)(result)
    }
}

impl std::fmt::Debug for Finish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Finish")
    }
}

/// How [`TaskHandler::invoke_and_record`](super::TaskHandler::invoke_and_record) ended.
#[derive(Debug)]
pub enum Finished {
    /// The handler returned and recorded nothing: the executor records the result.
    Returned(Result<Value, TaskError>),
    /// The effects and the transition were written together; this snapshot is the stored one.
    Recorded(Box<ExecutionSnapshot>),
    /// The store refused the transition: the execution is no longer at the snapshot it
    /// continues. The Task's effects stand, as they would after a lost record (handlers are
    /// idempotent).
    Refused,
}
