//! The provider's HTTP API, as the simulator serves it and a provider of this shape would:
//! `POST {base}/charges` with the [`ChargeRequest`] as JSON and `Idempotency-Key: <paymentId>`;
//! any 2xx is accepted (the result comes by webhook), 5xx and 429 are worth another try, any
//! other status is a refusal.

use super::{ChargeRequest, PaymentProvider, ProviderError};
use async_trait::async_trait;
use std::time::Duration;

/// How long one request may take; the Task's retries cover a slow provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct HttpProvider {
    charges: reqwest::Url,
    client: reqwest::Client,
}

impl HttpProvider {
    /// A client of the provider at `base` (e.g. `http://127.0.0.1:8091/`).
    pub fn new(base: &reqwest::Url) -> Result<Self, String> {
        let charges = base
            .join("charges")
            .map_err(|e| format!("bad provider URL {base}: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpProvider { charges, client })
    }
}

#[async_trait]
impl PaymentProvider for HttpProvider {
    async fn request_charge(&self, request: &ChargeRequest) -> Result<(), ProviderError> {
        let answer = self
            .client
            .post(self.charges.clone())
            .header("idempotency-key", request.payment_id.as_str())
            .json(request)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(ProviderError::Unavailable(format!("answered {status}")))
        } else {
            let body = answer.text().await.unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            Err(ProviderError::Refused(format!("answered {status}: {body}")))
        }
    }
}
