//! The simulator as a Lambda function behind a function URL, so a fresh stack runs the whole
//! lifecycle without a real provider (the template's `PaymentSimulator`, on by default): the
//! step function's `HttpProvider` posts charges to the function URL, and the function posts
//! signed webhooks to the API's `POST /webhooks/payments`, as a provider would.
//!
//! Lambda freezes a process between invocations, so no task may outlive its answer: the
//! function delivers the webhook before it answers the charge ([`Answer::AfterDelivery`]),
//! within the step's 10-second request timeout (a short delay, few and quick attempts). A
//! webhook it cannot deliver is answered 503, which the step's retries ask again. The URL is
//! public, so the provider key is required here: without it anyone could fail any order's
//! payment. Payment ids are remembered per instance only; a charge asked again on another
//! instance is delivered again, under a new webhook id, and the service applies a second
//! result for the same payment as it would a provider's duplicate (once).
//!
//! Wired like every function: configuration read and checked at the cold start (a bad or
//! missing variable stops it, named), JSON logs, then the runtime loop.

use super::{Answer, RetryPolicy, Shared, SimSettings, router};
use orders_aws::functions::{
    PAYMENT_PROVIDER_KEY_ENV, PAYMENT_SIM_DELAY_MS_ENV, PAYMENT_WEBHOOK_SECRET_ENV,
    PAYMENT_WEBHOOK_URL_ENV,
};
use orders_aws::lambda::LambdaEnvError;
use orders_domain::standard_webhooks::WebhookSecret;
use orders_workflow::steps::payment::http::ProviderKey;
use std::time::Duration;

/// The longest delay the function takes: the step's request waits 10 s in all.
pub const MAX_DELAY_MS: u64 = 5_000;

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct SimFunctionConfig {
    pub webhook_url: reqwest::Url,
    pub secret: WebhookSecret,
    pub key: ProviderKey,
    pub delay: Duration,
}

impl SimFunctionConfig {
    pub fn from_env() -> Result<Self, LambdaEnvError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration from `lookup` (the environment, or a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, LambdaEnvError> {
        let required = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(LambdaEnvError::Invalid {
                    name,
                    reason: "required".into(),
                })
        };
        let invalid = |name, reason: String| LambdaEnvError::Invalid { name, reason };
        let url = required(PAYMENT_WEBHOOK_URL_ENV)?;
        let webhook_url = reqwest::Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                invalid(
                    PAYMENT_WEBHOOK_URL_ENV,
                    format!("{url:?} is not an http(s) URL"),
                )
            })?;
        let secret = WebhookSecret::parse(&required(PAYMENT_WEBHOOK_SECRET_ENV)?)
            .map_err(|e| invalid(PAYMENT_WEBHOOK_SECRET_ENV, e.to_string()))?;
        let key = ProviderKey::parse(&required(PAYMENT_PROVIDER_KEY_ENV)?)
            .map_err(|e| invalid(PAYMENT_PROVIDER_KEY_ENV, e))?;
        let delay = match lookup(PAYMENT_SIM_DELAY_MS_ENV).filter(|v| !v.trim().is_empty()) {
            None => 0,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= MAX_DELAY_MS)
                .ok_or_else(|| {
                    invalid(
                        PAYMENT_SIM_DELAY_MS_ENV,
                        format!(
                            "{v:?} is not a whole number of milliseconds from 0 to {MAX_DELAY_MS}"
                        ),
                    )
                })?,
        };
        Ok(SimFunctionConfig {
            webhook_url,
            secret,
            key,
            delay: Duration::from_millis(delay),
        })
    }

    /// The simulator's settings on Lambda: answered after delivery, three quick attempts.
    pub fn settings(&self) -> SimSettings {
        let mut settings =
            SimSettings::new(self.webhook_url.clone(), self.secret.clone(), self.delay);
        settings.api_key = Some(self.key.clone());
        settings.answer = Answer::AfterDelivery;
        settings.request_timeout = Duration::from_secs(2);
        settings.retry = RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            scale: 1.0,
        };
        settings
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimFunctionError {
    #[error(transparent)]
    Config(#[from] LambdaEnvError),
    #[error(transparent)]
    Simulator(#[from] super::SimError),
    #[error("lambda runtime: {0}")]
    Runtime(lambda_http::Error),
}

/// The function's main: configuration, then the simulator's router under `lambda_http`.
pub async fn run() -> Result<(), SimFunctionError> {
    let (config, _sdk) = orders_aws::lambda::start(SimFunctionConfig::from_env).await?;
    let shared = Shared::new(config.settings())?;
    let app = router(shared).layer(axum::middleware::from_fn(crate::telemetry::flush_after));
    lambda_http::run(app)
        .await
        .map_err(SimFunctionError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![
            (
                PAYMENT_WEBHOOK_URL_ENV,
                "https://api.example/webhooks/payments",
            ),
            (PAYMENT_WEBHOOK_SECRET_ENV, SECRET),
            (PAYMENT_PROVIDER_KEY_ENV, "sk_test_0123456789abcdef"),
        ]
    }

    #[test]
    fn a_complete_environment_gives_settings_answered_after_delivery() {
        let config = SimFunctionConfig::from_lookup(env(&complete())).unwrap();
        assert_eq!(config.delay, Duration::ZERO);
        let settings = config.settings();
        assert_eq!(settings.answer, Answer::AfterDelivery);
        assert!(settings.api_key.is_some());
    }

    #[test]
    fn each_variable_is_required_or_checked_and_named() {
        for missing in [
            PAYMENT_WEBHOOK_URL_ENV,
            PAYMENT_WEBHOOK_SECRET_ENV,
            PAYMENT_PROVIDER_KEY_ENV,
        ] {
            let pairs: Vec<_> = complete()
                .into_iter()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = SimFunctionConfig::from_lookup(env(&pairs))
                .unwrap_err()
                .to_string();
            assert!(err.contains(missing), "{err}");
        }
        for (name, bad) in [
            (PAYMENT_WEBHOOK_URL_ENV, "ftp://api.example/"),
            (PAYMENT_WEBHOOK_SECRET_ENV, "not-a-secret"),
            (PAYMENT_PROVIDER_KEY_ENV, "short"),
            (PAYMENT_SIM_DELAY_MS_ENV, "5001"),
            (PAYMENT_SIM_DELAY_MS_ENV, "soon"),
        ] {
            let mut pairs = complete();
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, bad));
            let err = SimFunctionConfig::from_lookup(env(&pairs))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{name}={bad}: {err}");
        }
    }
}
