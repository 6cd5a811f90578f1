//! The JSON the executions routes answer: camelCase, times as RFC 3339 UTC with milliseconds,
//! every documented field present (null where it has no value) so a reader needs no guards.

use orders_domain::time::format_millis as format_ts;
use orders_workflow::executor::{ExecutionSnapshot, ExecutionStatus, HistoryEvent};
use serde::Serialize;

/// `POST /executions/{name}/redrive`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedriveAccepted {
    pub name: String,
    /// `RUNNING`: the execution carries on.
    #[schema(value_type = String)]
    pub status: ExecutionStatus,
}

/// `GET /executions`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExecutionList {
    pub executions: Vec<ExecutionSummary>,
}

/// One execution, without its history.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    pub name: String,
    /// `RUNNING`, `SUCCEEDED` or `FAILED`.
    #[schema(value_type = String)]
    pub status: ExecutionStatus,
    /// The state it runs or waits in; once finished, the last state it ran.
    pub state: String,
    /// Of a FAILED execution: the error it failed with (e.g. `CompensationFailed.ReleaseInventory`).
    pub error: Option<String>,
    pub cause: Option<String>,
    pub started_at: String,
    pub updated_at: String,
    /// How many times it was redriven.
    pub redrive_count: u32,
}

impl From<&ExecutionSnapshot> for ExecutionSummary {
    fn from(s: &ExecutionSnapshot) -> Self {
        ExecutionSummary {
            name: s.name.clone(),
            status: s.status,
            state: s.state.clone(),
            error: s.error.clone(),
            cause: s.cause.clone(),
            started_at: format_ts(s.started_at),
            updated_at: format_ts(s.updated_at),
            redrive_count: s.redrive_count,
        }
    }
}

/// `GET /executions/{name}`: the summary's fields and the history.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDetail {
    pub name: String,
    #[schema(value_type = String)]
    pub status: ExecutionStatus,
    pub state: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub started_at: String,
    pub updated_at: String,
    pub redrive_count: u32,
    pub history: Vec<HistoryView>,
}

impl ExecutionDetail {
    pub fn new(snapshot: &ExecutionSnapshot, history: &[HistoryEvent]) -> Self {
        let s = ExecutionSummary::from(snapshot);
        ExecutionDetail {
            name: s.name,
            status: s.status,
            state: s.state,
            error: s.error,
            cause: s.cause,
            started_at: s.started_at,
            updated_at: s.updated_at,
            redrive_count: s.redrive_count,
            history: history.iter().map(HistoryView::from).collect(),
        }
    }
}

/// One history event.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    /// From 1, without gaps.
    pub seq: u64,
    /// `ExecutionStarted`, `StateEntered`, `TaskScheduled`, `TaskSubmitted`, `TaskHeartbeat`,
    /// `TaskSucceeded`, `TaskFailed`, `TaskTimedOut`, `RetryScheduled`, `CaughtError`,
    /// `StateExited`, `ExecutionSucceeded`, `ExecutionFailed` or `ExecutionRedriven`.
    #[serde(rename = "type")]
    pub kind: String,
    pub state: Option<String>,
    pub timestamp: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// Of a task event, the 1-based attempt; of RetryScheduled, the attempt it schedules.
    pub attempt: Option<u32>,
    /// Of the end of a task attempt: how long it took.
    pub duration_ms: Option<u64>,
    /// Of RetryScheduled: the wait before that attempt.
    pub delay_ms: Option<u64>,
}

impl From<&HistoryEvent> for HistoryView {
    fn from(e: &HistoryEvent) -> Self {
        HistoryView {
            seq: e.seq,
            kind: e.kind.to_string(),
            state: e.state.clone(),
            timestamp: format_ts(e.timestamp),
            error: e.error.clone(),
            cause: e.cause.clone(),
            attempt: e.attempt,
            duration_ms: e.duration_ms,
            delay_ms: e.delay_ms,
        }
    }
}

/// `name` as one path segment: unreserved characters as they are, every other byte
/// percent-encoded, so a `Location` names the same execution the route was called with.
pub fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn a_name_is_one_path_segment() {
        assert_eq!(
            path_segment("8c7e-4a_b.c~d"),
            "8c7e-4a_b.c~d",
            "unreserved characters stay"
        );
        assert_eq!(path_segment("a/b c%é"), "a%2Fb%20c%25%C3%A9");
    }
}
