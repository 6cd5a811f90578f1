//! `RedriveExecution` of a saga execution, by name, for the API's
//! `POST /executions/{name}/redrive` on AWS.
//!
//! The execution's ARN is derived from the state machine's (`ORDERS_STATE_MACHINE_ARN`, the
//! same variable the processor reads): `arn:<partition>:states:<region>:<account>:execution:
//! <machine name>:<name>`, which is also the only resource the API's role may redrive. A name
//! that cannot be part of such an ARN (empty, over 80 characters, a `:` or whitespace) names
//! no execution, so it is answered as unknown without a call. Step Functions decides the rest:
//! `ExecutionDoesNotExist`, `ExecutionNotRedrivable` (not FAILED, TIMED_OUT or ABORTED, past
//! its redrivable period, or redriven meanwhile), throttling and its own faults, which are
//! told apart so the API answers 404, 409 and 503 (or 500).

use crate::sdk::{describe, is_retryable};
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::SdkError;
use aws_sdk_sfn::operation::redrive_execution::RedriveExecutionError;

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("execution {0} does not exist")]
    DoesNotExist(String),
    #[error("execution {name} cannot be redriven: {message}")]
    NotRedrivable { name: String, message: String },
    /// Throttled, the running-executions limit, or Step Functions out of reach: retry later.
    #[error("Step Functions is unavailable: {0}")]
    Unavailable(String),
    #[error("Step Functions: {0}")]
    Failed(String),
}

/// Redrives executions of one state machine.
#[derive(Debug, Clone)]
pub struct StepFunctionsRedrive {
    client: Client,
    /// `arn:...:execution:<machine name>`, to which `:<name>` is appended.
    executions: String,
}

/// The executions' ARN prefix of a state machine ARN, or why it is not one.
pub fn executions_prefix(state_machine_arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = state_machine_arn.split(':').collect();
    match parts.as_slice() {
        [
            "arn",
            partition,
            "states",
            region,
            account,
            "stateMachine",
            machine,
        ] if [partition, region, account, machine]
            .iter()
            .all(|p| !p.is_empty()) =>
        {
            Ok(format!(
                "arn:{partition}:states:{region}:{account}:execution:{machine}"
            ))
        }
        _ => Err(format!(
            "expected a state machine ARN, got {state_machine_arn:?}"
        )),
    }
}

fn names_an_execution(name: &str) -> bool {
    (1..=80).contains(&name.chars().count()) && !name.chars().any(|c| c == ':' || c.is_whitespace())
}

impl StepFunctionsRedrive {
    pub fn new(client: Client, state_machine_arn: &str) -> Result<Self, String> {
        Ok(StepFunctionsRedrive {
            client,
            executions: executions_prefix(state_machine_arn)?,
        })
    }

    /// A client from the SDK configuration (the Lambda's).
    pub fn from_sdk(sdk: &aws_config::SdkConfig, state_machine_arn: &str) -> Result<Self, String> {
        StepFunctionsRedrive::new(Client::new(sdk), state_machine_arn)
    }

    pub fn execution_arn(&self, name: &str) -> String {
        format!("{}:{name}", self.executions)
    }

    pub async fn redrive(&self, name: &str) -> Result<(), RedriveError> {
        if !names_an_execution(name) {
            return Err(RedriveError::DoesNotExist(name.to_owned()));
        }
        let sent = self
            .client
            .redrive_execution()
            .execution_arn(self.execution_arn(name))
            .send()
            .await;
        sent.map(|_| ()).map_err(|e| classify(name, &e))
    }
}

fn classify<R: std::fmt::Debug>(
    name: &str,
    e: &SdkError<RedriveExecutionError, R>,
) -> RedriveError {
    let text = describe(e);
    match e.as_service_error() {
        Some(RedriveExecutionError::ExecutionDoesNotExist(_)) => {
            RedriveError::DoesNotExist(name.to_owned())
        }
        Some(RedriveExecutionError::ExecutionNotRedrivable(se)) => RedriveError::NotRedrivable {
            name: name.to_owned(),
            message: se.message().unwrap_or("not redrivable").to_owned(),
        },
        Some(RedriveExecutionError::ExecutionLimitExceeded(_)) => RedriveError::Unavailable(text),
        _ if is_retryable(e) => RedriveError::Unavailable(text),
        _ => RedriveError::Failed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_execution_arn_is_derived_from_the_machine_arn() {
        let arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:orders-saga";
        assert_eq!(
            executions_prefix(arn).unwrap(),
            "arn:aws:states:eu-west-1:123456789012:execution:orders-saga"
        );
        for bad in [
            "",
            "arn:aws:states:eu-west-1:123456789012:activity:x",
            "arn:aws:states::123456789012:stateMachine:x",
            "arn:aws:states:eu-west-1:123456789012:stateMachine:x:extra",
        ] {
            assert!(executions_prefix(bad).is_err(), "{bad}");
        }
        assert!(names_an_execution("3f0c1f4e-1d2b-4c4e-9a55-5d6a1c0e7b21"));
        for bad in ["", "a:b", "a b", &"x".repeat(81)] {
            assert!(!names_an_execution(bad), "{bad}");
        }
    }
}
