//! The task-token calls of the callback pattern (`SendTaskSuccess`, `SendTaskFailure`,
//! `SendTaskHeartbeat`), for whatever resumes a Task waiting on `.waitForTaskToken`: the
//! stream processor delivering a stored webhook result or cancel signal, the warehouse worker.
//!
//! Invariants: an answer about the token itself is final and told apart from a failure of the
//! call. `TaskTimedOut` ([`TokenError::Closed`]: the task already completed or timed out) and
//! `TaskDoesNotExist` / `InvalidToken` ([`TokenError::Unknown`]) mean nothing is left to resume,
//! so a resumer acknowledges its record instead of retrying it forever; a request Step
//! Functions refuses as such ([`TokenError::Rejected`]) would be refused again; everything else
//! (throttling, service errors, the network) is [`TokenError::Retryable`]. The failure's error
//! and cause are cut to what the API accepts, on a character boundary, so an overlong message
//! cannot turn a failure report into a validation error.
//!
//! The callers need `states:SendTaskSuccess`, `states:SendTaskFailure` and
//! `states:SendTaskHeartbeat` on the state machine's executions.

use crate::sdk::describe;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError;
use aws_sdk_sfn::operation::send_task_heartbeat::SendTaskHeartbeatError;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;

/// `SendTaskFailure`'s limit on `error` (API reference: `SensitiveError`, at most 256).
pub const ERROR_LIMIT: usize = 256;
/// `SendTaskFailure`'s limit on `cause` (API reference: `SensitiveCause`, at most 32768).
pub const CAUSE_LIMIT: usize = 32_768;

/// Why a token call did not resume the task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `TaskTimedOut`: the task already completed, failed or timed out. Final.
    #[error("the task of this token is closed: it already completed or timed out")]
    Closed,
    /// `TaskDoesNotExist` or `InvalidToken`: no task answers to this token. Final.
    #[error("no task has this token")]
    Unknown,
    /// The request itself was refused (output not accepted, validation): sending it again
    /// would be refused again.
    #[error("the token call was refused: {0}")]
    Rejected(String),
    /// Throttling, a service error or the network: worth reporting for a retry.
    #[error("the token call failed: {0}")]
    Retryable(String),
}

impl TokenError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TokenError::Retryable(_))
    }
}

/// Resumes Tasks waiting for their token.
#[derive(Debug, Clone)]
pub struct TaskTokens {
    client: Client,
}

impl TaskTokens {
    pub fn new(client: Client) -> Self {
        TaskTokens { client }
    }

    /// Completes the task: `output` becomes the Task's result (then its `ResultSelector` /
    /// `ResultPath` apply).
    pub async fn succeed(&self, token: &str, output: &serde_json::Value) -> Result<(), TokenError> {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&e))
    }

    /// Fails the task with `error` (what a `Catch` or `Retry` matches on) and `cause`, each cut
    /// to the API's limit.
    pub async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), TokenError> {
        self.client
            .send_task_failure()
            .task_token(token)
            .error(truncate(error, ERROR_LIMIT))
            .cause(truncate(cause, CAUSE_LIMIT))
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&e))
    }

    /// Tells Step Functions the task is still being worked on, restarting its
    /// `HeartbeatSeconds` clock.
    pub async fn heartbeat(&self, token: &str) -> Result<(), TokenError> {
        self.client
            .send_task_heartbeat()
            .task_token(token)
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&e))
    }
}

/// What a modelled error of one of the three calls says about the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Closed,
    Unknown,
    Rejected,
    Other,
}

/// The typed errors the three calls share, read the same way.
trait TokenVerdict {
    fn verdict(&self) -> Verdict;
}

impl TokenVerdict for SendTaskSuccessError {
    fn verdict(&self) -> Verdict {
        if self.is_task_timed_out() {
            Verdict::Closed
        } else if self.is_task_does_not_exist() || self.is_invalid_token() {
            Verdict::Unknown
        } else if self.is_invalid_output() {
            Verdict::Rejected
        } else {
            Verdict::Other
        }
    }
}

impl TokenVerdict for SendTaskFailureError {
    fn verdict(&self) -> Verdict {
        if self.is_task_timed_out() {
            Verdict::Closed
        } else if self.is_task_does_not_exist() || self.is_invalid_token() {
            Verdict::Unknown
        } else {
            Verdict::Other
        }
    }
}

impl TokenVerdict for SendTaskHeartbeatError {
    fn verdict(&self) -> Verdict {
        if self.is_task_timed_out() {
            Verdict::Closed
        } else if self.is_task_does_not_exist() || self.is_invalid_token() {
            Verdict::Unknown
        } else {
            Verdict::Other
        }
    }
}

/// Not modelled for these calls, but what Step Functions answers a request outside the API's
/// constraints with (an empty token, an overlong one).
const VALIDATION: &str = "ValidationException";

fn classify<E, R>(err: &SdkError<E, R>) -> TokenError
where
    E: TokenVerdict + ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(se) => match se.err().verdict() {
            Verdict::Closed => TokenError::Closed,
            Verdict::Unknown => TokenError::Unknown,
            Verdict::Rejected => TokenError::Rejected(describe(err)),
            Verdict::Other if se.err().code() == Some(VALIDATION) => {
                TokenError::Rejected(describe(err))
            }
            Verdict::Other => TokenError::Retryable(describe(err)),
        },
        // The SDK could not even build the request: it never will.
        SdkError::ConstructionFailure(_) => TokenError::Rejected(describe(err)),
        _ => TokenError::Retryable(describe(err)),
    }
}

/// At most `limit` bytes of `text`, cut on a character boundary. Counting bytes keeps the
/// result within the limit whichever unit the service counts in (code points, UTF-16 units),
/// since a character never takes fewer bytes than either.
pub(crate) fn truncate(text: &str, limit: usize) -> &str {
    &text[..text.floor_char_boundary(limit)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::error::ErrorMetadata;
    use aws_sdk_sfn::types::error::{
        InvalidOutput, InvalidToken, KmsThrottlingException, TaskDoesNotExist, TaskTimedOut,
    };

    fn service<E>(e: E) -> SdkError<E, ()> {
        SdkError::service_error(e, ())
    }

    fn unmodelled(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder()
            .code(code)
            .message("from the service")
            .build()
    }

    #[test]
    fn a_timed_out_task_is_closed_for_every_call() {
        let timed_out = || TaskTimedOut::builder().message("closed").build();
        assert_eq!(
            classify(&service(SendTaskSuccessError::TaskTimedOut(timed_out()))),
            TokenError::Closed
        );
        assert_eq!(
            classify(&service(SendTaskFailureError::TaskTimedOut(timed_out()))),
            TokenError::Closed
        );
        assert_eq!(
            classify(&service(SendTaskHeartbeatError::TaskTimedOut(timed_out()))),
            TokenError::Closed
        );
    }

    #[test]
    fn a_token_no_task_has_is_unknown_for_every_call() {
        let invalid = || InvalidToken::builder().message("bad").build();
        let missing = || TaskDoesNotExist::builder().message("gone").build();
        for err in [
            classify(&service(SendTaskSuccessError::InvalidToken(invalid()))),
            classify(&service(SendTaskSuccessError::TaskDoesNotExist(missing()))),
            classify(&service(SendTaskFailureError::InvalidToken(invalid()))),
            classify(&service(SendTaskFailureError::TaskDoesNotExist(missing()))),
            classify(&service(SendTaskHeartbeatError::InvalidToken(invalid()))),
            classify(&service(
                SendTaskHeartbeatError::TaskDoesNotExist(missing()),
            )),
        ] {
            assert_eq!(err, TokenError::Unknown);
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn a_request_the_service_refuses_as_such_is_rejected() {
        // As deserialized: the code and message in the metadata `describe` reads.
        let output = SendTaskSuccessError::InvalidOutput(
            InvalidOutput::builder()
                .message("too big")
                .meta(
                    ErrorMetadata::builder()
                        .code("InvalidOutput")
                        .message("too big")
                        .build(),
                )
                .build(),
        );
        assert_eq!(
            classify(&service(output)),
            TokenError::Rejected("InvalidOutput: too big".into())
        );
        let validation = SendTaskHeartbeatError::generic(unmodelled(VALIDATION));
        assert!(matches!(
            classify(&service(validation)),
            TokenError::Rejected(m) if m.starts_with("ValidationException: ")
        ));
        let unbuilt = SdkError::<SendTaskFailureError, ()>::construction_failure("no token");
        assert!(matches!(classify(&unbuilt), TokenError::Rejected(_)));
    }

    #[test]
    fn throttling_service_errors_and_the_network_are_retryable() {
        let throttled = SendTaskSuccessError::generic(unmodelled("ThrottlingException"));
        let err = classify(&service(throttled));
        assert_eq!(
            err,
            TokenError::Retryable("ThrottlingException: from the service".into())
        );
        assert!(err.is_retryable());
        let kms = SendTaskFailureError::KmsThrottlingException(
            KmsThrottlingException::builder().message("kms").build(),
        );
        assert!(classify(&service(kms)).is_retryable());
        let internal = SendTaskHeartbeatError::generic(unmodelled("InternalFailure"));
        assert!(classify(&service(internal)).is_retryable());
        let slow = SdkError::<SendTaskSuccessError, ()>::timeout_error("no answer in time");
        assert!(matches!(classify(&slow), TokenError::Retryable(m) if m.contains("no answer")));
    }

    #[test]
    fn truncation_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(
            truncate("Payment.Declined", ERROR_LIMIT),
            "Payment.Declined"
        );
        let exact = "e".repeat(ERROR_LIMIT);
        assert_eq!(truncate(&exact, ERROR_LIMIT), exact);
        assert_eq!(truncate(&"e".repeat(ERROR_LIMIT + 1), ERROR_LIMIT), exact);
        // 'é' is two bytes: an odd limit falls inside one, which must not be split.
        let accents = "é".repeat(200);
        let cut = truncate(&accents, ERROR_LIMIT - 1);
        assert_eq!(cut, "é".repeat(127));
        // Four bytes each, and two UTF-16 units: within the limit counted either way.
        let emoji = "🦀".repeat(10_000);
        let cut = truncate(&emoji, CAUSE_LIMIT);
        assert_eq!(cut.len(), CAUSE_LIMIT);
        assert!(cut.encode_utf16().count() <= CAUSE_LIMIT);
        assert_eq!(truncate(&"🦀".repeat(3), 5), "🦀");
    }
}
