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

use crate::clock::SystemClock;
use crate::config::Config;
use crate::http::{AppState, router};
use crate::identity::IdentityError;
use orders_aws::dynamodb::DynamoStore;
use orders_aws::functions::{self, PAYMENT_WEBHOOK_SECRET_ENV};
use orders_aws::tables::{MissingTable, TableNames};
use orders_domain::standard_webhooks::WebhookSecret;
use std::sync::Arc;

pub use orders_aws::lambda::in_lambda;

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error(transparent)]
    Config(#[from] MissingTable),
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
) -> Result<AppState, IdentityError> {
    let mut settings = config.api_settings();
    settings.identity = config.identity.lambda()?;
    settings.payment_webhook_secret = Some(webhook_secret);
    Ok(AppState {
        store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), tables)),
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

/// The API function's own configuration: its tables and the webhook secret.
fn api_env() -> Result<(TableNames, WebhookSecret), LambdaError> {
    let tables = TableNames::from_env(functions::API.tables)?;
    let secret = webhook_secret_from(std::env::var(PAYMENT_WEBHOOK_SECRET_ENV).ok().as_deref())?;
    Ok((tables, secret))
}

/// The function's main: configuration (tables, webhook secret, identity), the DynamoDB
/// client, then the runtime loop.
pub async fn run(config: Config) -> Result<(), LambdaError> {
    let ((tables, secret), sdk) = orders_aws::lambda::start(api_env).await?;
    let state = state(&config, &sdk, tables, secret).inspect_err(|e| {
        tracing::error!(error = %e, "refusing to start: bad configuration");
    })?;
    lambda_http::run(router(state))
        .await
        .map_err(LambdaError::Runtime)
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
}
