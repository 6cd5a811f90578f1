//! The step Lambda: every Task state of the state machine invokes this one function with
//! `{"step": <name>, "input": <saga state>}`, and it runs that step over the DynamoDB saga
//! store, the same handler code the local executor runs.
//!
//! A failed step must reach Step Functions under its own error name, because the state
//! machine's Retry and Catch match on it (`Transient` is retried, `OutOfStock` and
//! `PaymentDeclined` go straight to compensation). The runtime reports a handler error as
//! `{errorType, errorMessage}`; [`diagnostic`] sets `errorType` to [`StepError::name`].
//! Configuration is read and checked once at start: a cold start with a missing table or a
//! fault-injection rate outside 0-1 fails with a message naming the variable, not later on
//! the first order.

use super::LambdaEnvError;
use crate::dynamodb::DynamoStepStore;
use crate::functions;
use crate::tables::TableNames;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use orders_workflow::steps::{
    NOTIFICATION_FAILURE_RATE_ENV, PAYMENT_TRANSIENT_RATE_ENV, StepError, StepSettings, Steps,
    parse_rate,
};
use serde_json::Value;
use std::sync::Arc;

/// What the function needs from its environment.
#[derive(Debug, Clone)]
pub struct StepsConfig {
    pub tables: TableNames,
    pub settings: StepSettings,
}

impl StepsConfig {
    pub fn from_env() -> Result<Self, LambdaEnvError> {
        let tables = TableNames::from_env(functions::STEPS.tables)?;
        let rate = |name| rate_from(name, std::env::var(name).ok().as_deref());
        Ok(StepsConfig {
            tables,
            settings: StepSettings {
                payment_transient_rate: rate(PAYMENT_TRANSIENT_RATE_ENV)?,
                notification_failure_rate: rate(NOTIFICATION_FAILURE_RATE_ENV)?,
            },
        })
    }
}

/// A rate from its variable: unset or blank is 0 (no injected faults), anything else as
/// [`parse_rate`] reads it.
pub fn rate_from(name: &'static str, value: Option<&str>) -> Result<f64, LambdaEnvError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(0.0),
        Some(text) => parse_rate(text).map_err(|reason| LambdaEnvError::Invalid { name, reason }),
    }
}

/// A step failure as Step Functions must see it.
pub fn diagnostic(e: StepError) -> Diagnostic {
    Diagnostic {
        error_type: e.name().to_owned(),
        error_message: e.to_string(),
    }
}

/// One invocation: the Task input in, the step's result (or its named error) out.
pub async fn handle(steps: &Steps, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    steps.invoke(event.payload).await.map_err(diagnostic)
}

/// The function's main: configuration (tables, fault rates), the DynamoDB client, then the
/// runtime loop.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    let (config, sdk) = super::start(StepsConfig::from_env).await?;
    let store = DynamoStepStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables);
    let steps = Arc::new(Steps {
        store: Arc::new(store),
        settings: config.settings,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let steps = steps.clone();
        async move { handle(&steps, event).await }
    }))
    .await
}

#[cfg(test)]
mod tests;
