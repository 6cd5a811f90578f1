//! Task states: calling a handler (bounded by TimeoutSeconds), opening a callback wait, and the
//! two ways any task ends, shared by the runner and the token calls: a result that flows through
//! ResultSelector, ResultPath and OutputPath, or an error that goes through Retry and Catch.

use super::context::context;
use super::finish::{Finish, Finished, Record};
use super::retry::{RetryDecision, decide, retry_delay};
use super::run::{Visit, settle};
use super::store::{
    ExecutionSnapshot, ExecutionStoreError, HistoryEvent, HistoryEventKind,
    STATES_HEARTBEAT_TIMEOUT, STATES_TIMEOUT, Waiting,
};
use super::tokens;
use super::tx::{Committed, Outcome, Tx};
use super::{Executor, TaskContext, TaskError};
use crate::asl::path::{RuntimeError, apply_input_path, apply_output_path, apply_result_path};
use crate::asl::{Integration, TaskState, Transition, error_matches};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

pub(super) fn next_of(transition: &Transition) -> Option<String> {
    match transition {
        Transition::Next(next) => Some(next.clone()),
        Transition::End => None,
    }
}

/// `seconds` of the definition as a duration, times `timeout_scale`; None if it overflows.
pub(super) fn scaled(executor: &Executor, seconds: Option<u64>) -> Option<Duration> {
    seconds.and_then(|s| Duration::try_from_secs_f64(s as f64 * executor.opts.timeout_scale).ok())
}

fn after(now: DateTime<Utc>, duration: Option<Duration>) -> Option<DateTime<Utc>> {
    duration
        .and_then(|d| TimeDelta::from_std(d).ok())
        .and_then(|d| now.checked_add_signed(d))
}

/// When a heartbeat received `now` moves the heartbeat deadline to.
pub(super) fn heartbeat_deadline(
    executor: &Executor,
    task: &TaskState,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    after(now, scaled(executor, task.heartbeat_seconds))
}

/// A Task's visit. The handler is offered the transition its result leads to (`finish`), to
/// write with its effects; a handler that does not leaves the outcome to the runner.
pub(super) async fn run_task(
    executor: &Arc<Executor>,
    tx: &mut Tx,
    task: &TaskState,
    ctx: Value,
) -> Visit {
    if task.integration.waits_for_token() {
        let outcome = open_wait(executor, tx, task);
        if let Outcome::Wait(waiting) = &outcome
            && task.integration == Integration::SqsCallback
            && let Some(sent) = super::wait::send_opened(executor, tx, task, waiting).await
        {
            return sent;
        }
        return Visit::Outcome(outcome);
    }
    let raw = &tx.snapshot.state_input;
    let effective = apply_input_path(task.input_path.as_ref(), raw, &ctx).and_then(|effective| {
        match &task.parameters {
            Some(template) => template.render(&effective, &ctx),
            None => Ok(effective),
        }
    });
    let effective = match effective {
        Ok(effective) => effective,
        Err(e) => return Visit::Outcome(Outcome::runtime(e)),
    };
    let attempt = tx.snapshot.attempt();
    let task_ctx = TaskContext {
        execution: tx.snapshot.name.clone(),
        state: tx.snapshot.state.clone(),
        attempt,
    };
    let handler = Arc::clone(&executor.handlers[&task.resource]);
    let started;
    let result = {
        let _permit = executor
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // The attempt's duration is the handler's, not the wait for a permit.
        started = Utc::now();
        let finish = finish(executor, tx, started, ctx.clone());
        debug!("invoking task handler");
        let call = handler.invoke_and_record(effective, &task_ctx, &finish);
        match scaled(executor, task.timeout_seconds) {
            Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                Finished::Returned(Err(TaskError::new(
                    STATES_TIMEOUT,
                    format!(
                        "the handler did not return within TimeoutSeconds ({} s)",
                        task.timeout_seconds.unwrap_or_default()
                    ),
                )))
            }),
            None => call.await,
        }
    };
    Visit::Outcome(match result {
        Finished::Returned(Ok(result)) => succeeded(tx, task, started, result, &ctx),
        Finished::Returned(Err(err)) => task_failed(executor, tx, task, started, err),
        Finished::Recorded(written) => {
            return Visit::Recorded(Box::new(Ok(Committed::Written(*written))));
        }
        Finished::Refused => {
            let refusal = ExecutionStoreError::new(format!(
                "the store refused the transition of execution {} as not continuing its history",
                tx.snapshot.name
            ));
            return Visit::Recorded(Box::new(tx.lost(executor, refusal).await));
        }
    })
}

/// The transition a result of the Task `tx` is in leads to: the same code as the runner's own
/// record (`succeeded` or `task_failed`, then `settle`), from the same base, on the Task's
/// span (its `outcome` and `error` fields are recorded wherever the handler calls it).
fn finish(executor: &Arc<Executor>, tx: &Tx, started: DateTime<Utc>, ctx: Value) -> Finish {
    let (executor, base, span) = (executor.clone(), tx.clone(), tracing::Span::current());
    Finish::new(move |result| {
        span.in_scope(|| {
            let mut tx = base.clone();
            let outcome = match task_state(&executor, &tx.snapshot) {
                Some(task) => match result {
                    Ok(result) => succeeded(&mut tx, task, started, result, &ctx),
                    Err(err) => task_failed(&executor, &mut tx, task, started, err),
                },
                None => Outcome::runtime(RuntimeError(format!(
                    "state {} is not a Task in the state machine",
                    tx.snapshot.state
                ))),
            };
            settle(&executor, &mut tx, outcome);
            Record {
                snapshot: tx.snapshot,
                events: tx.events,
            }
        })
    })
}

/// The Task state a snapshot is in.
fn task_state<'a>(executor: &'a Executor, snapshot: &ExecutionSnapshot) -> Option<&'a TaskState> {
    match executor.machine.states.get(&snapshot.state) {
        Some(crate::asl::State::Task(t)) => Some(t),
        _ => None,
    }
}

/// A callback Task's visit: a fresh token and its deadlines, to be recorded before anything is
/// submitted. The body is rendered here once only so that data that does not fit fails now.
fn open_wait(executor: &Executor, tx: &mut Tx, task: &TaskState) -> Outcome {
    let token = tokens::issue(&tx.snapshot.name);
    if let Err(e) = render_body(task, &tx.snapshot, &token) {
        return Outcome::runtime(e);
    }
    let now = Utc::now();
    mark("waiting", None);
    Outcome::Wait(Waiting {
        token,
        started_at: now,
        timeout_at: after(now, scaled(executor, task.timeout_seconds)),
        heartbeat_at: heartbeat_deadline(executor, task, now),
        submitted: false,
    })
}

/// What a callback Task submits (`Parameters.Payload` or `.MessageBody`), rendered with `token`
/// as `$$.Task.Token`: the same for the first submission and a resubmission after a crash.
pub(super) fn render_body(
    task: &TaskState,
    snapshot: &ExecutionSnapshot,
    token: &str,
) -> Result<Value, RuntimeError> {
    let ctx = context(snapshot, Some(token));
    let effective = apply_input_path(task.input_path.as_ref(), &snapshot.state_input, &ctx)?;
    let rendered = match &task.parameters {
        Some(template) => template.render(&effective, &ctx)?,
        None => effective,
    };
    let field = task.integration.body_field().unwrap_or("Payload");
    match rendered {
        Value::Object(mut fields) => fields.remove(field),
        _ => None,
    }
    .ok_or_else(|| RuntimeError(format!("Parameters.{field} is missing")))
}

/// Stamps the end of the attempt that began at `started` (the call, or the wait's start):
/// the event is timed when the answer came, and says how long the attempt took.
fn end_attempt(tx: &mut Tx, kind: HistoryEventKind, started: DateTime<Utc>) -> &mut HistoryEvent {
    tx.now = tx.now.max(Utc::now());
    let attempt = tx.snapshot.attempt();
    let took = (tx.now - started).num_milliseconds().max(0);
    let e = tx.event(kind);
    e.attempt = Some(attempt);
    e.duration_ms = u64::try_from(took).ok();
    e
}

/// How the attempt ended, on its span (`saga_step`, one per attempt, exported over OTLP when
/// spans are); a field the current span lacks is ignored.
fn mark(outcome: &'static str, error: Option<&str>) {
    let span = tracing::Span::current();
    span.record("outcome", outcome);
    if let Some(error) = error {
        span.record("error", error);
    }
}

/// A task result, through ResultSelector, ResultPath and OutputPath; the attempt began at
/// `started`.
pub(super) fn succeeded(
    tx: &mut Tx,
    task: &TaskState,
    started: DateTime<Utc>,
    result: Value,
    ctx: &Value,
) -> Outcome {
    end_attempt(tx, HistoryEventKind::TaskSucceeded, started);
    mark("succeeded", None);
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

/// A task error (a timeout too), through Retry and Catch; the attempt began at `started`.
pub(super) fn task_failed(
    executor: &Executor,
    tx: &mut Tx,
    task: &TaskState,
    started: DateTime<Utc>,
    err: TaskError,
) -> Outcome {
    let kind = if err.error == STATES_TIMEOUT || err.error == STATES_HEARTBEAT_TIMEOUT {
        HistoryEventKind::TaskTimedOut
    } else {
        HistoryEventKind::TaskFailed
    };
    let e = end_attempt(tx, kind, started);
    e.error = Some(err.error.clone());
    e.cause = Some(err.cause.clone());
    if let RetryDecision::Retry { index, retry } =
        decide(&task.retry, &tx.snapshot.retry_counts, &err.error)
    {
        let delay = retry_delay(&task.retry[index], retry, fastrand::f64())
            .mul_f64(executor.opts.delay_scale);
        info!(error = %err.error, cause = %err.cause, retry, delay_ms = delay.as_millis() as u64, "task failed; retry scheduled");
        metrics::counter!(super::STEP_RETRIES_TOTAL, "step" => tx.snapshot.state.clone())
            .increment(1);
        mark("retried", Some(&err.error));
        return Outcome::Retry { index, delay };
    }
    let Some(catcher) = task
        .catch
        .iter()
        .find(|c| error_matches(&c.error_equals, &err.error))
    else {
        warn!(error = %err.error, cause = %err.cause, "task failed; no Catch matches");
        mark("failed", Some(&err.error));
        return Outcome::Fail {
            error: Some(err.error),
            cause: Some(err.cause),
        };
    };
    warn!(error = %err.error, cause = %err.cause, next = %catcher.next, "task failed; caught");
    mark("caught", Some(&err.error));
    let raw = tx.snapshot.state_input.clone();
    let e = tx.event(HistoryEventKind::CaughtError);
    e.error = Some(err.error.clone());
    e.cause = Some(err.cause.clone());
    // The Catch's ResultPath may overwrite the input; a redrive needs it as it was.
    e.input = Some(raw);
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

/// The Task a waiting snapshot waits in, if the definition still has it as a callback Task.
pub(super) fn waiting_task<'a>(
    executor: &'a Executor,
    snapshot: &ExecutionSnapshot,
) -> Option<&'a TaskState> {
    match executor.machine.states.get(&snapshot.state) {
        Some(crate::asl::State::Task(t)) if t.integration != Integration::Invoke => Some(t),
        _ => None,
    }
}
