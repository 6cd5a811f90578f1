//! Delivering an internal signal ([`TaskSignal`]) to the saga that waits for it.
//!
//! A signal is written to the outbox in the same transaction as the fact it reports (a payment
//! webhook, a cancellation), so it is delivered at least once, and possibly after the saga has
//! stopped waiting for it: its token was answered by an earlier delivery, timed out, or was
//! never issued, or (a cancellation) the execution waits in no task or has ended. Such a
//! delivery is [`Delivered::Stale`]: logged and done, never retried, since retrying cannot make
//! the wait come back. Only a failure that may pass (the executor shutting down, storage, the
//! network) is a [`SignalError`] and goes back through the relay's retry with backoff.

use async_trait::async_trait;
use orders_domain::TaskSignal;

/// What delivering a signal came to. Both are done: the event is not delivered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The waiting task took it (succeeded, failed, or was cancelled by it).
    Applied,
    /// Nothing waits for it any more; why, for the log.
    Stale(String),
}

/// A delivery that failed and may succeed later: retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not deliver the signal: {0}")]
pub struct SignalError(pub String);

/// Hands a signal to the runtime the saga runs on (the local executor, or Step Functions'
/// SendTaskSuccess / SendTaskFailure).
#[async_trait]
pub trait TaskSignaller: Send + Sync {
    async fn deliver(&self, signal: &TaskSignal) -> Result<Delivered, SignalError>;
}

/// The signal's kind, for logs (its token is a credential and is never logged).
pub fn kind(signal: &TaskSignal) -> &'static str {
    match signal {
        TaskSignal::Succeed { .. } => "succeed",
        TaskSignal::Fail { .. } => "fail",
        TaskSignal::CancelWaiting { .. } => "cancelWaiting",
    }
}
