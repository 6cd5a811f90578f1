//! The step Lambda: every Task state of the state machine invokes this one function with
//! `{"step": <name>, "input": <saga state>}`, and it runs that step over the DynamoDB saga
//! store, the same handler code the local executor runs. RequestPayment is a
//! `.waitForTaskToken` Task: its payload adds `taskToken`, and it runs as
//! `orders_workflow::steps::payment::RequestPayment` (the step records the payment with the
//! token, then the provider at `ORDERS_PAYMENT_PROVIDER_URL` is asked to charge); the task
//! ends later, when the provider's webhook signal arrives by that token.
//!
//! A failed step must reach Step Functions under its own error name, because the state
//! machine's Retry and Catch match on it (`Transient` is retried, `OutOfStock` and
//! `PaymentDeclined` go straight to compensation). The runtime reports a handler error as
//! `{errorType, errorMessage}`; [`diagnostic`] sets `errorType` to [`StepError::name`].
//! Configuration is read and checked once at start: a cold start with a missing table, a
//! fault-injection rate outside 0-1 or no usable provider URL fails with a message naming
//! the variable, not later on the first order.

use super::LambdaEnvError;
use crate::dynamodb::{DynamoStepStore, OutboxRetention};
use crate::functions::{self, PAYMENT_PROVIDER_KEY_ENV, PAYMENT_PROVIDER_URL_ENV};
use crate::tables::TableNames;
use async_trait::async_trait;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use orders_workflow::executor::{TaskContext, TaskError, TaskHandler};
use orders_workflow::steps::payment::http::{HttpProvider, ProviderKey};
use orders_workflow::steps::payment::{PaymentProvider, RequestPayment};
use orders_workflow::steps::{
    NOTIFICATION_FAILURE_RATE_ENV, PAYMENT_TRANSIENT_RATE_ENV, Step, StepError, StepSettings,
    Steps, parse_rate,
};
use serde_json::Value;
use std::sync::Arc;

/// What the function needs from its environment.
#[derive(Debug, Clone)]
pub struct StepsConfig {
    pub tables: TableNames,
    pub settings: StepSettings,
    /// The payment provider's base URL (`POST {base}/charges`).
    pub provider_url: reqwest::Url,
    /// Its secret API key, sent as a bearer token when set.
    pub provider_key: Option<ProviderKey>,
    /// When the outbox items of its public events expire (`ORDERS_RETENTION_DAYS`).
    pub outbox_retention: OutboxRetention,
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
            provider_url: provider_url_from(
                std::env::var(PAYMENT_PROVIDER_URL_ENV).ok().as_deref(),
            )?,
            provider_key: provider_key_from(
                std::env::var(PAYMENT_PROVIDER_KEY_ENV).ok().as_deref(),
            )?,
            outbox_retention: OutboxRetention::from_env_value(
                std::env::var(functions::RETENTION_DAYS_ENV).ok().as_deref(),
            )
            .map_err(|reason| LambdaEnvError::Invalid {
                name: functions::RETENTION_DAYS_ENV,
                reason,
            })?,
        })
    }
}

/// The provider's base URL from its variable: required, absolute `http(s)`. A base without a
/// trailing slash gets one, so `charges` is joined below it rather than replacing its last
/// segment.
pub fn provider_url_from(value: Option<&str>) -> Result<reqwest::Url, LambdaEnvError> {
    let name = PAYMENT_PROVIDER_URL_ENV;
    let invalid = |reason: String| LambdaEnvError::Invalid { name, reason };
    let text = value.map(str::trim).filter(|v| !v.is_empty());
    let text = text.ok_or_else(|| invalid("required: the payment provider's base URL".into()))?;
    let mut url = reqwest::Url::parse(text).map_err(|e| invalid(format!("{text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(format!("{text:?} is not an http(s) URL")));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The provider's key from its variable: optional (a provider may need none), and a key
/// that is set must be one.
pub fn provider_key_from(value: Option<&str>) -> Result<Option<ProviderKey>, LambdaEnvError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => {
            ProviderKey::parse(text)
                .map(Some)
                .map_err(|reason| LambdaEnvError::Invalid {
                    name: PAYMENT_PROVIDER_KEY_ENV,
                    reason,
                })
        }
    }
}

/// The step handlers as a `TaskHandler`, which `RequestPayment` wraps.
struct StepHandlers(Arc<Steps>);

#[async_trait]
impl TaskHandler for StepHandlers {
    async fn invoke(&self, input: Value, _ctx: &TaskContext) -> Result<Value, TaskError> {
        self.0.invoke(input).await.map_err(TaskError::from)
    }
}

/// What the function runs: every step, RequestPayment through the provider.
pub struct StepsFunction {
    steps: Arc<Steps>,
    request_payment: RequestPayment,
}

impl StepsFunction {
    pub fn new(steps: Arc<Steps>, provider: Arc<dyn PaymentProvider>) -> Self {
        let handlers: Arc<dyn TaskHandler> = Arc::new(StepHandlers(steps.clone()));
        StepsFunction {
            steps,
            request_payment: RequestPayment {
                steps: handlers,
                provider,
            },
        }
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

/// A failed `TaskHandler` as Step Functions must see it: its error name as `errorType`.
fn task_diagnostic(e: TaskError) -> Diagnostic {
    Diagnostic {
        error_type: e.error,
        error_message: e.cause,
    }
}

/// One invocation: the Task input in, the step's result (or its named error) out. For
/// RequestPayment the result is only the invocation's: the Task waits for its token.
pub async fn handle(
    function: &StepsFunction,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let step = Step::RequestPayment.name();
    if event.payload.get("step").and_then(Value::as_str) == Some(step) {
        let ctx = TaskContext {
            execution: event.context.request_id.clone(),
            state: step.to_owned(),
            attempt: 1,
        };
        return function
            .request_payment
            .invoke(event.payload, &ctx)
            .await
            .map_err(task_diagnostic);
    }
    function
        .steps
        .invoke(event.payload)
        .await
        .map_err(diagnostic)
}

/// The function's main: configuration (tables, fault rates, the provider), the DynamoDB
/// client, then the runtime loop.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    let (config, sdk) = super::start(StepsConfig::from_env).await?;
    let store = DynamoStepStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables)
        .with_outbox_retention(config.outbox_retention);
    let steps = Arc::new(Steps {
        store: Arc::new(store),
        settings: config.settings,
    });
    let provider =
        HttpProvider::new(&config.provider_url, config.provider_key).map_err(|reason| {
            LambdaEnvError::Invalid {
                name: PAYMENT_PROVIDER_URL_ENV,
                reason,
            }
        })?;
    let function = Arc::new(StepsFunction::new(steps, Arc::new(provider)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = function.clone();
        async move {
            let answer = handle(&function, event).await;
            orders_telemetry::flush().await;
            answer
        }
    }))
    .await
}

#[cfg(test)]
mod tests;
