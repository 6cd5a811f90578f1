//! When a failed delivery is tried again: exponential backoff with full jitter (the wait is
//! a uniform draw between zero and a ceiling that starts at one second, doubles with each
//! failure and stops at an hour), until a day has passed since the first attempt; then the
//! delivery is given up on (FAILED, the dead letter). Full jitter spreads the retries of many
//! deliveries that failed together (a subscriber that was down) instead of sending them back
//! in one burst. The last retry is made at the end of the window itself, so a subscriber that
//! comes back within the day still gets the event.
//!
//! Every duration is multiplied by the scale (`--retry-delay-scale`): 0.0001 runs a day's
//! schedule in under nine seconds.

use chrono::{DateTime, Utc};
use orders_domain::subscriptions::AttemptResult;
use std::time::Duration;

const BASE: Duration = Duration::from_secs(1);
const CAP: Duration = Duration::from_secs(3600);
const WINDOW: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    scale: f64,
}

impl Backoff {
    /// The schedule with every duration multiplied by `scale` (finite, not negative).
    pub fn new(scale: f64) -> Self {
        Backoff {
            scale: if scale.is_finite() {
                scale.max(0.0)
            } else {
                1.0
            },
        }
    }

    /// The longest wait after `failures` failed attempts (at least one).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        BASE.saturating_mul(1 << doublings)
            .min(CAP)
            .mul_f64(self.scale)
    }

    /// The wait after `failures` failed attempts for a random `fraction` in [0, 1).
    pub fn delay(&self, failures: u32, fraction: f64) -> Duration {
        self.ceiling(failures).mul_f64(fraction.clamp(0.0, 1.0))
    }

    /// How long after its first attempt a delivery is given up on.
    pub fn window(&self) -> Duration {
        WINDOW.mul_f64(self.scale)
    }

    /// What follows a failed attempt made at `now`, the `failures`th, of a delivery first tried
    /// at `first`: another try (never after the window's end), or the dead letter.
    pub fn after_failure(
        &self,
        first: DateTime<Utc>,
        now: DateTime<Utc>,
        failures: u32,
        fraction: f64,
    ) -> AttemptResult {
        let window = chrono::Duration::from_std(self.window()).unwrap_or(chrono::Duration::MAX);
        let end = first
            .checked_add_signed(window)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if now >= end {
            return AttemptResult::Dead;
        }
        let wait = chrono::Duration::from_std(self.delay(failures, fraction))
            .unwrap_or(chrono::Duration::MAX);
        let next_at = now.checked_add_signed(wait).unwrap_or(end).min(end);
        AttemptResult::Retry { next_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(result: AttemptResult) -> Option<DateTime<Utc>> {
        match result {
            AttemptResult::Retry { next_at } => Some(next_at),
            _ => None,
        }
    }

    #[test]
    fn the_ceiling_starts_at_a_second_doubles_and_stops_at_an_hour() {
        let b = Backoff::new(1.0);
        let ceilings: Vec<u64> = (1..=14).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(
            ceilings,
            [
                1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600
            ]
        );
        assert_eq!(b.ceiling(u32::MAX), CAP);
        assert_eq!(Backoff::new(0.001).ceiling(1), Duration::from_millis(1));
        assert_eq!(Backoff::new(0.5).window(), Duration::from_secs(12 * 3600));
    }

    #[test]
    fn full_jitter_draws_from_zero_to_the_ceiling() {
        let b = Backoff::new(1.0);
        for failures in 1..=20 {
            assert_eq!(b.delay(failures, 0.0), Duration::ZERO);
            assert_eq!(b.delay(failures, 1.0), b.ceiling(failures));
            for _ in 0..200 {
                let d = b.delay(failures, fastrand::f64());
                assert!(d <= b.ceiling(failures), "{failures}: {d:?}");
            }
        }
        // Spread over the whole range, not bunched near the ceiling.
        let draws: Vec<Duration> = (0..2000).map(|_| b.delay(13, fastrand::f64())).collect();
        let low = draws.iter().filter(|d| **d < CAP / 4).count();
        let high = draws.iter().filter(|d| **d > CAP * 3 / 4).count();
        assert!(low > 300 && high > 300, "low {low}, high {high}");
    }

    /// A subscriber that never answers: attempts until the day is over, the last at its end.
    fn schedule(b: Backoff, fraction: impl Fn() -> f64) -> (u32, DateTime<Utc>, DateTime<Utc>) {
        let first = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let (mut now, mut failures) = (first, 1);
        loop {
            match b.after_failure(first, now, failures, fraction()) {
                AttemptResult::Retry { next_at } => {
                    assert!(next_at >= now && next_at <= first + chrono::Duration::hours(24));
                    now = next_at;
                    failures += 1;
                }
                AttemptResult::Dead => return (failures, first, now),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn retries_last_a_day_then_the_delivery_is_dead() {
        let b = Backoff::new(1.0);
        let (attempts, first, last) = schedule(b, || 1.0);
        assert_eq!(
            last - first,
            chrono::Duration::hours(24),
            "the last try ends the day"
        );
        // The first try, 12 growing waits (4095 s in all), 22 hourly ones, and one cut short
        // by the end of the window.
        assert_eq!(attempts, 1 + 12 + 22 + 1);
        let (attempts, first, last) = schedule(b, fastrand::f64);
        assert_eq!(last - first, chrono::Duration::hours(24));
        // Full jitter halves the mean wait: about twice as many tries as without it.
        assert!((50..=150).contains(&attempts), "{attempts}");
        assert_eq!(
            b.after_failure(first, last, attempts, 0.5),
            AttemptResult::Dead
        );
    }

    #[test]
    fn the_scale_shrinks_the_whole_day() {
        let (_, first, last) = schedule(Backoff::new(0.0001), || 1.0);
        assert_eq!((last - first).num_milliseconds(), 8_640);
        let first = Utc::now();
        let next = next(Backoff::new(0.001).after_failure(first, first, 1, 1.0)).unwrap();
        assert_eq!((next - first).num_milliseconds(), 1);
        // Scale 0: no waiting, and no window: the first failure is the last.
        assert_eq!(
            Backoff::new(0.0).after_failure(first, first, 1, 0.5),
            AttemptResult::Dead
        );
    }
}
