//! The payment provider port, and the RequestPayment Task that uses it.
//!
//! RequestPayment is a `.waitForTaskToken` Task: its handler records the payment with the
//! task token (the store part, [`super::Steps`]) and then asks the provider to charge; the
//! provider's answer comes later, as a signed webhook, and the webhook's signal completes the
//! task. The ask is idempotent at the provider by the payment id, which is derived from the
//! order: a handler run again after a crash or a retry asks for the same payment, and the
//! provider charges it once. The provider is never asked once the payment has an answer.
//!
//! The provider is the simulator (`orders::payment_sim`: in process locally, a function of
//! its own on AWS) behind the HTTP client in [`http`], or a real provider through the same
//! client or an adapter of its own of [`PaymentProvider`].

pub mod http;

use crate::executor::{TaskContext, TaskError, TaskHandler};
use async_trait::async_trait;
use orders_domain::{Cents, OrderId, PaymentId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// One charge the provider is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeRequest {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount_cents: i64,
    pub currency: String,
    pub payment_method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Unreachable, timed out, 5xx or 429: asked again by the Task's retries.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request itself (4xx): retrying would not help.
    #[error("payment provider refused the request: {0}")]
    Refused(String),
}

/// A payment provider: accepts charge requests and answers each by webhook.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Asks for `request`; idempotent on `request.payment_id`. `Ok` means accepted, not
    /// charged: the result arrives at `POST /webhooks/payments`.
    async fn request_charge(&self, request: &ChargeRequest) -> Result<(), ProviderError>;
}

/// What the store part of RequestPayment returns: the charge to ask for, if the provider
/// has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentAsk {
    pub(crate) payment_id: PaymentId,
    /// `None` once the provider answered: nothing to ask.
    pub(crate) charge: Option<ChargeRequest>,
}

/// The RequestPayment Task: the step handler `steps`, then the provider.
pub struct RequestPayment {
    pub steps: Arc<dyn TaskHandler>,
    pub provider: Arc<dyn PaymentProvider>,
}

/// The error the Task fails with when the provider refuses the request for good.
pub const PROVIDER_REFUSED: &str = "PaymentProviderRefused";

#[async_trait]
impl TaskHandler for RequestPayment {
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        let out = self.steps.invoke(input, ctx).await?;
        let ask: PaymentAsk = serde_json::from_value(out.clone())
            .map_err(|e| TaskError::new("InvalidInput", format!("bad step output: {e}")))?;
        if let Some(charge) = &ask.charge {
            self.provider
                .request_charge(charge)
                .await
                .map_err(|e| match e {
                    ProviderError::Unavailable(m) => TaskError::new("Transient", m),
                    ProviderError::Refused(m) => TaskError::new(PROVIDER_REFUSED, m),
                })?;
            tracing::info!(payment_id = %ask.payment_id, "payment requested from the provider");
        }
        Ok(out)
    }
}

/// The substitution name of the RequestPayment Task's function.
pub fn request_payment_substitution() -> String {
    super::Step::RequestPayment.substitution()
}

/// The amount in a charge request, from cents.
pub(crate) fn charge_for(order: OrderId, amount: Cents, payment_method: &str) -> ChargeRequest {
    ChargeRequest {
        payment_id: PaymentId::for_order(order),
        order_id: order,
        amount_cents: amount.0,
        currency: "EUR".to_owned(),
        payment_method: payment_method.to_owned(),
    }
}
