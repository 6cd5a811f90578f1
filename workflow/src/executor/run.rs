//! The execution loop: run the current state, then record the result before anything else.
//!
//! Each iteration turns the persisted snapshot into exactly one [`Outcome`] (leave the state,
//! schedule a retry, or fail), applies it to the snapshot while writing the history events
//! that explain it, and records both in one `record` call. Nothing is acted on before that
//! call succeeds, so the store is always at a state boundary: what a restart resumes from.
//! Data that does not fit the definition (a path that selects nothing) fails the execution
//! with `States.Runtime`, which, as on Step Functions, no Retry or Catch intercepts. A snapshot
//! waiting for a task token is `wait`'s: it submits the wait, then ends the loop until the
//! token or the deadline starts a runner again. A record another writer beat (a token call on
//! the same wait) is not an error: the loop carries on from what that writer stored.

use super::context::{context, reads_context};
use super::store::{
    ExecutionSnapshot, ExecutionStatus, ExecutionStoreError, HistoryEvent, HistoryEventKind,
};
use super::task::{next_of, run_task};
use super::tx::{Committed, Outcome, Tx};
use super::{Executor, wait};
use crate::asl::path::{RuntimeError, apply_input_path, apply_output_path, apply_result_path};
use crate::asl::{State, StateMachine};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use tracing::{Instrument, debug, error, info, info_span, warn};

/// Most states run between two records (see the loop in [`run`]).
const MAX_STATES_PER_RECORD: usize = 16;

/// Where a runner starts: a snapshot in hand, or the stored one (woken by a token or a deadline).
pub(super) enum Start {
    Snapshot(Box<ExecutionSnapshot>),
    Load(String),
}

/// The snapshot and events of a new execution: started, and entered its first state.
pub(super) fn initial(
    machine: &StateMachine,
    name: &str,
    input: Value,
    now: DateTime<Utc>,
) -> (ExecutionSnapshot, Vec<HistoryEvent>) {
    let mut tx = Tx::new(
        ExecutionSnapshot {
            name: name.to_owned(),
            status: ExecutionStatus::Running,
            state: machine.start_at.clone(),
            state_input: input.clone(),
            state_entered_at: now,
            input,
            retry_counts: Vec::new(),
            next_attempt_at: None,
            output: None,
            error: None,
            cause: None,
            started_at: now,
            updated_at: now,
            seq: 0,
            waiting: None,
            redrive_count: 0,
            trace: None,
        },
        now,
    );
    tx.event(HistoryEventKind::ExecutionStarted).state = None;
    tx.event(HistoryEventKind::StateEntered);
    (tx.snapshot, tx.events)
}

/// Runs an execution until it finishes, the store fails, or the task is aborted.
pub(super) async fn run(executor: Arc<Executor>, run_id: u64, start: Start) {
    let name = match &start {
        Start::Snapshot(s) => s.name.clone(),
        Start::Load(name) => name.clone(),
    };
    let span = info_span!("saga_execution", execution = %name);
    // The snapshot is read before the span is entered: exported, the span continues the
    // execution's stored trace, and its parent is fixed when it starts.
    let snapshot = match start {
        Start::Snapshot(snapshot) => *snapshot,
        Start::Load(name) => match wait::load(&executor, &name).await {
            Some(snapshot) => snapshot,
            None => return,
        },
    };
    if let Some(trace) = &snapshot.trace {
        orders_telemetry::continue_trace(&span, trace);
    }
    async move {
        let mut snapshot = snapshot;
        loop {
            if !drive(&executor, run_id, snapshot).await {
                return;
            }
            // A redrive that landed while this runner was still registered flagged it
            // instead of starting another: carry on with what it stored.
            if executor.retire(&name, run_id) {
                return;
            }
            snapshot = match wait::load(&executor, &name).await {
                Some(redriven) => redriven,
                None => return,
            };
        }
    }
    .instrument(span)
    .await;
}

/// Runs the execution until it finishes (true) or its runner must end (false: it parked, or
/// the store failed).
async fn drive(executor: &Arc<Executor>, run_id: u64, mut snapshot: ExecutionSnapshot) -> bool {
    while snapshot.status == ExecutionStatus::Running {
        if snapshot.waiting.is_some() {
            match wait::step(executor, run_id, snapshot).await {
                Some(next) => {
                    snapshot = next;
                    continue;
                }
                None => return false,
            }
        }
        // A scheduled retry (also one read back after a restart) waits out what is left.
        if let Some(at) = snapshot.next_attempt_at
            && let Ok(wait) = (at - Utc::now()).to_std()
        {
            tokio::time::sleep(wait).await;
        }
        let attempt = snapshot.attempt();
        // The execution's name is on the parent span already: fields are formatted when a
        // span opens, one span per recorded step, so each repeated field costs per order.
        // `outcome` and `error` are recorded by the Task that ends the attempt.
        let step_span = info_span!(
            "saga_step",
            state = %snapshot.state,
            attempt,
            outcome = tracing::field::Empty,
            error = tracing::field::Empty
        );
        let visited = async {
            let mut tx = Tx::new(snapshot, Utc::now());
            match visit(executor, &mut tx).await {
                Visit::Outcome(outcome) => {
                    settle(executor, &mut tx, outcome);
                    Visit::Outcome(tx)
                }
                Visit::Recorded(committed) => Visit::Recorded(committed),
            }
        }
        .instrument(step_span.clone())
        .await;
        let committed = match visited {
            Visit::Outcome(tx) => tx.commit(executor).await,
            // The Task's handler wrote the transition with its effects.
            Visit::Recorded(committed) => *committed,
        };
        snapshot = match committed {
            Ok(Committed::Written(written)) => {
                log_end(&written);
                written
            }
            Ok(Committed::Lost(stored)) => {
                debug!("another writer moved the execution on; carrying on from there");
                stored
            }
            Err(e) => {
                let _enter = step_span.enter();
                error!(error = %e, "could not record the execution; it stays RUNNING until resumed");
                return false;
            }
        };
    }
    true
}

pub(super) fn log_end(snapshot: &ExecutionSnapshot) {
    match snapshot.status {
        ExecutionStatus::Running => {}
        ExecutionStatus::Succeeded => info!("execution succeeded"),
        ExecutionStatus::Failed => warn!(
            error = snapshot.error.as_deref().unwrap_or(""),
            cause = snapshot.cause.as_deref().unwrap_or(""),
            "execution failed"
        ),
    }
    // Called once per ending: only for the record that wrote it.
    let status = match snapshot.status {
        ExecutionStatus::Running => return,
        ExecutionStatus::Succeeded => "succeeded",
        ExecutionStatus::Failed => "failed",
    };
    metrics::counter!(super::EXECUTIONS_FINISHED_TOTAL, "status" => status).increment(1);
}

/// How a visit of the current state ends: an outcome for the runner to record, or (a Task
/// whose handler wrote its own transition, see `finish`) what the store holds now.
pub(super) enum Visit<T = Outcome> {
    Outcome(T),
    Recorded(Box<Result<Committed, ExecutionStoreError>>),
}

/// Applies `outcome` to `tx`, then runs the states without effects (Choice, Pass, Succeed,
/// Fail) it leads into, into the same record: nothing outside can tell, a restart would run
/// them again just the same, and it saves a write. Bounded, so a definition that loops
/// through Choice states still records (and yields) now and then.
pub(super) fn settle(executor: &Executor, tx: &mut Tx, mut outcome: Outcome) {
    for visited in 1.. {
        tx.now = Utc::now();
        let left = matches!(outcome, Outcome::Exit { .. });
        tx.apply(outcome);
        if !left
            || tx.snapshot.is_finished()
            || visited == MAX_STATES_PER_RECORD
            || !is_effect_free(&executor.machine, &tx.snapshot.state)
        {
            return;
        }
        outcome = visit_effect_free(executor, tx);
    }
}

/// Runs the current state once, adding task events to `tx`.
async fn visit(executor: &Arc<Executor>, tx: &mut Tx) -> Visit {
    match executor.machine.states.get(&tx.snapshot.state) {
        Some(state @ State::Task(task)) => {
            let ctx = if reads_context(state) {
                context(&tx.snapshot, None)
            } else {
                Value::Null
            };
            run_task(executor, tx, task, ctx).await
        }
        _ => Visit::Outcome(visit_effect_free(executor, tx)),
    }
}

/// Runs the current state, one that is not a Task, and says how the visit ends.
fn visit_effect_free(executor: &Executor, tx: &Tx) -> Outcome {
    let Some(state) = executor.machine.states.get(&tx.snapshot.state) else {
        // Only possible when a snapshot outlives a definition change.
        return Outcome::runtime(RuntimeError(format!(
            "state {} does not exist in the state machine",
            tx.snapshot.state
        )));
    };
    let ctx = if reads_context(state) {
        context(&tx.snapshot, None)
    } else {
        Value::Null
    };
    let raw = &tx.snapshot.state_input;
    let result = match state {
        State::Task(_) => Err(RuntimeError(format!(
            "state {} is a Task, visited as one without effects",
            tx.snapshot.state
        ))),
        State::Pass(pass) => (|| {
            let effective = apply_input_path(pass.input_path.as_ref(), raw, &ctx)?;
            let effective = match &pass.parameters {
                Some(template) => template.render(&effective, &ctx)?,
                None => effective,
            };
            let result = pass.result.clone().unwrap_or(effective);
            let output = apply_result_path(pass.result_path.as_ref(), raw.clone(), result)?;
            Ok(Outcome::Exit {
                output: apply_output_path(pass.output_path.as_ref(), output)?,
                next: next_of(&pass.transition),
            })
        })(),
        State::Choice(choice) => (|| {
            let effective = apply_input_path(choice.input_path.as_ref(), raw, &ctx)?;
            let next = crate::asl::choice::choose(&choice.choices, &effective, &ctx)?
                .map(str::to_owned)
                .or_else(|| choice.default.clone());
            Ok(match next {
                Some(next) => {
                    debug!(next = %next, "choice made");
                    Outcome::Exit {
                        output: apply_output_path(choice.output_path.as_ref(), effective)?,
                        next: Some(next),
                    }
                }
                None => Outcome::Fail {
                    error: Some("States.NoChoiceMatched".to_owned()),
                    cause: Some(format!(
                        "no Choice rule matched in state {} and there is no Default",
                        tx.snapshot.state
                    )),
                },
            })
        })(),
        State::Succeed(succeed) => (|| {
            let effective = apply_input_path(succeed.input_path.as_ref(), raw, &ctx)?;
            Ok(Outcome::Exit {
                output: apply_output_path(succeed.output_path.as_ref(), effective)?,
                next: None,
            })
        })(),
        State::Fail(fail) => Ok(Outcome::Fail {
            error: fail.error.clone(),
            cause: fail.cause.clone(),
        }),
    };
    result.unwrap_or_else(Outcome::runtime)
}

fn is_effect_free(machine: &StateMachine, state: &str) -> bool {
    machine
        .states
        .get(state)
        .is_some_and(|s| !matches!(s, State::Task(_)))
}
