//! One recorded step of an execution: the snapshot change, the history events that explain it,
//! and writing both at once.
//!
//! A write that continues an older snapshot than the stored one is refused by the store (its
//! seq check). That is how a runner and a token call (or the deadline) that race on one wait
//! are told apart: exactly one write lands, and [`Tx::commit`] hands the loser the snapshot that
//! won, to carry on from (a runner) or to judge its call against again (a token call).

use super::Executor;
use super::store::{
    ExecutionSnapshot, ExecutionStatus, ExecutionStoreError, HistoryEvent, HistoryEventKind,
    Waiting,
};
use crate::asl::STATES_RUNTIME;
use crate::asl::path::RuntimeError;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use std::time::Duration;

/// How a state visit ends.
pub(super) enum Outcome {
    /// Leave the state with `output`, to `next` or (None) ending the execution successfully.
    Exit { output: Value, next: Option<String> },
    /// Run the state again after `delay`, counted against retrier `index`.
    Retry { index: usize, delay: Duration },
    /// End the execution as FAILED.
    Fail {
        error: Option<String>,
        cause: Option<String>,
    },
    /// Wait for the task token: recorded before the handler or the queue gets it.
    Wait(Waiting),
}

impl Outcome {
    pub(super) fn runtime(e: RuntimeError) -> Outcome {
        Outcome::Fail {
            error: Some(STATES_RUNTIME.to_owned()),
            cause: Some(e.0),
        }
    }
}

/// How a commit ended.
pub(super) enum Committed {
    /// Written: the snapshot is now the stored one.
    Written(ExecutionSnapshot),
    /// Another writer got there first; this is what it stored (unchanged by us).
    Lost(ExecutionSnapshot),
}

/// A snapshot being changed together with the events that describe the change.
#[derive(Clone)]
pub(super) struct Tx {
    pub(super) snapshot: ExecutionSnapshot,
    pub(super) events: Vec<HistoryEvent>,
    pub(super) now: DateTime<Utc>,
    /// The seq of the snapshot this change continues.
    base: u64,
}

impl Tx {
    pub(super) fn new(snapshot: ExecutionSnapshot, now: DateTime<Utc>) -> Tx {
        Tx {
            base: snapshot.seq,
            snapshot,
            events: Vec::new(),
            now,
        }
    }

    /// Appends an event about the current state, with the next seq.
    pub(super) fn event(&mut self, kind: HistoryEventKind) -> &mut HistoryEvent {
        self.snapshot.seq += 1;
        self.snapshot.updated_at = self.now;
        self.events.push(HistoryEvent {
            seq: self.snapshot.seq,
            timestamp: self.now,
            kind,
            state: Some(self.snapshot.state.clone()),
            attempt: None,
            error: None,
            cause: None,
            delay_ms: None,
            task_token: None,
            duration_ms: None,
            input: None,
        });
        self.events.last_mut().expect("just pushed")
    }

    pub(super) fn apply(&mut self, outcome: Outcome) {
        let s = &mut self.snapshot;
        s.updated_at = self.now;
        if !matches!(outcome, Outcome::Wait(_)) {
            // Whatever ends the visit ends its wait: the token is dead from here on.
            s.waiting = None;
        }
        match outcome {
            Outcome::Exit { output, next } => {
                self.event(HistoryEventKind::StateExited);
                let s = &mut self.snapshot;
                s.retry_counts.clear();
                s.next_attempt_at = None;
                match next {
                    Some(next) => {
                        s.state = next;
                        s.state_input = output;
                        s.state_entered_at = self.now;
                        self.event(HistoryEventKind::StateEntered);
                    }
                    None => {
                        s.status = ExecutionStatus::Succeeded;
                        s.output = Some(output);
                        self.event(HistoryEventKind::ExecutionSucceeded);
                    }
                }
            }
            Outcome::Retry { index, delay } => {
                if s.retry_counts.len() <= index {
                    s.retry_counts.resize(index + 1, 0);
                }
                s.retry_counts[index] += 1;
                s.next_attempt_at =
                    Some(self.now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX));
                let attempt = s.attempt();
                let e = self.event(HistoryEventKind::RetryScheduled);
                e.attempt = Some(attempt);
                e.delay_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            }
            Outcome::Fail { error, cause } => {
                s.status = ExecutionStatus::Failed;
                s.next_attempt_at = None;
                s.error.clone_from(&error);
                s.cause.clone_from(&cause);
                let e = self.event(HistoryEventKind::ExecutionFailed);
                e.error = error;
                e.cause = cause;
            }
            Outcome::Wait(waiting) => {
                let attempt = s.attempt();
                let token = waiting.token.clone();
                s.next_attempt_at = None;
                s.waiting = Some(waiting);
                let e = self.event(HistoryEventKind::TaskScheduled);
                e.attempt = Some(attempt);
                e.task_token = Some(token);
            }
        }
    }

    /// Records the change. A refusal is told apart from a failing store by reading the
    /// execution back: if it no longer is at `base`, someone else's write won.
    pub(super) async fn commit(
        self,
        executor: &Executor,
    ) -> Result<Committed, ExecutionStoreError> {
        let Err(e) = executor.store.record(&self.snapshot, &self.events).await else {
            return Ok(Committed::Written(self.snapshot));
        };
        self.lost(executor, e).await
    }

    /// What a refused write of this change lost to, read back from the store; `refusal` if
    /// the store still holds the base (then it was not a lost race but a failing store).
    pub(super) async fn lost(
        &self,
        executor: &Executor,
        refusal: ExecutionStoreError,
    ) -> Result<Committed, ExecutionStoreError> {
        match executor.store.get(&self.snapshot.name).await {
            Ok(Some(stored)) if stored.seq != self.base || stored.is_finished() => {
                Ok(Committed::Lost(stored))
            }
            _ => Err(refusal),
        }
    }
}
