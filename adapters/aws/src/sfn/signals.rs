//! Step Functions as the outbox signals' deliverer on AWS: a stored webhook result or cancel
//! request reaches the waiting execution through the task-token calls.
//!
//! `Succeed` is `SendTaskSuccess`, `Fail` is `SendTaskFailure`. `CancelWaiting` names an
//! execution, not a token: the token of the task it waits in is read from its history
//! ([`super::waiting`]) and failed with `OrderCancelled`. Invariants: an answer that says the
//! task is gone (used, timed out, never existed, the execution not started or ended) is final
//! and counts as delivered, since nothing is left to resume and the steps' cancel guard covers
//! a cancellation that found no waiting task; a request Step Functions refuses as such would be
//! refused again and is reported as poison; anything else is retryable, reported for another
//! delivery, never swallowed.
//!
//! Needs `states:SendTaskSuccess` and `states:SendTaskFailure` (tokens of service-integration
//! tasks cannot be scoped by IAM: on `*`) and `states:GetExecutionHistory` on the saga's
//! executions.

use super::TaskTokens;
use super::tokens::TokenError;
use super::waiting::{HistoryMark, open_task_token};
use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use orders_domain::lifecycle::{ORDER_CANCELLED, TaskSignal};
use orders_processor::{Delivered, SignalError, TaskSignaller};

/// How many history events one page asks for (newest first; the open task is near the top).
const HISTORY_PAGE: i32 = 100;

/// What a token call's refusal means for the signal: a task that is gone is stale; a request
/// refused as such is still an error (it reaches the on-failure queue after the bounded
/// retries, never dropped unseen); the rest is worth retrying.
fn settle(e: TokenError) -> Result<Delivered, SignalError> {
    match e {
        TokenError::Closed | TokenError::Unknown => Ok(Delivered::Stale(e.to_string())),
        TokenError::Rejected(_) | TokenError::Retryable(_) => Err(SignalError(e.to_string())),
    }
}

/// Delivers [`TaskSignal`]s to the saga's executions.
#[derive(Debug, Clone)]
pub struct StepFunctionsSignaller {
    tokens: TaskTokens,
    client: Client,
    state_machine_arn: String,
}

impl StepFunctionsSignaller {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        StepFunctionsSignaller {
            tokens: TaskTokens::new(client.clone()),
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// The execution's ARN from its name: the state machine's ARN with `execution` for
    /// `stateMachine`, and the name appended.
    pub fn execution_arn(&self, name: &str) -> String {
        let machine = self
            .state_machine_arn
            .replacen(":stateMachine:", ":execution:", 1);
        format!("{machine}:{name}")
    }

    /// The token of the task the execution waits in, if any.
    async fn waiting_token(&self, execution: &str) -> Result<Option<String>, SignalError> {
        let arn = self.execution_arn(execution);
        let mut marks: Vec<(i64, HistoryMark)> = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .get_execution_history()
                .execution_arn(&arn)
                .reverse_order(true)
                .include_execution_data(true)
                .max_results(HISTORY_PAGE)
                .set_next_token(next.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                // Not started yet (its order.created still on its way) or expired: its steps
                // will see the cancellation through the store.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_execution_does_not_exist()) =>
                {
                    return Ok(None);
                }
                Err(e) => {
                    let text = crate::sdk::describe(&e);
                    // A malformed ARN is refused for good, but reported all the same, so it
                    // reaches the on-failure queue instead of vanishing.
                    let malformed = e.as_service_error().is_some_and(|se| se.is_invalid_arn());
                    return Err(SignalError(if malformed {
                        format!("refused, will be refused again: {text}")
                    } else {
                        text
                    }));
                }
            };
            marks.extend(page.events().iter().map(|e| (e.id(), mark(e))));
            // Newest first by event id, whatever order the page came in (moto ignores
            // `reverseOrder`); with AWS's reverse paging the first page already decides.
            marks.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
            let newest_first = || marks.iter().map(|(_, m)| m.clone());
            if let Some(found) = decided(newest_first()) {
                return Ok(found.then(|| open_task_token(newest_first())).flatten());
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(None),
            }
        }
    }
}

#[async_trait]
impl TaskSignaller for StepFunctionsSignaller {
    async fn deliver(&self, signal: &TaskSignal) -> Result<Delivered, SignalError> {
        let sent = match signal {
            TaskSignal::Succeed { token, output } => self.tokens.succeed(token, output).await,
            TaskSignal::Fail {
                token,
                error,
                cause,
            } => self.tokens.fail(token, error, cause).await,
            TaskSignal::CancelWaiting { execution, reason } => {
                let Some(token) = self.waiting_token(execution).await? else {
                    return Ok(Delivered::Stale(
                        "the execution waits in no callback task".to_owned(),
                    ));
                };
                let cause = reason.as_deref().unwrap_or_default();
                self.tokens.fail(&token, ORDER_CANCELLED, cause).await
            }
        };
        match sent {
            Ok(()) => Ok(Delivered::Applied),
            Err(e) => settle(e),
        }
    }
}

/// Whether these marks settle the search: `Some(true)` when a scheduled task is among them
/// (read the token), `Some(false)` when an end comes first (nothing waits).
fn decided(mut newest_first: impl Iterator<Item = HistoryMark>) -> Option<bool> {
    newest_first.find_map(|m| match m {
        HistoryMark::Scheduled { .. } => Some(true),
        HistoryMark::TaskEnded | HistoryMark::ExecutionEnded => Some(false),
        HistoryMark::Other => None,
    })
}

fn mark(event: &HistoryEvent) -> HistoryMark {
    match event.r#type() {
        HistoryEventType::TaskScheduled => HistoryMark::Scheduled {
            parameters: event
                .task_scheduled_event_details()
                .map(|d| d.parameters().to_owned())
                .unwrap_or_default(),
        },
        HistoryEventType::TaskSucceeded
        | HistoryEventType::TaskFailed
        | HistoryEventType::TaskTimedOut
        | HistoryEventType::TaskStartFailed
        | HistoryEventType::TaskSubmitFailed => HistoryMark::TaskEnded,
        HistoryEventType::ExecutionSucceeded
        | HistoryEventType::ExecutionFailed
        | HistoryEventType::ExecutionAborted
        | HistoryEventType::ExecutionTimedOut => HistoryMark::ExecutionEnded,
        _ => HistoryMark::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_are_stale_rejected_or_retryable() {
        assert!(matches!(
            settle(TokenError::Closed),
            Ok(Delivered::Stale(_))
        ));
        assert!(matches!(
            settle(TokenError::Unknown),
            Ok(Delivered::Stale(_))
        ));
        assert!(settle(TokenError::Rejected("x".into())).is_err());
        assert!(settle(TokenError::Retryable("y".into())).is_err());
    }

    #[test]
    fn the_search_stops_at_the_newest_decisive_event() {
        let s = HistoryMark::Scheduled {
            parameters: String::new(),
        };
        let d = |marks: Vec<HistoryMark>| decided(marks.into_iter());
        assert_eq!(d(vec![HistoryMark::Other, s.clone()]), Some(true));
        assert_eq!(d(vec![HistoryMark::TaskEnded, s]), Some(false));
        assert_eq!(d(vec![HistoryMark::Other]), None);
    }
}
