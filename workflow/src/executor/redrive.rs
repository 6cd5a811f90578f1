//! Redrive: a FAILED execution carries on from the step that failed, with Step Functions'
//! `RedriveExecution` semantics: only a FAILED execution can be redriven; it keeps its name,
//! its input and everything that succeeded (no earlier state runs again); the redriven step
//! starts with fresh retry counters; `redrive_count` goes up by one; the history keeps every
//! event and gains `ExecutionRedriven`.
//!
//! Which step is "the one that failed" depends on how the execution ended:
//!
//! * In a Fail state entered through a Catch (the saga's `CompensationFailedAt<Step>` and
//!   `CompletionFailed`, reached once a Task's retries ran out): the Fail state only reports
//!   the failure, and running it again would fail again at once. The unsuccessful step is the
//!   Task whose error was caught, and it runs again with the raw input it had. That input is
//!   on the `CaughtError` event (the Catch's ResultPath may have overwritten it in the Fail
//!   state's input), which is how the history holds what a redrive needs.
//! * Anywhere else (a Task's uncaught error, `States.Runtime`, a Fail state entered from a
//!   Choice or a Pass): the state the execution ended in runs again with its stored input.
//!
//! The redrive is one atomic store write (status RUNNING, the new snapshot and the two
//! events), checked against the stored seq and the FAILED status, before any runner starts:
//! of two concurrent redrives exactly one lands and the other is told the execution is not
//! redrivable; a crash right after the write leaves a RUNNING execution that
//! `resume_unfinished` carries on like any other.

use super::Executor;
use super::run::Start;
use super::store::{
    ExecutionSnapshot, ExecutionStatus, ExecutionStoreError, HistoryEvent, HistoryEventKind,
};
use super::tx::Tx;
use crate::asl::{State, StateMachine};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("execution {0} does not exist")]
    DoesNotExist(String),
    #[error("execution {name} is {status}: only a FAILED execution can be redriven")]
    NotRedrivable {
        name: String,
        status: ExecutionStatus,
    },
    #[error("the executor is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] ExecutionStoreError),
}

/// The state a redrive of `failed` runs first, and that state's raw input.
pub(super) fn resume_point(
    machine: &StateMachine,
    failed: &ExecutionSnapshot,
    history: &[HistoryEvent],
) -> (String, Value) {
    let ended_in_fail = matches!(machine.states.get(&failed.state), Some(State::Fail(_)));
    let caught = ended_in_fail.then(|| caught_task(machine, &failed.state, history));
    match caught.flatten() {
        Some((task, input)) => (task, input),
        None => (failed.state.clone(), failed.state_input.clone()),
    }
}

/// The Task whose caught error led into the Fail state `fail`, with the input it had: the
/// events right before the last entry into `fail` are that Task's CaughtError and StateExited.
fn caught_task(
    machine: &StateMachine,
    fail: &str,
    history: &[HistoryEvent],
) -> Option<(String, Value)> {
    let entered = history.iter().rposition(|e| {
        e.kind == HistoryEventKind::StateEntered && e.state.as_deref() == Some(fail)
    })?;
    let [.., caught, exited] = history.get(..entered)? else {
        return None;
    };
    let task = exited.state.as_deref()?;
    let is_task = matches!(machine.states.get(task), Some(State::Task(_)));
    let same_task = caught.state.as_deref() == Some(task);
    if exited.kind != HistoryEventKind::StateExited
        || caught.kind != HistoryEventKind::CaughtError
        || !is_task
        || !same_task
    {
        return None;
    }
    Some((task.to_owned(), caught.input.clone()?))
}

/// The snapshot and events of `failed` redriven into `state` with `input`, at `now`.
pub(super) fn redriven(
    failed: ExecutionSnapshot,
    state: String,
    input: Value,
    now: DateTime<Utc>,
) -> (ExecutionSnapshot, Vec<HistoryEvent>) {
    let snapshot = ExecutionSnapshot {
        status: ExecutionStatus::Running,
        state,
        state_input: input,
        state_entered_at: now,
        retry_counts: Vec::new(),
        next_attempt_at: None,
        output: None,
        error: None,
        cause: None,
        waiting: None,
        redrive_count: failed.redrive_count.saturating_add(1),
        ..failed
    };
    let mut tx = Tx::new(snapshot, now);
    tx.event(HistoryEventKind::ExecutionRedriven);
    tx.event(HistoryEventKind::StateEntered);
    (tx.snapshot, tx.events)
}

impl Executor {
    /// Redrives the FAILED execution `name` (see the module doc) and runs it in the
    /// background; returns the snapshot it runs from. Not redrivable: unknown, RUNNING or
    /// SUCCEEDED, or redriven meanwhile by someone else.
    pub async fn redrive(self: &Arc<Self>, name: &str) -> Result<ExecutionSnapshot, RedriveError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(RedriveError::ShuttingDown);
        }
        let not_redrivable = |stored: Option<ExecutionSnapshot>| match stored {
            None => RedriveError::DoesNotExist(name.to_owned()),
            Some(s) => RedriveError::NotRedrivable {
                name: name.to_owned(),
                status: s.status,
            },
        };
        let stored = match self.store.get(name).await? {
            Some(s) if s.status == ExecutionStatus::Failed => s,
            other => return Err(not_redrivable(other)),
        };
        let history = self.store.history(name).await?;
        let (state, input) = resume_point(&self.machine, &stored, &history);
        let (snapshot, events) = redriven(stored, state, input, Utc::now());
        if !self.store.redrive(&snapshot, &events).await? {
            return Err(not_redrivable(self.store.get(name).await?));
        }
        info!(execution = %name, state = %snapshot.state, redrive_count = snapshot.redrive_count, "execution redriven");
        // With `wake`: a runner of the failed execution that has not deregistered yet is
        // told to read the store again instead of ending.
        self.spawn(Start::Snapshot(Box::new(snapshot.clone())), true);
        Ok(snapshot)
    }
}
