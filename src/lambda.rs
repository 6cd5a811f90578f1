//! The API as a Lambda: the same `Router` as the local stack, under `lambda_http`, on the
//! DynamoDB store. Chosen at start by `AWS_LAMBDA_RUNTIME_API`, which only the Lambda
//! environment sets (and without which `lambda_http` cannot run at all).
//!
//! Configuration is read once, before the first request: the table names come from the
//! environment variables the API function's entry in `orders_aws::functions` lists, and a
//! missing one stops the cold start with a message naming it, rather than failing every
//! request later. The relay and the saga executor do not run here: on AWS the outbox stream
//! feeds the processor Lambda and Step Functions runs the saga.

use crate::clock::SystemClock;
use crate::config::Config;
use crate::http::{AppState, router};
use crate::store::dynamodb::DynamoStore;
use orders_aws::functions;
use orders_aws::tables::TableNames;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error(transparent)]
    Config(#[from] orders_aws::tables::MissingTable),
    #[error("lambda runtime: {0}")]
    Runtime(lambda_http::Error),
}

/// Whether this process runs inside AWS Lambda.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// The router over DynamoDB, as the Lambda serves it.
pub async fn state(config: &Config) -> Result<AppState, LambdaError> {
    let names = TableNames::from_env(functions::API.tables)?;
    let sdk = orders_aws::load_sdk_config().await;
    Ok(AppState {
        store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), names)),
        clock: Arc::new(SystemClock),
        settings: Arc::new(config.api_settings()),
    })
}

pub async fn run(config: Config) -> Result<(), LambdaError> {
    let state = state(&config).await?;
    tracing::info!("orders API starting under lambda_http");
    lambda_http::run(router(state))
        .await
        .map_err(LambdaError::Runtime)
}
