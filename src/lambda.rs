//! The API as a Lambda: the same `Router` as the local stack, under `lambda_http`, on the
//! DynamoDB store, wired like every function of `orders_aws::lambda` (JSON logs,
//! configuration read and checked once, the SDK configuration, then the runtime loop).
//!
//! The table names come from the environment variables the API function's entry in
//! `orders_aws::functions` lists; a missing one stops the cold start with a message naming it,
//! rather than failing every request later. The relay and the saga executor do not run here:
//! on AWS the outbox stream feeds the processor Lambda and Step Functions runs the saga.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::http::{AppState, router};
use crate::identity::IdentityError;
use orders_aws::dynamodb::DynamoStore;
use orders_aws::functions;
use orders_aws::tables::{MissingTable, TableNames};
use std::sync::Arc;

pub use orders_aws::lambda::in_lambda;

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error(transparent)]
    Config(#[from] MissingTable),
    #[error(transparent)]
    Identity(#[from] IdentityError),
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
) -> Result<AppState, IdentityError> {
    let mut settings = config.api_settings();
    settings.identity = config.identity.lambda()?;
    Ok(AppState {
        store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), tables)),
        clock: Arc::new(SystemClock),
        settings: Arc::new(settings),
    })
}

/// The function's main: configuration (tables, identity), the DynamoDB client, then the
/// runtime loop.
pub async fn run(config: Config) -> Result<(), LambdaError> {
    let (tables, sdk) =
        orders_aws::lambda::start(|| TableNames::from_env(functions::API.tables)).await?;
    let state = state(&config, &sdk, tables).inspect_err(|e| {
        tracing::error!(error = %e, "refusing to start: bad configuration");
    })?;
    lambda_http::run(router(state))
        .await
        .map_err(LambdaError::Runtime)
}
