//! The API as a Lambda: the same `Router` as the local stack, under `lambda_http`, on the
//! DynamoDB store, wired like every function of `orders_aws::lambda` (JSON logs,
//! configuration read and checked once, the SDK configuration, then the runtime loop).
//!
//! The table names come from the environment variables the API function's entry in
//! `orders_aws::functions` lists; a missing one stops the cold start with a message naming it,
//! rather than failing every request later; so does a missing or malformed payment webhook
//! secret (`ORDERS_PAYMENT_WEBHOOK_SECRET`, `whsec_...`): `POST /webhooks/payments` is served
//! here, outside the JWT authorizer, and its signature is all that authenticates it, so the
//! function never runs without one. The relay and the saga executor do not run here:
//! on AWS the outbox stream feeds the processor Lambda and Step Functions runs the saga.
//! `POST /executions/{name}/redrive` asks Step Functions (`RedriveExecution`) to redrive an
//! execution of the state machine `ORDERS_STATE_MACHINE_ARN` names (required and checked at
//! the cold start too); the execution reads are the embedded runtime's only.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::http::executions::{ExecutionRedrive, ExecutionsApi, ExecutionsError};
use crate::http::{AppState, router};
use crate::identity::IdentityError;
use async_trait::async_trait;
use orders_aws::dynamodb::DynamoStore;
use orders_aws::functions::{self, PAYMENT_WEBHOOK_SECRET_ENV};
use orders_aws::sfn::redrive::{RedriveError, StepFunctionsRedrive, executions_prefix};
use orders_aws::tables::{MissingTable, STATE_MACHINE_ARN_ENV, TableNames};
use orders_domain::standard_webhooks::WebhookSecret;
use std::sync::Arc;

pub use orders_aws::lambda::in_lambda;

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error(transparent)]
    Config(#[from] MissingTable),
    #[error("environment variable {STATE_MACHINE_ARN_ENV} is invalid: {0}")]
    StateMachineArn(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("environment variable {PAYMENT_WEBHOOK_SECRET_ENV} is invalid: {0}")]
    WebhookSecret(String),
    #[error("lambda runtime: {0}")]
    Runtime(lambda_http::Error),
}

/// The router over DynamoDB, as the Lambda serves it: callers are who API Gateway's JWT
/// authorizer says they are (`ORDERS_AUTH=jwt`), or nobody checks (`none`, only with
/// `ORDERS_ALLOW_UNAUTHENTICATED=true`).
pub fn state(
    config: &Config,
    sdk: &aws_config::SdkConfig,
    tables: TableNames,
    webhook_secret: WebhookSecret,
    state_machine_arn: &str,
) -> Result<AppState, LambdaError> {
    let mut settings = config.api_settings();
    settings.identity = config.identity.lambda()?;
    settings.payment_webhook_secret = Some(webhook_secret);
    let redrive = StepFunctionsRedrive::from_sdk(sdk, state_machine_arn)
        .map_err(LambdaError::StateMachineArn)?;
    settings.executions = Some(ExecutionsApi {
        redrive: Arc::new(StepFunctionsExecutions(redrive)),
        reads: None,
    });
    Ok(AppState {
        store: Arc::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), tables).with_outbox_retention(
                orders_aws::dynamodb::OutboxRetention::days(config.retention_days),
            ),
        ),
        clock: Arc::new(SystemClock),
        settings: Arc::new(settings),
    })
}

/// The webhook secret from its variable: required, a Standard Webhooks `whsec_...` secret.
pub fn webhook_secret_from(value: Option<&str>) -> Result<WebhookSecret, LambdaError> {
    let text = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            LambdaError::WebhookSecret("required: the payment provider's whsec_... secret".into())
        })?;
    WebhookSecret::parse(text).map_err(|e| LambdaError::WebhookSecret(e.to_string()))
}

/// The state machine ARN from its variable: required, `arn:...:stateMachine:<name>`.
pub fn state_machine_arn_from(value: Option<&str>) -> Result<String, LambdaError> {
    let value = value.map(str::trim).unwrap_or_default();
    executions_prefix(value).map_err(LambdaError::StateMachineArn)?;
    Ok(value.to_owned())
}

/// Step Functions as the API's redrive port: its errors as the API answers them (unknown 404,
/// not redrivable 409, throttled or out of reach 503, anything else 500).
pub struct StepFunctionsExecutions(pub StepFunctionsRedrive);

#[async_trait]
impl ExecutionRedrive for StepFunctionsExecutions {
    async fn redrive(&self, name: &str) -> Result<(), ExecutionsError> {
        self.0.redrive(name).await.map_err(|e| match e {
            RedriveError::DoesNotExist(name) => ExecutionsError::NotFound(name),
            e @ RedriveError::NotRedrivable { .. } => ExecutionsError::NotRedrivable(e.to_string()),
            e @ RedriveError::Unavailable(_) => ExecutionsError::Unavailable(e.to_string()),
            e @ RedriveError::Failed(_) => ExecutionsError::Failed(e.to_string()),
        })
    }
}

/// The API function's own configuration: its tables, the webhook secret and the state
/// machine whose executions it redrives.
fn api_env() -> Result<(TableNames, WebhookSecret, String), LambdaError> {
    let tables = TableNames::from_env(functions::API.tables)?;
    let secret = webhook_secret_from(std::env::var(PAYMENT_WEBHOOK_SECRET_ENV).ok().as_deref())?;
    let machine = state_machine_arn_from(std::env::var(STATE_MACHINE_ARN_ENV).ok().as_deref())?;
    Ok((tables, secret, machine))
}

/// The function's main: configuration (tables, webhook secret, state machine, identity), the
/// SDK clients, then the runtime loop.
pub async fn run(config: Config) -> Result<(), LambdaError> {
    let ((tables, secret, machine), sdk) = orders_aws::lambda::start(api_env).await?;
    let state = state(&config, &sdk, tables, secret, &machine).inspect_err(|e| {
        tracing::error!(error = %e, "refusing to start: bad configuration");
    })?;
    let app = router(state).layer(axum::middleware::from_fn(crate::telemetry::flush_after));
    lambda_http::run(app).await.map_err(LambdaError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_secret_is_required_and_checked() {
        for missing in [None, Some(""), Some("  ")] {
            let err = webhook_secret_from(missing).unwrap_err().to_string();
            assert!(err.contains(PAYMENT_WEBHOOK_SECRET_ENV), "{err}");
        }
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not*base64",
            "whsec_",
        ] {
            let err = webhook_secret_from(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(PAYMENT_WEBHOOK_SECRET_ENV), "{bad}: {err}");
        }
        let good = WebhookSecret::generate()
            .expect("random source")
            .to_string();
        assert!(webhook_secret_from(Some(&good)).is_ok());
    }

    #[test]
    fn the_state_machine_arn_is_required_and_checked() {
        for bad in [
            None,
            Some(""),
            Some("orders-saga"),
            Some("arn:aws:states:eu-west-1:1:execution:m:n"),
        ] {
            let err = state_machine_arn_from(bad).unwrap_err().to_string();
            assert!(err.contains(STATE_MACHINE_ARN_ENV), "{bad:?}: {err}");
        }
        let arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:orders-saga";
        assert_eq!(state_machine_arn_from(Some(arn)).unwrap(), arn);
    }
}
