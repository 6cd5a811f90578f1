//! The local outbox relay: reads unpublished events in commit order, acts on them (starts a
//! saga, or delivers a signal to a waiting one), and marks them published.
//!
//! It wakes when the store signals a commit (no fixed sleep on the hot path) and also polls
//! slowly, which covers events written by another process on the same database. Nothing is
//! held in memory across iterations: the outbox table is the queue, so after a crash the relay
//! simply starts again from the oldest unpublished event. A poison event is parked with its
//! reason and never blocks the events behind it; a failed start or delivery is retried with
//! backoff while the rest of its batch goes ahead. A stale signal (its task no longer waits)
//! is done, like a start that finds its saga already there.
//!
//! A failure that lasts (storage refusing writes on a full disk fails every start and every
//! mark) is one streak: a WARN when the first pass fails, passes at the backoff's pace (up to
//! `max_backoff` apart) and quiet while it lasts, and an INFO with the count when a pass
//! succeeds again. Not one line per event and pass.

use crate::{ProcessError, Processed, SagaStarter, TaskSignaller, process_event};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// Histogram: seconds from an `order.created` row's commit (the event's `time`) to the start of
/// its saga by the relay.
pub const RELAY_LAG_SECONDS: &str = "orders_relay_lag_seconds";
/// Counter: outbox rows the relay handled, by `outcome` ([`RelayOutcome`]).
pub const RELAY_EVENTS_TOTAL: &str = "orders_relay_events_total";

/// The `outcome` label of [`RELAY_EVENTS_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// A saga started, or found started.
    Started,
    /// A signal delivered, or stale.
    Signalled,
    /// A public event: nothing to start.
    Public,
    /// A poison row parked.
    Parked,
    /// A failed attempt; the row is retried.
    Failed,
}

impl RelayOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayOutcome::Started => "started",
            RelayOutcome::Signalled => "signalled",
            RelayOutcome::Public => "public",
            RelayOutcome::Parked => "parked",
            RelayOutcome::Failed => "failed",
        }
    }

    fn of(processed: &Processed) -> Self {
        match processed {
            Processed::Started(..) => RelayOutcome::Started,
            Processed::Signalled(..) => RelayOutcome::Signalled,
            Processed::PublishOnly(_) => RelayOutcome::Public,
        }
    }

    fn count(self) {
        metrics::counter!(RELAY_EVENTS_TOTAL, "outcome" => self.as_str()).increment(1);
    }
}

/// One unpublished outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub seq: i64,
    pub payload: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbox storage: {0}")]
pub struct OutboxError(pub String);

/// The outbox as the relay sees it.
#[async_trait]
pub trait OutboxSource: Send + Sync {
    /// Unpublished, not parked events, oldest first, at most `limit`.
    async fn pending(&self, limit: usize) -> Result<Vec<PendingEvent>, OutboxError>;
    async fn mark_published(&self, seqs: &[i64], now: DateTime<Utc>) -> Result<(), OutboxError>;
    /// Counts a failed attempt; the event stays pending.
    async fn record_failure(&self, seq: i64, error: &str) -> Result<(), OutboxError>;
    /// Parks a poison event: it is kept with its reason and no longer pending.
    async fn park(&self, seq: i64, reason: &str, now: DateTime<Utc>) -> Result<(), OutboxError>;
}

#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub batch: usize,
    /// Poll interval when no commit signal arrives (events from other processes).
    pub fallback_poll: Duration,
    /// Backoff after a failed start, doubling up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch: 256,
            fallback_poll: Duration::from_secs(1),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

pub struct Relay {
    pub source: Arc<dyn OutboxSource>,
    pub starter: Arc<dyn SagaStarter>,
    pub signaller: Arc<dyn TaskSignaller>,
    pub signal: Arc<Notify>,
    pub options: RelayOptions,
}

impl Relay {
    /// Runs until `shutdown` turns true. Returns after finishing the batch in hand.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = self.options.min_backoff;
        let mut streak = Streak::default();
        while !*shutdown.borrow() {
            let failed = match self.pass().await {
                Ok(0) => {
                    tokio::select! {
                        _ = self.signal.notified() => {}
                        _ = tokio::time::sleep(self.options.fallback_poll) => {}
                        _ = shutdown.changed() => {}
                    }
                    false
                }
                Ok(_) => false,
                Err(e) => {
                    streak.failed(&e);
                    true
                }
            };
            if failed {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(self.options.max_backoff);
            } else {
                backoff = self.options.min_backoff;
                streak.ended();
            }
        }
    }

    /// One pass over the pending events: how many were handled. The batch's events are acted
    /// on concurrently (ordering across events is not assumed, and concurrent starts share
    /// group commits); a poison event is parked; a retryable failure is counted on its event,
    /// the others are still published, and the pass reports an error so the relay backs off.
    pub async fn pass(&self) -> Result<usize, OutboxError> {
        let batch = self.source.pending(self.options.batch).await?;
        let mut tasks = JoinSet::new();
        for ev in &batch {
            let (starter, signaller) = (self.starter.clone(), self.signaller.clone());
            let (seq, payload) = (ev.seq, ev.payload.clone());
            tasks.spawn(async move {
                let outcome =
                    process_event(payload.as_bytes(), starter.as_ref(), signaller.as_ref()).await;
                (seq, outcome)
            });
        }
        let mut published = Vec::with_capacity(batch.len());
        let mut failed = 0;
        let mut first_failure = None;
        while let Some(joined) = tasks.join_next().await {
            let (seq, outcome) =
                joined.map_err(|e| OutboxError(format!("outbox event task failed: {e}")))?;
            match outcome {
                Ok(processed) => {
                    match &processed {
                        Processed::Started(event, started) => {
                            tracing::debug!(event_id = %event.id, order_id = %event.subject, ?started, "saga started");
                            if *started == crate::Started::New {
                                let lag = (Utc::now() - event.time).as_seconds_f64().max(0.0);
                                metrics::histogram!(RELAY_LAG_SECONDS).record(lag);
                            }
                        }
                        Processed::Signalled(event, delivered) => {
                            tracing::debug!(event_id = %event.id, order_id = %event.subject, ?delivered, "signal delivered");
                        }
                        // Written published; a pending one is done with all the same.
                        Processed::PublishOnly(event) => {
                            tracing::debug!(event_id = %event.id, order_id = %event.subject, "public event: nothing to start");
                        }
                    }
                    RelayOutcome::of(&processed).count();
                    published.push(seq);
                }
                Err(ProcessError::Poison(e)) => {
                    tracing::error!(seq, error = %e, "poison outbox event parked");
                    self.source.park(seq, &e.to_string(), Utc::now()).await?;
                    RelayOutcome::Parked.count();
                }
                Err(ProcessError::Retryable(e)) => {
                    // The pass reports the failures (and the relay logs its streak once).
                    tracing::debug!(seq, error = %e, "outbox event failed; will retry");
                    self.source.record_failure(seq, &e.to_string()).await?;
                    RelayOutcome::Failed.count();
                    first_failure.get_or_insert(e);
                    failed += 1;
                }
            }
        }
        if !published.is_empty() {
            published.sort_unstable();
            self.source.mark_published(&published, Utc::now()).await?;
        }
        if let Some(first) = first_failure {
            return Err(OutboxError(format!(
                "{failed} of {} outbox events failed (first: {first})",
                batch.len()
            )));
        }
        Ok(batch.len())
    }
}

/// Consecutive failed passes: logged when they start and when they end, not each one.
#[derive(Default)]
struct Streak(Option<(std::time::Instant, u32)>);

impl Streak {
    fn failed(&mut self, e: &OutboxError) {
        match &mut self.0 {
            Some((_, passes)) => {
                *passes += 1;
                tracing::debug!(error = %e, passes = *passes, "outbox relay pass failed again");
            }
            None => {
                tracing::warn!(error = %e, "outbox relay pass failed; retrying with backoff");
                self.0 = Some((std::time::Instant::now(), 1));
            }
        }
    }

    fn ended(&mut self) {
        if let Some((since, passes)) = self.0.take() {
            let lasted = since.elapsed().as_secs_f64();
            tracing::info!(
                failed_passes = passes,
                lasted_secs = lasted,
                "outbox relay recovered after {passes} failed passes ({lasted:.1} s)"
            );
        }
    }
}

#[cfg(test)]
mod tests;
