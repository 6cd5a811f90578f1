//! The saga's step handlers, written once for both runtimes: the local executor calls them in
//! process, the step Lambda calls them on AWS. Each is idempotent per (order, step): its effect
//! is recorded under the order id, and a re-run finds the record and does nothing new. That,
//! not the executor, is what makes at-least-once delivery and crash-resume safe.
//!
//! Errors carry the names the state machine's Retry/Catch match: `OutOfStock` and
//! `PaymentDeclined` are final, `Transient` is retried with backoff.

mod handlers;
pub mod payment;
pub mod store;

use crate::executor::{TaskError, TaskHandler};
use orders_domain::SagaInput;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use store::OrderAt;
pub use store::{Notifications, Payments, Progress, StepStore, StepStoreError, Stock, Vouchers};
use tracing::Instrument;

/// Every Task state of the saga; `<Step>FunctionArn` is its substitution name in the ASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Step {
    ReserveInventory,
    ProcessPayment,
    SendNotification,
    IssueVoucher,
    MarkCompleted,
    BeginCompensation,
    RefundPayment,
    ReleaseInventory,
    RestoreVoucher,
    MarkFailed,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::ReserveInventory,
        Step::ProcessPayment,
        Step::SendNotification,
        Step::IssueVoucher,
        Step::MarkCompleted,
        Step::BeginCompensation,
        Step::RefundPayment,
        Step::ReleaseInventory,
        Step::RestoreVoucher,
        Step::MarkFailed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::ReserveInventory => "ReserveInventory",
            Step::ProcessPayment => "ProcessPayment",
            Step::SendNotification => "SendNotification",
            Step::IssueVoucher => "IssueVoucher",
            Step::MarkCompleted => "MarkCompleted",
            Step::BeginCompensation => "BeginCompensation",
            Step::RefundPayment => "RefundPayment",
            Step::ReleaseInventory => "ReleaseInventory",
            Step::RestoreVoucher => "RestoreVoucher",
            Step::MarkFailed => "MarkFailed",
        }
    }

    /// Whether a successful run of this step ends with `StepStore::set_status`, which marks
    /// the step SUCCEEDED in the same transaction: `step_result` would write the same row again.
    fn succeeds_with_status_change(self) -> bool {
        matches!(
            self,
            Step::ReserveInventory
                | Step::ProcessPayment
                | Step::MarkCompleted
                | Step::BeginCompensation
                | Step::MarkFailed
        )
    }

    /// The DefinitionSubstitutions key of this step's function.
    pub fn substitution(self) -> String {
        format!("{}FunctionArn", self.name())
    }
}

/// A step failure, named for the state machine's Retry and Catch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    OutOfStock(String),
    #[error("{0}")]
    PaymentDeclined(String),
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    InvalidTransition(String),
}

impl StepError {
    pub fn name(&self) -> &'static str {
        match self {
            StepError::OutOfStock(_) => "OutOfStock",
            StepError::PaymentDeclined(_) => "PaymentDeclined",
            StepError::Transient(_) => "Transient",
            StepError::InvalidInput(_) => "InvalidInput",
            StepError::InvalidTransition(_) => "InvalidTransition",
        }
    }
}

impl From<StepStoreError> for StepError {
    fn from(e: StepStoreError) -> Self {
        match e {
            StepStoreError::Unavailable(m) => StepError::Transient(m),
            StepStoreError::OrderNotFound(id) => {
                StepError::InvalidInput(format!("order {id} does not exist"))
            }
            StepStoreError::InvalidTransition { from, to } => {
                StepError::InvalidTransition(format!("order cannot move from {from} to {to}"))
            }
        }
    }
}

/// Fault injection and provider behaviour, set by configuration.
#[derive(Debug, Clone, Default)]
pub struct StepSettings {
    /// Share (0.0-1.0) of payment attempts that fail with `Transient` before charging.
    pub payment_transient_rate: f64,
    /// Share (0.0-1.0) of notification attempts that fail with `Transient`.
    pub notification_failure_rate: f64,
}

/// The variable that sets [`StepSettings::payment_transient_rate`] on both runtimes.
pub const PAYMENT_TRANSIENT_RATE_ENV: &str = "ORDERS_PAYMENT_TRANSIENT_ERROR_RATE";
/// The variable that sets [`StepSettings::notification_failure_rate`] on both runtimes.
pub const NOTIFICATION_FAILURE_RATE_ENV: &str = "ORDERS_NOTIFICATION_FAILURE_RATE";

/// A fault-injection rate: a number from 0 to 1.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{text:?} is not a number from 0.0 to 1.0")),
    }
}

/// The step handlers over one store.
pub struct Steps {
    pub store: Arc<dyn StepStore>,
    pub settings: StepSettings,
}

/// What a step reads of its input: the saga input, plus the error that sent the saga to
/// compensation.
#[derive(Debug, Deserialize)]
struct StepInput {
    step: Step,
    input: SagaState,
}

#[derive(Debug, Deserialize)]
struct SagaState {
    #[serde(flatten)]
    order: SagaInput,
    #[serde(default)]
    error: Option<CaughtError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CaughtError {
    error: String,
    #[serde(default)]
    cause: String,
}

impl Steps {
    /// Runs one step from its raw Task input (`{"step": ..., "input": ...}`), recording the
    /// attempt and its outcome in the order's step history.
    pub async fn invoke(&self, raw: Value) -> Result<Value, StepError> {
        let input: StepInput = serde_json::from_value(raw)
            .map_err(|e| StepError::InvalidInput(format!("bad step input: {e}")))?;
        let order = input.input.order.order_id;
        let step = input.step;
        let span = tracing::info_span!("saga_step", step = step.name(), order_id = %order);
        // `instrument`, not `enter`: an entered guard held across awaits would label whatever
        // else runs on this thread while the step is suspended.
        async {
            self.store.step_attempt(OrderAt::now(order), step).await?;
            let result = self.run(step, &input.input).await;
            let error = result.as_ref().err().map(|e| format!("{}: {e}", e.name()));
            if let Some(e) = &error {
                tracing::warn!(error = %e, "step failed");
            }
            // A success that moved the order was already recorded with the move; one write
            // less per such step is ~10% of a saga's writes.
            if error.is_some() || !step.succeeds_with_status_change() {
                let at = OrderAt::now(order);
                self.store.step_result(at, step, error.as_deref()).await?;
            }
            result
        }
        .instrument(span)
        .await
    }
}

impl Step {
    /// `handler` under every step's substitution name: it dispatches on the input's `step`.
    pub fn handlers(handler: Arc<dyn TaskHandler>) -> HashMap<String, Arc<dyn TaskHandler>> {
        Step::ALL
            .into_iter()
            .map(|s| (s.substitution(), handler.clone()))
            .collect()
    }
}

impl From<StepError> for TaskError {
    fn from(e: StepError) -> Self {
        TaskError {
            error: e.name().to_owned(),
            cause: e.to_string(),
        }
    }
}
