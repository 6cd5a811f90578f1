//! Task tokens and the calls that answer them: SendTaskSuccess, SendTaskFailure and
//! SendTaskHeartbeat, with Step Functions' semantics and exception names.
//!
//! A token is base64url of a version byte, 256 bits from the OS's random source (two v4 UUIDs,
//! 244 of them random) and the execution's name: unguessable, and it names the execution, so
//! answering it needs no index, just the execution's snapshot, whose open wait must hold the
//! very same token. Each answer is one `record` with the store's seq check; when it loses to
//! the runner (a deadline) or to another answer, the call re-reads and judges again, so exactly
//! one of them closes a wait, and the others get `TaskTimedOut`. [`Executor::fail_waiting`]
//! answers by execution instead of by token: it fails whatever wait the execution has open,
//! through the same single write, so it too wins or loses against the others as a whole.

use super::context::context;
use super::store::{ExecutionSnapshot, ExecutionStoreError, HistoryEventKind};
use super::task::{heartbeat_deadline, succeeded, task_failed, waiting_task};
use super::tx::{Committed, Tx};
use super::{Executor, TaskError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::info;

const VERSION: u8 = 1;
const RANDOM_BYTES: usize = 32;
/// Step Functions' tokens are at most 1024 characters; ours stay well below (80-char names).
const MAX_TOKEN_LEN: usize = 1024;

/// Why a token call was refused; the names are Step Functions' exceptions.
#[derive(Debug, thiserror::Error)]
pub enum TaskTokenError {
    #[error("InvalidToken: the task token is malformed")]
    InvalidToken,
    #[error("TaskDoesNotExist: no task was given this token")]
    TaskDoesNotExist,
    #[error(
        "TaskTimedOut: the task of this token is closed (answered, timed out or retried, or its execution ended)"
    )]
    TaskTimedOut,
    #[error("the executor is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] ExecutionStoreError),
}

/// A fresh token for a wait of execution `name`.
pub(super) fn issue(name: &str) -> String {
    let mut bytes = Vec::with_capacity(1 + RANDOM_BYTES + name.len());
    bytes.push(VERSION);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(name.as_bytes());
    encode(&bytes)
}

/// The execution a well-formed token names.
pub(super) fn execution_of(token: &str) -> Result<String, TaskTokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TaskTokenError::InvalidToken);
    }
    let bytes = decode(token).ok_or(TaskTokenError::InvalidToken)?;
    match bytes.split_first() {
        Some((&VERSION, rest)) if rest.len() > RANDOM_BYTES => {
            let name = std::str::from_utf8(&rest[RANDOM_BYTES..])
                .map_err(|_| TaskTokenError::InvalidToken)?;
            if name.chars().count() > 80 {
                return Err(TaskTokenError::InvalidToken);
            }
            Ok(name.to_owned())
        }
        _ => Err(TaskTokenError::InvalidToken),
    }
}

fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Unpadded base64url; `None` for anything else, non-canonical trailing bits included.
fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// What [`Executor::fail_waiting`] found the execution waiting in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFailed {
    /// It waited on a task token, and that task has failed with the error.
    Failed,
    /// It is running but waits in no task now (a handler runs, a retry is due, or its wait is
    /// past its deadline and about to time out).
    NotWaiting,
    /// It has ended.
    Finished,
    /// No execution has this name.
    Unknown,
}

/// How answering one wait ended.
enum Closed {
    /// This answer closed the wait (a heartbeat: was recorded on it).
    Answered,
    /// The token names no open wait in this snapshot, the latest read.
    NotOpen(Box<ExecutionSnapshot>),
    /// The wait is past its deadline (or its state is no callback Task any more): the
    /// runner, not an answer, ends it.
    Over,
}

/// What a token call says about its task.
enum Answer {
    Success(Value),
    Failure(TaskError),
    Heartbeat,
}

impl Executor {
    /// SendTaskSuccess: `output` is the task's result (ResultSelector, ResultPath and OutputPath
    /// apply). Durable before it returns Ok; the execution then carries on in the background.
    pub async fn send_task_success(
        self: &Arc<Self>,
        token: &str,
        output: Value,
    ) -> Result<(), TaskTokenError> {
        self.answer(token, Answer::Success(output)).await
    }

    /// SendTaskFailure: the task fails with `error` and `cause`, through Retry and Catch.
    pub async fn send_task_failure(
        self: &Arc<Self>,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), TaskTokenError> {
        self.answer(token, Answer::Failure(TaskError::new(error, cause)))
            .await
    }

    /// SendTaskHeartbeat: the task's HeartbeatSeconds count again from now.
    pub async fn send_task_heartbeat(self: &Arc<Self>, token: &str) -> Result<(), TaskTokenError> {
        self.answer(token, Answer::Heartbeat).await
    }

    async fn answer(self: &Arc<Self>, token: &str, answer: Answer) -> Result<(), TaskTokenError> {
        let name = execution_of(token)?;
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(TaskTokenError::ShuttingDown);
        }
        let stored = self
            .store
            .get(&name)
            .await?
            .ok_or(TaskTokenError::TaskDoesNotExist)?;
        match self.answer_wait(stored, token, &answer).await? {
            Closed::Answered => Ok(()),
            Closed::NotOpen(_) => Err(self.closed_or_unknown(&name, token).await),
            Closed::Over => Err(TaskTokenError::TaskTimedOut),
        }
    }

    /// Fails the task execution `name` waits in, as SendTaskFailure with its token would
    /// (Retry and Catch apply; durable before it returns): for a caller that knows the
    /// execution but not the token, a cancellation. The wait counts from the moment it is
    /// recorded, before the handler or the queue has the token. If another answer closes that
    /// wait first, the call judges again what the execution waits in now.
    pub async fn fail_waiting(
        self: &Arc<Self>,
        name: &str,
        error: &str,
        cause: &str,
    ) -> Result<WaitFailed, TaskTokenError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(TaskTokenError::ShuttingDown);
        }
        let Some(mut stored) = self.store.get(name).await? else {
            return Ok(WaitFailed::Unknown);
        };
        let answer = Answer::Failure(TaskError::new(error, cause));
        loop {
            if stored.is_finished() {
                return Ok(WaitFailed::Finished);
            }
            let Some(token) = stored.waiting.as_ref().map(|w| w.token.clone()) else {
                return Ok(WaitFailed::NotWaiting);
            };
            match self.answer_wait(stored, &token, &answer).await? {
                Closed::Answered => return Ok(WaitFailed::Failed),
                // Another writer closed that wait first: judge what it stored (newer each
                // time round, so this ends).
                Closed::NotOpen(current) => stored = *current,
                Closed::Over => return Ok(WaitFailed::NotWaiting),
            }
        }
    }

    /// Answers the wait of `token` in `stored` (the execution's latest read), re-reading and
    /// judging again whenever another writer wins the seq check.
    async fn answer_wait(
        self: &Arc<Self>,
        mut stored: ExecutionSnapshot,
        token: &str,
        answer: &Answer,
    ) -> Result<Closed, ExecutionStoreError> {
        let name = stored.name.clone();
        loop {
            let now = Utc::now();
            let open = stored
                .waiting
                .as_ref()
                .filter(|w| w.token == token && !stored.is_finished());
            let Some(waiting) = open else {
                return Ok(Closed::NotOpen(Box::new(stored)));
            };
            // Past its deadline the task is over, whether or not the timer has recorded it yet.
            if waiting.deadline().is_some_and(|(at, _)| at <= now) {
                return Ok(Closed::Over);
            }
            let Some(task) = waiting_task(self, &stored) else {
                return Ok(Closed::Over);
            };
            let started = waiting.started_at;
            let mut tx = Tx::new(stored, now);
            let attempt = tx.snapshot.attempt();
            match answer {
                Answer::Success(output) => {
                    let ctx = context(&tx.snapshot, None);
                    let outcome = succeeded(&mut tx, task, started, output.clone(), &ctx);
                    tx.apply(outcome);
                }
                Answer::Failure(err) => {
                    let outcome = task_failed(self, &mut tx, task, started, err.clone());
                    tx.apply(outcome);
                }
                Answer::Heartbeat => {
                    let at = heartbeat_deadline(self, task, now);
                    if let Some(waiting) = tx.snapshot.waiting.as_mut() {
                        waiting.heartbeat_at = at;
                    }
                    tx.event(HistoryEventKind::TaskHeartbeat).attempt = Some(attempt);
                }
            }
            match tx.commit(self).await? {
                Committed::Written(written) => {
                    match answer {
                        Answer::Heartbeat => self.parked.rearm(
                            &name,
                            written
                                .waiting
                                .as_ref()
                                .and_then(|w| w.deadline())
                                .map(|d| d.0),
                        ),
                        _ if written.is_finished() => {
                            self.parked.remove(&name);
                            super::run::log_end(&written);
                        }
                        _ => {
                            info!(execution = %name, "task token answered");
                            self.wake(&name);
                        }
                    }
                    return Ok(Closed::Answered);
                }
                Committed::Lost(current) => stored = current,
            }
        }
    }

    /// A token that matches no open wait: closed if the execution ever issued it.
    async fn closed_or_unknown(&self, name: &str, token: &str) -> TaskTokenError {
        match self.store.history(name).await {
            Ok(history)
                if history
                    .iter()
                    .any(|e| e.task_token.as_deref() == Some(token)) =>
            {
                TaskTokenError::TaskTimedOut
            }
            Ok(_) => TaskTokenError::TaskDoesNotExist,
            Err(e) => TaskTokenError::Store(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_execution_and_differ() {
        let a = issue("order-1");
        let b = issue("order-1");
        assert_ne!(a, b);
        assert_eq!(execution_of(&a).unwrap(), "order-1");
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"\xff\x00\x10\x80"] {
            assert_eq!(decode(&encode(bytes)).as_deref(), Some(bytes));
        }
    }

    #[test]
    fn malformed_tokens_are_invalid() {
        let good = issue("x");
        let short = encode(&[VERSION; RANDOM_BYTES]);
        let other_version = encode(&[2; RANDOM_BYTES + 2]);
        let not_utf8 = encode(&[&[VERSION][..], &[0; RANDOM_BYTES], &[0xff]].concat());
        for bad in [
            "",
            "not base64!",
            &good[..good.len() - 1],
            &format!("{good}="),
            &short,
            &other_version,
            &not_utf8,
            &"A".repeat(2000),
        ] {
            assert!(
                matches!(execution_of(bad), Err(TaskTokenError::InvalidToken)),
                "{bad}"
            );
        }
    }
}
