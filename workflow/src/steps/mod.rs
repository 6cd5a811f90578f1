//! The saga's step handlers, written once for both runtimes: the local executor calls them in
//! process, the step Lambda calls them on AWS. Each is idempotent per (order, step): its effect
//! is recorded under the order id, and a re-run finds the record and does nothing new. That,
//! not the executor, is what makes at-least-once delivery and crash-resume safe.
//!
//! Errors carry the names the state machine's Retry/Catch match: `OutOfStock` and
//! `OrderCancelled` are final, `Transient` is retried with backoff. (`PaymentDeclined` comes
//! from the provider's webhook, through the task token, not from a step.)

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
pub use store::{
    Notifications, Payments, Progress, Shipments, StepStore, StepStoreError, Stock, Vouchers,
};
use tracing::Instrument;

/// Every Task state of the saga that runs a step handler; `<Step>FunctionArn` is its
/// substitution name in the ASL. (PrepareShipment is a queue Task: no handler runs it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Step {
    ReserveInventory,
    RequestPayment,
    SendNotification,
    MarkShipped,
    IssueVoucher,
    MarkCompleted,
    BeginCompensation,
    RefundPayment,
    ReleaseInventory,
    RestoreVoucher,
    MarkFailed,
    MarkCancelled,
}

impl Step {
    pub const ALL: [Step; 12] = [
        Step::ReserveInventory,
        Step::RequestPayment,
        Step::SendNotification,
        Step::MarkShipped,
        Step::IssueVoucher,
        Step::MarkCompleted,
        Step::BeginCompensation,
        Step::RefundPayment,
        Step::ReleaseInventory,
        Step::RestoreVoucher,
        Step::MarkFailed,
        Step::MarkCancelled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::ReserveInventory => "ReserveInventory",
            Step::RequestPayment => "RequestPayment",
            Step::SendNotification => "SendNotification",
            Step::MarkShipped => "MarkShipped",
            Step::IssueVoucher => "IssueVoucher",
            Step::MarkCompleted => "MarkCompleted",
            Step::BeginCompensation => "BeginCompensation",
            Step::RefundPayment => "RefundPayment",
            Step::ReleaseInventory => "ReleaseInventory",
            Step::RestoreVoucher => "RestoreVoucher",
            Step::MarkFailed => "MarkFailed",
            Step::MarkCancelled => "MarkCancelled",
        }
    }

    /// Whether a successful run of this step ends with a status change
    /// (`StepStore::set_status` or `mark_shipped`), which marks the step SUCCEEDED in the same
    /// transaction: `step_result` would write the same row again.
    fn succeeds_with_status_change(self) -> bool {
        matches!(
            self,
            Step::ReserveInventory
                | Step::MarkShipped
                | Step::MarkCompleted
                | Step::BeginCompensation
                | Step::MarkFailed
                | Step::MarkCancelled
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
    /// The customer cancelled; the saga compensates and ends CANCELLED. The cause is the
    /// customer's reason (may be empty).
    #[error("{0}")]
    OrderCancelled(String),
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
            StepError::OrderCancelled(_) => orders_domain::lifecycle::ORDER_CANCELLED,
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
            StepStoreError::Cancelled { reason } => {
                StepError::OrderCancelled(reason.unwrap_or_default())
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

/// What a step reads of its input: the saga input, the error that sent the saga to
/// compensation, the warehouse's answer, and (for a callback Task) its task token.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepInput {
    step: Step,
    input: SagaState,
    #[serde(default)]
    task_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SagaState {
    #[serde(flatten)]
    order: SagaInput,
    #[serde(default)]
    error: Option<CaughtError>,
    #[serde(default)]
    shipment: Option<orders_domain::Shipment>,
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
            let began = std::time::Instant::now();
            let result = self
                .run(step, &input.input, input.task_token.as_deref())
                .await;
            step.measure(began, &result);
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

// Metrics (recorded through the `metrics` facade; no-ops without a recorder).
/// Histogram: seconds one run of a step handler takes, by `step` (the [`Step`]'s name).
pub const STEP_DURATION_SECONDS: &str = "orders_saga_step_duration_seconds";
/// Counter: sagas that reached their end for the business, by `outcome` (`completed`,
/// `failed`, `cancelled`): a successful run of MarkCompleted, MarkFailed or MarkCancelled.
/// A step re-run after a crash may count once more (steps are at-least-once).
pub const SAGA_OUTCOMES_TOTAL: &str = "orders_saga_outcomes_total";

impl Step {
    /// Records one run's duration and, for a final step that succeeded, the saga's outcome.
    fn measure(self, began: std::time::Instant, result: &Result<Value, StepError>) {
        let seconds = began.elapsed().as_secs_f64();
        metrics::histogram!(STEP_DURATION_SECONDS, "step" => self.name()).record(seconds);
        let outcome = match self {
            Step::MarkCompleted => "completed",
            Step::MarkFailed => "failed",
            Step::MarkCancelled => "cancelled",
            _ => return,
        };
        if result.is_ok() {
            metrics::counter!(SAGA_OUTCOMES_TOTAL, "outcome" => outcome).increment(1);
        }
    }

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
