//! What the executor persists, and the trait a store implements.
//!
//! Durability rests on one invariant: the snapshot is the *only* thing a restart needs, and it
//! is replaced together with the history events that explain the change, in one atomic
//! `record`. The snapshot always names a state that has not completed yet (or a finished
//! execution), so resuming means running that state again — safe because every handler is
//! idempotent — and never skipping one. The `seq` of the snapshot is the seq of the last
//! history event; a store uses it to refuse a write that does not continue the stored history,
//! which is what stops two runners of the same execution from interleaving.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::time::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;

orders_domain::wire_names! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum ExecutionStatus {
        Running = "RUNNING",
        Succeeded = "SUCCEEDED",
        Failed = "FAILED",
    }
    unknown: String = |s| format!("unknown execution status {s:?}");
}

/// Everything needed to continue an execution after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSnapshot {
    pub name: String,
    pub status: ExecutionStatus,
    /// The state to run next (while RUNNING) or the last state run (once finished).
    pub state: String,
    /// The raw input of `state`, before its InputPath.
    pub state_input: Value,
    #[serde(with = "rfc3339")]
    pub state_entered_at: DateTime<Utc>,
    /// The execution's original input (`$$.Execution.Input`).
    pub input: Value,
    /// One counter per retrier of `state`, reset when the state is left.
    #[serde(default)]
    pub retry_counts: Vec<u32>,
    /// When a scheduled retry of `state` is due; a resumed execution waits until then.
    #[serde(default, with = "rfc3339::option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub output: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// The seq of the last history event.
    pub seq: u64,
    /// The open wait of a `.waitForTaskToken` Task in `state`, if it is waiting for its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// How many times the execution was redriven (Step Functions' `redriveCount`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redrive_count: u32,
    /// The trace the execution continues (W3C `traceparent`: the span that started it, when
    /// spans are exported): stored, so a run after a restart continues it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<orders_domain::Traceparent>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A callback Task's wait, recorded before anything is submitted, so that a token that comes
/// back at once finds it and a crash before the submission is submitted again with that token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub token: String,
    /// The start of the attempt.
    #[serde(with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    /// TimeoutSeconds after the start (scaled): then `States.Timeout`.
    #[serde(default, with = "rfc3339::option")]
    pub timeout_at: Option<DateTime<Utc>>,
    /// HeartbeatSeconds after the start or the last heartbeat (scaled): then
    /// `States.HeartbeatTimeout`.
    #[serde(default, with = "rfc3339::option")]
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Whether the handler returned or the message was enqueued.
    #[serde(default)]
    pub submitted: bool,
}

impl Waiting {
    /// The first deadline, and the error it raises.
    pub fn deadline(&self) -> Option<(DateTime<Utc>, &'static str)> {
        let timeout = self.timeout_at.map(|t| (t, STATES_TIMEOUT));
        let heartbeat = self.heartbeat_at.map(|t| (t, STATES_HEARTBEAT_TIMEOUT));
        match (timeout, heartbeat) {
            (Some(t), Some(h)) => Some(if h.0 < t.0 { h } else { t }),
            (t, h) => t.or(h),
        }
    }
}

/// A Task that ran past its TimeoutSeconds.
pub const STATES_TIMEOUT: &str = "States.Timeout";
/// A callback Task that got no heartbeat within HeartbeatSeconds.
pub const STATES_HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";

impl ExecutionSnapshot {
    /// The 1-based attempt number the next run of `state` will be.
    pub fn attempt(&self) -> u32 {
        1 + self.retry_counts.iter().sum::<u32>()
    }

    pub fn is_finished(&self) -> bool {
        self.status != ExecutionStatus::Running
    }
}

orders_domain::wire_names! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum HistoryEventKind with ALL {
        ExecutionStarted,
        StateEntered,
        TaskScheduled,
        TaskSubmitted,
        TaskHeartbeat,
        TaskSucceeded,
        TaskFailed,
        TaskTimedOut,
        RetryScheduled,
        CaughtError,
        StateExited,
        ExecutionSucceeded,
        ExecutionFailed,
        ExecutionRedriven,
    }
    unknown: String = |s| format!("unknown history event kind {s:?}");
}

/// One line of an execution's history; `seq` starts at 1 and has no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub seq: u64,
    #[serde(with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    pub kind: HistoryEventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// For task events: the 1-based attempt; for RetryScheduled: the attempt being scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// For TaskScheduled: the token the wait was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    /// For the end of a task attempt (TaskSucceeded, TaskFailed, TaskTimedOut): how long it
    /// took, from the call (or the wait's start) to the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// For CaughtError: the raw input of the Task that caught it, which is what a redrive of
    /// an execution that failed in the Catch's Fail state runs that Task with again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("execution store: {message}")]
pub struct ExecutionStoreError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ExecutionStoreError {
    pub fn new(message: impl Into<String>) -> Self {
        ExecutionStoreError {
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ExecutionStoreError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Insert a new RUNNING execution; Ok(false) if the name already exists (a no-op, like
    /// Step Functions' ExecutionAlreadyExists).
    async fn create(
        &self,
        snapshot: &ExecutionSnapshot,
        events: &[HistoryEvent],
    ) -> Result<bool, ExecutionStoreError>;
    /// Atomically replace the snapshot and append the events (one transaction). Should fail,
    /// changing nothing, when the execution is unknown or already finished, or when `events`
    /// do not continue the stored history (first seq != stored seq + 1).
    async fn record(
        &self,
        snapshot: &ExecutionSnapshot,
        events: &[HistoryEvent],
    ) -> Result<(), ExecutionStoreError>;
    /// Every RUNNING execution, oldest first.
    async fn unfinished(&self) -> Result<Vec<ExecutionSnapshot>, ExecutionStoreError>;
    async fn get(&self, name: &str) -> Result<Option<ExecutionSnapshot>, ExecutionStoreError>;
    /// The history in seq order; empty for an unknown execution.
    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, ExecutionStoreError>;
    /// Atomically turn a FAILED execution back into a RUNNING one: replace the snapshot and
    /// append the events, only if it is still FAILED and `events` continue its history.
    /// Ok(false), changing nothing, when it is unknown, not FAILED, or elsewhere in its
    /// history (another redrive won).
    async fn redrive(
        &self,
        snapshot: &ExecutionSnapshot,
        events: &[HistoryEvent],
    ) -> Result<bool, ExecutionStoreError>;
    /// The executions in `status`, most recently changed first, at most `limit`.
    async fn list(
        &self,
        status: ExecutionStatus,
        limit: usize,
    ) -> Result<Vec<ExecutionSnapshot>, ExecutionStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;
    use std::str::FromStr;

    /// A store reads back what `as_str` wrote, and the JSON history uses serde's form of the
    /// same names, so all three must agree.
    fn assert_names<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + Serialize + FromStr<Err: fmt::Debug>,
    {
        let names: Vec<String> = all.iter().map(T::to_string).collect();
        assert_eq!(serde_json::to_value(all).unwrap(), serde_json::json!(names));
        let parsed: Vec<T> = names.iter().map(|n| n.parse().unwrap()).collect();
        assert_eq!(parsed, all);
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        assert_names(&HistoryEventKind::ALL);
        assert_names(&[
            ExecutionStatus::Running,
            ExecutionStatus::Succeeded,
            ExecutionStatus::Failed,
        ]);
        assert_eq!(
            "Running".parse::<ExecutionStatus>().unwrap_err(),
            r#"unknown execution status "Running""#
        );
        assert_eq!(
            "".parse::<HistoryEventKind>().unwrap_err(),
            r#"unknown history event kind """#
        );
    }
}
