//! SDK configuration and error description shared by every AWS adapter.
//!
//! Configuration comes from the standard AWS environment (region, credentials, and
//! `AWS_ENDPOINT_URL`, which is how the tests point every client at the emulator), loaded once
//! at start. Errors are described with their service code and message, because the SDK's own
//! `Display` for a service error is just "service error".

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// The SDK configuration from the environment.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// `Code: message` for a service error, the transport failure otherwise.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("UnknownError"),
                e.message().unwrap_or("no message")
            )
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// Whether a failed call is worth repeating: throttling, conflicts, timeouts, 5xx and
/// transport failures are; validation and condition failures are not.
pub fn is_retryable<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => matches!(
            se.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "TransactionConflictException"
                    | "TransactionInProgressException"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            )
        ),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    }
}

/// What a write guarded by a condition came to: `Some` when it was made, `None` when its own
/// condition refused it (what it guards against was already there). Any other failure is
/// returned as it came.
pub fn conditional<T, E, R>(sent: Result<T, SdkError<E, R>>) -> Result<Option<T>, SdkError<E, R>>
where
    E: ProvideErrorMetadata,
{
    match sent {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error().and_then(ProvideErrorMetadata::code)
                == Some(CONDITION_FAILED) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
