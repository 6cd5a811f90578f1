//! Step Functions as the [`SagaStarter`] of the AWS runtime.
//!
//! The execution name is the outbox event id, which Step Functions keeps unique per state
//! machine (for 90 days after an execution ends), so a redelivered event cannot start a second
//! saga: `ExecutionAlreadyExists` is the duplicate being recognised and counts as success.
//! Every other failure is returned, never swallowed, so the stream handler reports the record.
//!
//! [`tokens`] holds the other direction: the task-token calls that resume a Task waiting on
//! `.waitForTaskToken`; [`signals`] delivers the outbox's task signals with them, finding a
//! cancelled execution's open task in its history ([`waiting`]). [`redrive`] redrives a
//! failed execution for the API.

pub mod redrive;
pub mod signals;
pub mod tokens;
pub mod waiting;

pub use signals::StepFunctionsSignaller;
pub use tokens::{TaskTokens, TokenError};

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use orders_domain::SagaInput;
use orders_processor::{SagaStarter, StartError, Started};

pub struct StepFunctionsStarter {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctionsStarter {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        StepFunctionsStarter {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }
}

#[async_trait]
impl SagaStarter for StepFunctionsStarter {
    async fn start(&self, name: &str, input: &SagaInput) -> Result<Started, StartError> {
        let input = serde_json::to_string(input).map_err(|e| StartError(e.to_string()))?;
        let sent = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Started::New),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_execution_already_exists()) =>
            {
                Ok(Started::AlreadyExists)
            }
            Err(e) => Err(StartError(crate::sdk::describe(&e))),
        }
    }
}
