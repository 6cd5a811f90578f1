//! What one attempt comes to: the subscriber's answer judged (2xx delivered, 410 Gone, any
//! other failure tried again on the backoff's schedule or, once the retry window is over,
//! dead) and logged, as the outcome the dispatcher records.

use super::backoff::Backoff;
use super::send::Answer;
use chrono::{DateTime, Utc};
use orders_domain::subscriptions::{AttemptResult, DeliveryOutcome, DueDelivery};

/// One attempt's result, as its task hands it back.
pub(super) struct Attempted {
    pub delivery: DueDelivery,
    /// When the attempt started (and was signed).
    pub at: DateTime<Utc>,
    pub answer: Answer,
}

impl Attempted {
    /// What the attempt comes to: delivered, tried again after a backoff, or dead.
    pub(super) fn outcome(self, backoff: &Backoff) -> DeliveryOutcome {
        let Attempted {
            delivery,
            at,
            answer,
        } = self;
        let first_attempt = delivery.first_attempt.unwrap_or(at);
        let failures = delivery.attempts + 1;
        let (status, error, result) = match answer {
            Answer::Delivered(status) => (Some(status), None, AttemptResult::Delivered),
            Answer::Gone => (
                Some(410),
                Some("410 Gone: the subscription is disabled".to_owned()),
                AttemptResult::Gone,
            ),
            Answer::Failed { status, error } => {
                let result =
                    backoff.after_failure(first_attempt, Utc::now(), failures, fastrand::f64());
                (status, Some(error), result)
            }
        };
        let (subscription, event) = (delivery.subscription, delivery.event_id);
        crate::metrics::DeliveryOutcome::of(&result).count();
        match result {
            AttemptResult::Delivered => {
                tracing::debug!(%subscription, %event, attempts = failures, "delivered")
            }
            AttemptResult::Retry { next_at } => {
                tracing::debug!(%subscription, %event, attempts = failures, %next_at, error = ?error, "delivery failed; retrying")
            }
            AttemptResult::Dead => {
                tracing::warn!(%subscription, %event, attempts = failures, error = ?error, "delivery dead-lettered after its retry window")
            }
            AttemptResult::Gone => {
                tracing::warn!(%subscription, %event, "the subscriber answered 410 Gone: subscription disabled")
            }
        }
        DeliveryOutcome {
            subscription,
            event_seq: delivery.event_seq,
            at,
            first_attempt,
            status,
            error,
            result,
        }
    }
}
