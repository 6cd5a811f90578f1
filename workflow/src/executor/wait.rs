//! A callback Task's wait, on the runner's side: submit it once it is recorded, record that it
//! was submitted, then park: the runner ends and only the deadline is kept (see `timer`).
//!
//! The wait (token, deadlines) is in the snapshot before the handler or the queue sees the
//! token, so an answer that arrives before the submission returns finds it, and a crash before
//! the submission is recorded submits again with the same token (handlers are idempotent, the
//! queue keeps one message per token). Every write here may lose to a token call's write on the
//! same wait; the runner then carries on from what that call stored. A queue kept in the
//! executor's own store takes all three in one write (`send_opened`): the wait, its message
//! and the mark that it was submitted become visible together.

use super::finish::Record;
use super::queue::Sent;
use super::run::{Visit, log_end};
use super::store::{
    ExecutionSnapshot, ExecutionStoreError, HistoryEventKind, STATES_TIMEOUT, Waiting,
};
use super::task::{render_body, task_failed, waiting_task};
use super::tx::{Committed, Outcome, Tx};
use super::{Executor, QueueMessage, TaskContext, TaskError};
use crate::asl::path::RuntimeError;
use crate::asl::{Integration, TaskState};
use chrono::Utc;
use serde_json::Value;
use std::sync::Arc;
use tracing::{debug, error};

/// The error an sqs callback Task reports when the queue refuses the message.
const SQS_ERROR: &str = "SQS.AmazonSQSException";

/// The stored snapshot, if the execution is still running.
pub(super) async fn load(executor: &Executor, name: &str) -> Option<ExecutionSnapshot> {
    match executor.store.get(name).await {
        Ok(Some(snapshot)) if !snapshot.is_finished() => Some(snapshot),
        Ok(_) => None,
        Err(e) => {
            error!(error = %e, "could not read the execution; it stays RUNNING until resumed");
            None
        }
    }
}

async fn commit(executor: &Executor, tx: Tx) -> Option<ExecutionSnapshot> {
    match tx.commit(executor).await {
        Ok(Committed::Written(written)) => {
            log_end(&written);
            Some(written)
        }
        Ok(Committed::Lost(stored)) => {
            debug!("a token call moved the execution on first; carrying on from there");
            Some(stored)
        }
        Err(e) => {
            error!(error = %e, "could not record the execution; it stays RUNNING until resumed");
            None
        }
    }
}

fn end_with(snapshot: ExecutionSnapshot, outcome: Outcome) -> Tx {
    let mut tx = Tx::new(snapshot, Utc::now());
    tx.apply(outcome);
    tx
}

/// The wait's deadline passed: `States.Timeout` or `States.HeartbeatTimeout`, through Retry
/// and Catch (a retry opens a new wait with a new token).
fn timed_out(
    executor: &Executor,
    snapshot: ExecutionSnapshot,
    task: &TaskState,
    error: &str,
) -> Tx {
    let (field, seconds) = if error == STATES_TIMEOUT {
        ("TimeoutSeconds", task.timeout_seconds)
    } else {
        ("HeartbeatSeconds", task.heartbeat_seconds)
    };
    let started = snapshot.waiting.as_ref().map(|w| w.started_at);
    let mut tx = Tx::new(snapshot, Utc::now());
    let started = started.unwrap_or(tx.now);
    let err = TaskError::new(
        error,
        format!(
            "no answer to the task token within {field} ({} s)",
            seconds.unwrap_or_default()
        ),
    );
    let outcome = task_failed(executor, &mut tx, task, started, err);
    tx.apply(outcome);
    tx
}

/// One step of a waiting execution. `None` ends the runner: it parked, or the store failed.
pub(super) async fn step(
    executor: &Arc<Executor>,
    run_id: u64,
    snapshot: ExecutionSnapshot,
) -> Option<ExecutionSnapshot> {
    let waiting = snapshot.waiting.clone()?;
    let Some(task) = waiting_task(executor, &snapshot) else {
        // Only possible when a snapshot outlives a definition change.
        let message = format!(
            "state {} is not a callback Task in the state machine",
            snapshot.state
        );
        let tx = end_with(snapshot, Outcome::runtime(RuntimeError(message)));
        return commit(executor, tx).await;
    };
    let deadline = waiting.deadline();
    if let Some((at, error)) = deadline
        && at <= Utc::now()
    {
        return commit(executor, timed_out(executor, snapshot, task, error)).await;
    }
    if waiting.submitted {
        let name = snapshot.name;
        executor.park(&name, deadline.map(|(at, _)| at));
        if executor.retire(&name, run_id) {
            return None;
        }
        // Woken while parking: what woke it is in the store.
        return load(executor, &name).await;
    }
    let body = match render_body(task, &snapshot, &waiting.token) {
        Ok(body) => body,
        Err(e) => return commit(executor, end_with(snapshot, Outcome::runtime(e))).await,
    };
    let submission = submit(executor, task, &snapshot, &waiting, body);
    let result = match deadline {
        Some((at, error)) => {
            let left = (at - Utc::now()).to_std().unwrap_or_default();
            match tokio::time::timeout(left, submission).await {
                Ok(result) => result,
                Err(_) => {
                    return commit(executor, timed_out(executor, snapshot, task, error)).await;
                }
            }
        }
        None => submission.await,
    };
    match result {
        Ok(()) => mark_submitted(executor, snapshot, &waiting.token).await,
        Err(err) => {
            let mut tx = Tx::new(snapshot, Utc::now());
            let outcome = task_failed(executor, &mut tx, task, waiting.started_at, err);
            tx.apply(outcome);
            commit(executor, tx).await
        }
    }
}

/// An sqs callback Task's wait opened, its message sent and the wait marked submitted, in
/// one write, when the queue can write the executor's record with the message (see
/// [`TaskQueue::send_and_record`](super::TaskQueue::send_and_record)). `None` when nothing
/// was written: the runner records the wait and submits it after, as for any callback Task.
pub(super) async fn send_opened(
    executor: &Executor,
    tx: &Tx,
    task: &TaskState,
    waiting: &Waiting,
) -> Option<Visit> {
    let queue = executor.queue.as_ref()?;
    let mut opened = tx.clone();
    opened.now = Utc::now();
    opened.apply(Outcome::Wait(waiting.clone()));
    submitted(&mut opened);
    let body = render_body(task, &opened.snapshot, &waiting.token).ok()?;
    let message = QueueMessage {
        dedup_id: waiting.token.clone(),
        body,
    };
    let record = Record {
        snapshot: opened.snapshot,
        events: opened.events,
    };
    debug!(queue = %task.resource, "sending the task's message with its wait");
    match queue
        .send_and_record(&task.resource, message, &record)
        .await
    {
        Sent::Recorded => Some(Visit::Recorded(Box::new(Ok(Committed::Written(
            record.snapshot,
        ))))),
        Sent::Refused => {
            let refusal = ExecutionStoreError::new(format!(
                "the store refused the wait of execution {} as not continuing its history",
                tx.snapshot.name
            ));
            Some(Visit::Recorded(Box::new(tx.lost(executor, refusal).await)))
        }
        Sent::Nothing => None,
    }
}

/// Hands the body to the handler (its return value is ignored) or to the queue.
async fn submit(
    executor: &Executor,
    task: &TaskState,
    snapshot: &ExecutionSnapshot,
    waiting: &Waiting,
    body: Value,
) -> Result<(), TaskError> {
    match task.integration {
        Integration::SqsCallback => {
            let Some(queue) = &executor.queue else {
                return Err(TaskError::new(SQS_ERROR, "the executor has no task queue"));
            };
            let message = QueueMessage {
                dedup_id: waiting.token.clone(),
                body,
            };
            debug!(queue = %task.resource, "sending the task's message");
            queue
                .send(&task.resource, message)
                .await
                .map_err(|e| TaskError::new(SQS_ERROR, e.to_string()))
        }
        Integration::LambdaCallback | Integration::Invoke => {
            let Some(handler) = executor.handlers.get(&task.resource).cloned() else {
                return Err(TaskError::new(
                    "Lambda.ResourceNotFoundException",
                    task.resource.clone(),
                ));
            };
            let ctx = TaskContext {
                execution: snapshot.name.clone(),
                state: snapshot.state.clone(),
                attempt: snapshot.attempt(),
            };
            let _permit = executor
                .permits
                .acquire()
                .await
                .expect("the semaphore is never closed");
            debug!("invoking the task handler with its token");
            handler.invoke(body, &ctx).await.map(drop)
        }
    }
}

/// Marks the open wait submitted, with the event that says so.
fn submitted(tx: &mut Tx) {
    let attempt = tx.snapshot.attempt();
    if let Some(waiting) = tx.snapshot.waiting.as_mut() {
        waiting.submitted = true;
    }
    tx.event(HistoryEventKind::TaskSubmitted).attempt = Some(attempt);
}

/// Records that the wait was submitted. A token call may have written first: if the same wait
/// is still open (a heartbeat), it is marked on top of that; otherwise the answer stands.
async fn mark_submitted(
    executor: &Executor,
    mut current: ExecutionSnapshot,
    token: &str,
) -> Option<ExecutionSnapshot> {
    loop {
        let mut tx = Tx::new(current, Utc::now());
        submitted(&mut tx);
        match tx.commit(executor).await {
            Ok(Committed::Written(written)) => return Some(written),
            Ok(Committed::Lost(stored)) => {
                let same_wait = stored
                    .waiting
                    .as_ref()
                    .is_some_and(|w| w.token == token && !w.submitted);
                if !same_wait {
                    return Some(stored);
                }
                current = stored;
            }
            Err(e) => {
                error!(error = %e, "could not record the execution; it stays RUNNING until resumed");
                return None;
            }
        }
    }
}
