//! Retry policy: which retrier handles an error and how long to wait before the next attempt.
//!
//! The delay is a pure function of the retrier, the retry number and a random number, so its
//! bounds can be tested without time or randomness; the executor supplies `fastrand` and
//! scales the result. Semantics follow Step Functions: the first retrier whose ErrorEquals
//! matches owns the error, even when its attempts are used up (then the error goes to Catch,
//! later retriers are not consulted); each retrier counts its own attempts.

use crate::asl::{JitterStrategy, Retrier, error_matches};
use std::time::Duration;

/// Step Functions' upper bound for any retry interval (one year); keeps the arithmetic finite.
const MAX_DELAY_SECONDS: f64 = 31_622_400.0;

/// The delay before the `retry`-th retry (1-based): `IntervalSeconds * BackoffRate^(retry-1)`,
/// capped at `MaxDelaySeconds`; with `JitterStrategy: FULL`, `random` (in `[0, 1)`) picks
/// uniformly in `[0, cap]`.
pub fn retry_delay(retrier: &Retrier, retry: u32, random: f64) -> Duration {
    let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
    let mut seconds = f64::from(retrier.interval_seconds) * retrier.backoff_rate.powi(exponent);
    if let Some(max) = retrier.max_delay_seconds {
        seconds = seconds.min(f64::from(max));
    }
    seconds = seconds.min(MAX_DELAY_SECONDS);
    if retrier.jitter_strategy == JitterStrategy::Full {
        seconds *= random.clamp(0.0, 1.0);
    }
    if !seconds.is_finite() || seconds < 0.0 {
        seconds = 0.0;
    }
    Duration::from_secs_f64(seconds)
}

/// What to do with a task error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry under retrier `index`; this will be its `retry`-th retry.
    Retry { index: usize, retry: u32 },
    /// No retrier matches, or the matching one is exhausted: go to Catch.
    GiveUp,
}

/// Picks the retrier for `error`, given the per-retrier counters of the current state.
pub fn decide(retriers: &[Retrier], counts: &[u32], error: &str) -> RetryDecision {
    let Some(index) = retriers
        .iter()
        .position(|r| error_matches(&r.error_equals, error))
    else {
        return RetryDecision::GiveUp;
    };
    let used = counts.get(index).copied().unwrap_or(0);
    if used < retriers[index].max_attempts {
        RetryDecision::Retry {
            index,
            retry: used + 1,
        }
    } else {
        RetryDecision::GiveUp
    }
}
