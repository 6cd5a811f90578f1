//! The provider's HTTP API, as the simulator serves it and a provider of this shape would:
//! `POST {base}/charges` with the [`ChargeRequest`] as JSON, `Idempotency-Key: <paymentId>`
//! and, when the provider gave one, its secret API key as `Authorization: Bearer <key>`;
//! any 2xx is accepted (the result comes by webhook), 5xx and 429 are worth another try, any
//! other status is a refusal.

use super::{ChargeRequest, PaymentProvider, ProviderError};
use async_trait::async_trait;
use std::time::Duration;

/// How long one request may take; the Task's retries cover a slow provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The provider's secret API key: whoever holds it can ask for charges, so it is never
/// printed (`Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderKey(String);

impl ProviderKey {
    /// Keys shorter than this are refused: a guessable key would let anyone ask for charges.
    pub const MIN_LEN: usize = 16;

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() < Self::MIN_LEN {
            return Err(format!(
                "a provider key has at least {} characters",
                Self::MIN_LEN
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a provider key is printable ASCII without spaces".into());
        }
        Ok(ProviderKey(text.to_owned()))
    }

    /// A new random key (244 random bits), for a provider started with the service.
    pub fn generate() -> Self {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        ProviderKey(format!("sk_sim_{}{}", a.simple(), b.simple()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether an `Authorization` header value carries this key. Both sides are hashed
    /// first, so the comparison's timing says nothing about the key.
    pub fn authorizes(&self, authorization: Option<&[u8]>) -> bool {
        use sha2::{Digest, Sha256};
        let Some(given) = authorization.and_then(|v| v.strip_prefix(b"Bearer ")) else {
            return false;
        };
        Sha256::digest(given) == Sha256::digest(self.0.as_bytes())
    }
}

impl std::fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderKey(..)")
    }
}

pub struct HttpProvider {
    charges: reqwest::Url,
    key: Option<ProviderKey>,
    client: reqwest::Client,
}

impl HttpProvider {
    /// A client of the provider at `base` (e.g. `http://127.0.0.1:8091/`), authenticated by
    /// `key` when the provider has one.
    pub fn new(base: &reqwest::Url, key: Option<ProviderKey>) -> Result<Self, String> {
        let charges = base
            .join("charges")
            .map_err(|e| format!("bad provider URL {base}: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpProvider {
            charges,
            key,
            client,
        })
    }
}

#[async_trait]
impl PaymentProvider for HttpProvider {
    async fn request_charge(&self, request: &ChargeRequest) -> Result<(), ProviderError> {
        let mut post = self
            .client
            .post(self.charges.clone())
            .header("idempotency-key", request.payment_id.as_str())
            .json(request);
        if let Some(key) = &self.key {
            post = post.bearer_auth(key.expose());
        }
        let answer = post
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

#[cfg(test)]
mod tests {
    use super::ProviderKey;

    #[test]
    fn a_key_authorizes_only_its_own_bearer_header() {
        let key = ProviderKey::parse("sk_test_0123456789abcdef").unwrap();
        assert!(key.authorizes(Some(b"Bearer sk_test_0123456789abcdef")));
        assert!(!key.authorizes(Some(b"Bearer sk_test_0123456789abcdeF")));
        assert!(!key.authorizes(Some(b"sk_test_0123456789abcdef")));
        assert!(!key.authorizes(Some(b"Basic sk_test_0123456789abcdef")));
        assert!(!key.authorizes(None));
        assert_eq!(format!("{key:?}"), "ProviderKey(..)");
    }

    #[test]
    fn short_or_spaced_keys_are_refused_and_generated_ones_are_accepted() {
        assert!(ProviderKey::parse("short").is_err());
        assert!(ProviderKey::parse("sk_test 0123456789abcdef").is_err());
        let made = ProviderKey::generate();
        assert_eq!(ProviderKey::parse(made.expose()), Ok(made.clone()));
        assert_ne!(made, ProviderKey::generate());
    }
}
