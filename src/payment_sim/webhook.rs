//! What the simulator answers a charge with, and how it delivers the answer.
//!
//! Cards: `pm_card_noAnswer` is never answered (the service's payment timeout path); a method
//! containing `Declined` (`pm_card_chargeDeclined`) fails with reason `card_declined`; any
//! other succeeds. A delivery is one Standard Webhooks message: its `webhook-id`
//! (`msg_<uuid>`) is made once and kept on every attempt, so the service applies it once;
//! each attempt is signed anew at its own time, so a retry long after the first is not
//! refused as stale. Any non-2xx answer or connection error is tried again with exponential
//! backoff and jitter, a bounded number of times, then given up with a warning.

use super::Shared;
use chrono::Utc;
use orders_domain::Cents;
use orders_domain::lifecycle::PaymentResult;
use orders_domain::standard_webhooks::Signed;
use orders_workflow::steps::payment::ChargeRequest;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The card that is never answered.
pub const NO_ANSWER_CARD: &str = "pm_card_noAnswer";
/// The failure reason of a declined card.
pub const DECLINED_REASON: &str = "card_declined";

/// What the provider decides for a payment method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeed,
    Decline,
    NoAnswer,
}

impl Outcome {
    pub fn for_method(method: &str) -> Outcome {
        if method == NO_ANSWER_CARD {
            Outcome::NoAnswer
        } else if method.contains("Declined") {
            Outcome::Decline
        } else {
            Outcome::Succeed
        }
    }
}

/// How often and how patiently a webhook is delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait after the first failed attempt, doubling after each.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Multiplies every wait (`--retry-delay-scale`).
    pub scale: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            scale: 1.0,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): half the exponential delay plus a
    /// random share of the other half, so retries of many webhooks spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .first_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        let jittered = exp.mul_f64(0.5 + fastrand::f64() * 0.5);
        jittered.mul_f64(self.scale)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: PaymentResult,
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    payment_id: &'a orders_domain::PaymentId,
    order_id: orders_domain::OrderId,
    amount: Cents,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// The webhook body for `charge`, or `None` for a card that is never answered.
fn body(charge: &ChargeRequest) -> Option<Vec<u8>> {
    let (kind, reason) = match Outcome::for_method(&charge.payment_method) {
        Outcome::NoAnswer => return None,
        Outcome::Decline => (PaymentResult::Failed, Some(DECLINED_REASON)),
        Outcome::Succeed => (PaymentResult::Succeeded, None),
    };
    let body = Body {
        kind,
        data: Data {
            payment_id: &charge.payment_id,
            order_id: charge.order_id,
            amount: Cents(charge.amount_cents),
            reason,
        },
    };
    Some(serde_json::to_vec(&body).expect("a webhook body serializes"))
}

/// Counts one delivery in `pending` until dropped.
struct Pending(Arc<Shared>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Waits `delay`; `false` if the simulator stopped first.
async fn pause(shared: &Shared, delay: Duration) -> bool {
    let mut stop = shared.stop.subscribe();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    // Biased: a simulator stopped already does not deliver after a zero delay.
    tokio::select! {
        biased;
        _ = stopped => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// Delivers the answer to `charge` (already counted in `pending`): `false` if it was given
/// up or the simulator stopped first, `true` once delivered or for a card never answered.
pub(super) async fn deliver(shared: Arc<Shared>, charge: ChargeRequest) -> bool {
    let _pending = Pending(shared.clone());
    let Some(body) = body(&charge) else {
        tracing::info!(payment_id = %charge.payment_id, "charge left unanswered ({NO_ANSWER_CARD})");
        return true;
    };
    if !pause(&shared, shared.settings.delay).await {
        return false;
    }
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let retry = shared.settings.retry;
    let mut last = String::new();
    for attempt in 1..=retry.attempts.max(1) {
        match attempt_once(&shared, &id, &body).await {
            Ok(()) => {
                tracing::info!(payment_id = %charge.payment_id, webhook_id = %id, attempt, "payment webhook delivered");
                return true;
            }
            Err(why) => last = why,
        }
        if attempt < retry.attempts && !pause(&shared, retry.delay(attempt)).await {
            return false;
        }
    }
    tracing::warn!(
        payment_id = %charge.payment_id, webhook_id = %id, attempts = retry.attempts, last = %last,
        "payment webhook given up"
    );
    false
}

/// One signed POST; `Err` says why it must be tried again.
async fn attempt_once(shared: &Shared, id: &str, body: &[u8]) -> Result<(), String> {
    let signed = Signed::new(&shared.settings.secret, id, Utc::now().timestamp(), body)
        .map_err(|e| e.to_string())?;
    let mut request = shared
        .client
        .post(shared.settings.webhook_url.clone())
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in signed.headers() {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(answer) if answer.status().is_success() => Ok(()),
        Ok(answer) => Err(format!("answered {}", answer.status())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_decide_the_outcome() {
        assert_eq!(Outcome::for_method("pm_card_visa"), Outcome::Succeed);
        assert_eq!(
            Outcome::for_method("pm_card_chargeDeclined"),
            Outcome::Decline
        );
        assert_eq!(Outcome::for_method("pm_card_noAnswer"), Outcome::NoAnswer);
        assert_eq!(Outcome::for_method("anything"), Outcome::Succeed);
    }

    #[test]
    fn delays_grow_are_jittered_capped_and_scaled() {
        let p = RetryPolicy::default();
        for attempt in 1..=8 {
            let full = (p.first_delay * 2u32.pow(attempt - 1)).min(p.max_delay);
            let d = p.delay(attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?} of {full:?}");
        }
        assert!(p.delay(30) <= p.max_delay);
        let fast = RetryPolicy { scale: 0.01, ..p };
        assert!(fast.delay(1) <= Duration::from_millis(1));
    }
}
