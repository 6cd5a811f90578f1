//! Finding the task token an execution waits on, for a cancellation: Step Functions has no
//! "current token" call, so the token is read back from the execution's history.
//!
//! The history is read newest first; the latest `TaskScheduled` whose task has not ended yet
//! (no `TaskSucceeded`/`TaskFailed`/`TaskTimedOut`/`TaskAborted`/`TaskSubmitFailed`/
//! `TaskStartFailed` after it) is the open task, and its parameters carry the token where the
//! definition put it: `Payload.taskToken` for the Lambda callback (RequestPayment),
//! `MessageBody.taskToken` for the SQS one (PrepareShipment). Step Functions renders the SQS
//! `MessageBody` as a JSON object, or as a string when the definition wrote one; both are read.
//! An execution that has ended, or waits in no callback Task, has no token: the cancellation
//! then rests on the steps' cancel guard.

use serde_json::Value;

/// How a history event matters to the search, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryMark {
    /// A task was scheduled with these parameters (the JSON text of `TaskScheduled`).
    Scheduled { parameters: String },
    /// A task ended (succeeded, failed, timed out, aborted, could not start or submit).
    TaskEnded,
    /// The execution itself ended: nothing waits any more.
    ExecutionEnded,
    /// Anything else.
    Other,
}

/// The token of the open callback task, from the history marks newest first.
pub fn open_task_token(newest_first: impl IntoIterator<Item = HistoryMark>) -> Option<String> {
    // Tasks of one execution run one at a time here (no Parallel or Map in the saga), so an
    // ended task seen before (i.e. after, in time) a scheduled one closes it.
    let mut ended_after = 0usize;
    for mark in newest_first {
        match mark {
            HistoryMark::ExecutionEnded => return None,
            HistoryMark::TaskEnded => ended_after += 1,
            HistoryMark::Scheduled { parameters } => {
                if ended_after > 0 {
                    return None;
                }
                return token_in(&parameters);
            }
            HistoryMark::Other => {}
        }
    }
    None
}

/// The task token in a Task's rendered parameters, if it is a callback Task of the saga.
pub fn token_in(parameters: &str) -> Option<String> {
    let parameters: Value = serde_json::from_str(parameters).ok()?;
    for field in ["Payload", "MessageBody"] {
        let Some(body) = parameters.get(field) else {
            continue;
        };
        let body = match body {
            Value::String(text) => serde_json::from_str(text).ok()?,
            other => other.clone(),
        };
        if let Some(token) = body.get("taskToken").and_then(Value::as_str)
            && !token.is_empty()
        {
            return Some(token.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scheduled(parameters: Value) -> HistoryMark {
        HistoryMark::Scheduled {
            parameters: parameters.to_string(),
        }
    }

    /// The parameters as AWS documents them in `TaskScheduledEventDetails` (a JSON string of
    /// the resolved Parameters) for the two callback Tasks.
    fn payment() -> Value {
        json!({"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:orders-steps",
               "Payload": {"step": "RequestPayment", "input": {"orderId": "o"}, "taskToken": "tok-pay"}})
    }

    fn shipment() -> Value {
        json!({"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/orders-warehouse",
               "MessageBody": {"orderId": "o", "items": [], "taskToken": "tok-ship"}})
    }

    #[test]
    fn the_open_callback_task_gives_its_token() {
        let marks = vec![HistoryMark::Other, scheduled(payment()), HistoryMark::Other];
        assert_eq!(open_task_token(marks), Some("tok-pay".into()));
        let marks = vec![
            HistoryMark::Other,
            scheduled(shipment()),
            HistoryMark::TaskEnded,
            scheduled(payment()),
        ];
        assert_eq!(open_task_token(marks), Some("tok-ship".into()));
    }

    #[test]
    fn a_message_body_written_as_a_string_is_read_too() {
        let body =
            json!({"QueueUrl": "q", "MessageBody": json!({"taskToken": "tok-s"}).to_string()});
        assert_eq!(token_in(&body.to_string()), Some("tok-s".into()));
    }

    #[test]
    fn an_ended_task_or_execution_or_a_plain_task_has_no_token() {
        let ended = vec![HistoryMark::TaskEnded, scheduled(payment())];
        assert_eq!(open_task_token(ended), None);
        let finished = vec![HistoryMark::ExecutionEnded, scheduled(payment())];
        assert_eq!(open_task_token(finished), None);
        let plain = vec![scheduled(
            json!({"FunctionName": "f", "Payload": {"step": "MarkShipped"}}),
        )];
        assert_eq!(open_task_token(plain), None);
        assert_eq!(open_task_token(Vec::new()), None);
        assert_eq!(token_in("not json"), None);
    }
}
