//! The execution loop: run the current state, then record the result before anything else.
//!
//! Each iteration turns the persisted snapshot into exactly one [`Outcome`] (leave the state,
//! schedule a retry, or fail), applies it to the snapshot while writing the history events
//! that explain it, and records both in one `record` call. Nothing is acted on before that
//! call succeeds, so the store is always at a state boundary: what a restart resumes from.
//! Data that does not fit the definition (a path that selects nothing) fails the execution
//! with `States.Runtime`, which, as on Step Functions, no Retry or Catch intercepts.

use super::context::{context, reads_context};
use super::retry::{RetryDecision, decide, retry_delay};
use super::store::{ExecutionSnapshot, ExecutionStatus, HistoryEvent, HistoryEventKind};
use super::{Executor, TaskContext, TaskError};
use crate::asl::path::{RuntimeError, apply_input_path, apply_output_path, apply_result_path};
use crate::asl::{STATES_RUNTIME, State, StateMachine, TaskState, Transition, error_matches};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tracing::{Instrument, debug, error, info, info_span, warn};

/// Most states run between two records (see the loop in [`run`]).
const MAX_STATES_PER_RECORD: usize = 16;

/// How a state visit ends.
enum Outcome {
    /// Leave the state with `output`, to `next` or (None) ending the execution successfully.
    Exit { output: Value, next: Option<String> },
    /// Run the state again after `delay`, counted against retrier `index`.
    Retry { index: usize, delay: Duration },
    /// End the execution as FAILED.
    Fail {
        error: Option<String>,
        cause: Option<String>,
    },
}

impl Outcome {
    fn runtime(e: RuntimeError) -> Outcome {
        Outcome::Fail {
            error: Some(STATES_RUNTIME.to_owned()),
            cause: Some(e.0),
        }
    }
}

/// The snapshot and events of a new execution: started, and entered its first state.
pub(super) fn initial(
    machine: &StateMachine,
    name: &str,
    input: Value,
    now: DateTime<Utc>,
) -> (ExecutionSnapshot, Vec<HistoryEvent>) {
    let mut tx = Tx {
        snapshot: ExecutionSnapshot {
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
        },
        events: Vec::new(),
        now,
    };
    tx.event(HistoryEventKind::ExecutionStarted).state = None;
    tx.event(HistoryEventKind::StateEntered);
    (tx.snapshot, tx.events)
}

/// A snapshot being changed together with the events that describe the change.
struct Tx {
    snapshot: ExecutionSnapshot,
    events: Vec<HistoryEvent>,
    now: DateTime<Utc>,
}

impl Tx {
    /// Appends an event about the current state, with the next seq.
    fn event(&mut self, kind: HistoryEventKind) -> &mut HistoryEvent {
        self.snapshot.seq += 1;
        self.events.push(HistoryEvent {
            seq: self.snapshot.seq,
            timestamp: self.now,
            kind,
            state: Some(self.snapshot.state.clone()),
            attempt: None,
            error: None,
            cause: None,
            delay_ms: None,
        });
        self.events.last_mut().expect("just pushed")
    }

    fn apply(&mut self, outcome: Outcome) {
        let s = &mut self.snapshot;
        s.updated_at = self.now;
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
        }
    }
}

/// Runs an execution until it finishes, the store fails, or the task is aborted.
pub(super) async fn run(executor: Arc<Executor>, mut snapshot: ExecutionSnapshot) {
    let span = info_span!("saga_execution", execution = %snapshot.name);
    async move {
        while snapshot.status == ExecutionStatus::Running {
            // A scheduled retry (also one read back after a restart) waits out what is left.
            if let Some(at) = snapshot.next_attempt_at
                && let Ok(wait) = (at - Utc::now()).to_std()
            {
                tokio::time::sleep(wait).await;
            }
            let attempt = snapshot.attempt();
            // The execution's name is on the parent span already: fields are formatted when a
            // span opens, one span per recorded step, so each repeated field costs per order.
            let step_span = info_span!("saga_step", state = %snapshot.state, attempt);
            let tx = async {
                let mut tx = Tx {
                    snapshot,
                    events: Vec::new(),
                    now: Utc::now(),
                };
                // Bounded, so a definition that loops through Choice states still records
                // (and yields) now and then.
                for _ in 0..MAX_STATES_PER_RECORD {
                    let outcome = visit(&executor, &mut tx).await;
                    tx.now = Utc::now();
                    let left = matches!(outcome, Outcome::Exit { .. });
                    tx.apply(outcome);
                    // A state without effects (Choice, Pass, Succeed, Fail) entered on leaving
                    // this one runs now and goes into the same record: nothing outside can
                    // tell, a restart would run it again just the same, and it saves a write.
                    if !left
                        || tx.snapshot.is_finished()
                        || !is_effect_free(&executor.machine, &tx.snapshot.state)
                    {
                        break;
                    }
                }
                tx
            }
            .instrument(step_span.clone())
            .await;
            if let Err(e) = executor.store.record(&tx.snapshot, &tx.events).await {
                let _enter = step_span.enter();
                error!(error = %e, "could not record the execution; it stays RUNNING until resumed");
                return;
            }
            match tx.snapshot.status {
                ExecutionStatus::Running => {}
                ExecutionStatus::Succeeded => info!("execution succeeded"),
                ExecutionStatus::Failed => warn!(
                    error = tx.snapshot.error.as_deref().unwrap_or(""),
                    cause = tx.snapshot.cause.as_deref().unwrap_or(""),
                    "execution failed"
                ),
            }
            snapshot = tx.snapshot;
        }
    }
    .instrument(span)
    .await;
}

/// Runs the current state once and says how the visit ends, adding task events to `tx`.
async fn visit(executor: &Executor, tx: &mut Tx) -> Outcome {
    let Some(state) = executor.machine.states.get(&tx.snapshot.state) else {
        // Only possible when a snapshot outlives a definition change.
        return Outcome::runtime(RuntimeError(format!(
            "state {} does not exist in the state machine",
            tx.snapshot.state
        )));
    };
    let ctx = if reads_context(state) {
        context(&tx.snapshot)
    } else {
        Value::Null
    };
    let raw = &tx.snapshot.state_input;
    let result = match state {
        State::Task(task) => return run_task(executor, tx, task, &ctx).await,
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

fn next_of(transition: &Transition) -> Option<String> {
    match transition {
        Transition::Next(next) => Some(next.clone()),
        Transition::End => None,
    }
}

async fn run_task(executor: &Executor, tx: &mut Tx, task: &TaskState, ctx: &Value) -> Outcome {
    let raw = &tx.snapshot.state_input;
    let effective = apply_input_path(task.input_path.as_ref(), raw, ctx).and_then(|effective| {
        match &task.parameters {
            Some(template) => template.render(&effective, ctx),
            None => Ok(effective),
        }
    });
    let effective = match effective {
        Ok(effective) => effective,
        Err(e) => return Outcome::runtime(e),
    };
    let attempt = tx.snapshot.attempt();
    let task_ctx = TaskContext {
        execution: tx.snapshot.name.clone(),
        state: tx.snapshot.state.clone(),
        attempt,
    };
    let handler = Arc::clone(&executor.handlers[&task.resource]);
    let result = {
        let _permit = executor
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        debug!("invoking task handler");
        handler.invoke(effective, &task_ctx).await
    };
    match result {
        Ok(result) => {
            tx.event(HistoryEventKind::TaskSucceeded).attempt = Some(attempt);
            let output = (|| {
                let result = match &task.result_selector {
                    Some(template) => template.render(&result, ctx)?,
                    None => result,
                };
                let output = apply_result_path(
                    task.result_path.as_ref(),
                    tx.snapshot.state_input.clone(),
                    result,
                )?;
                apply_output_path(task.output_path.as_ref(), output)
            })();
            match output {
                Ok(output) => Outcome::Exit {
                    output,
                    next: next_of(&task.transition),
                },
                Err(e) => Outcome::runtime(e),
            }
        }
        Err(err) => task_failed(executor, tx, task, attempt, err),
    }
}

fn task_failed(
    executor: &Executor,
    tx: &mut Tx,
    task: &TaskState,
    attempt: u32,
    err: TaskError,
) -> Outcome {
    let e = tx.event(HistoryEventKind::TaskFailed);
    e.attempt = Some(attempt);
    e.error = Some(err.error.clone());
    e.cause = Some(err.cause.clone());
    if let RetryDecision::Retry { index, retry } =
        decide(&task.retry, &tx.snapshot.retry_counts, &err.error)
    {
        let delay = retry_delay(&task.retry[index], retry, fastrand::f64())
            .mul_f64(executor.opts.delay_scale);
        info!(error = %err.error, cause = %err.cause, retry, delay_ms = delay.as_millis() as u64, "task failed; retry scheduled");
        return Outcome::Retry { index, delay };
    }
    let Some(catcher) = task
        .catch
        .iter()
        .find(|c| error_matches(&c.error_equals, &err.error))
    else {
        warn!(error = %err.error, cause = %err.cause, "task failed; no Catch matches");
        return Outcome::Fail {
            error: Some(err.error),
            cause: Some(err.cause),
        };
    };
    warn!(error = %err.error, cause = %err.cause, next = %catcher.next, "task failed; caught");
    let e = tx.event(HistoryEventKind::CaughtError);
    e.error = Some(err.error.clone());
    e.cause = Some(err.cause.clone());
    let info = json!({ "Error": err.error, "Cause": err.cause });
    match apply_result_path(
        catcher.result_path.as_ref(),
        tx.snapshot.state_input.clone(),
        info,
    ) {
        Ok(output) => Outcome::Exit {
            output,
            next: Some(catcher.next.clone()),
        },
        Err(e) => Outcome::runtime(e),
    }
}
