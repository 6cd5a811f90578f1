//! Outbox processing: turning each outbox row into what it asks for, a saga start
//! (`order.created`) or a signal to a waiting saga ([`SignalEvent`]). The other public events
//! ask nothing of the saga ([`Processed::PublishOnly`]); publishing them, and `order.created`,
//! is the runtime's part (deliveries locally, EventBridge on AWS).
//!
//! Delivery from the outbox is at-least-once (a crash between "acted on" and "marked
//! published" replays the row), so correctness rests on both actions being idempotent: the
//! execution is named after the event id, and a start that finds that name taken counts as
//! success; a signal whose task no longer waits for it (answered by the earlier delivery) is
//! stale, which counts as done too. The same [`process_event`] serves the local relay
//! ([`relay`]) and, on AWS, the DynamoDB Streams Lambda (`orders_aws::lambda::stream`); only
//! the ports behind it differ: the [`SagaStarter`] (the local executor, or Step Functions'
//! StartExecution in `orders_aws::sfn`) and the [`TaskSignaller`] (the local executor's token
//! calls, or SendTaskSuccess / SendTaskFailure).
//!
//! # Layout
//!
//! - this file: [`process_event`] (and [`start_event`], for order.created rows only), the port
//!   [`SagaStarter`] with what a start comes to, and [`ProcessError`].
//! - [`signal`]: the port [`TaskSignaller`] and what a delivery comes to.
//! - [`relay`]: the local relay and its port [`relay::OutboxSource`] (what it reads the outbox
//!   through; `orders-sqlite` implements it).
//!
//! No adapter lives here: the ports' implementations are in `orders-sqlite`, `orders-aws` and
//! the service's local stack.

pub mod relay;
pub mod signal;

pub use signal::{Delivered, SignalError, TaskSignaller};

use async_trait::async_trait;
use orders_domain::event::EventError;
use orders_domain::{OutboxEvent, OutboxMessage, PublicEvent, SagaInput, SignalEvent};
use tracing::Instrument;

/// What starting an execution came to. Both are success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    New,
    AlreadyExists,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not start the saga: {0}")]
pub struct StartError(pub String);

/// Starts a saga execution named `name` (the event id) with the saga input.
#[async_trait]
pub trait SagaStarter: Send + Sync {
    async fn start(&self, name: &str, input: &SagaInput) -> Result<Started, StartError>;
}

/// A failure that may pass: the row is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryableError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Signal(#[from] SignalError),
}

/// Why one outbox row was not acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// The row can never be processed (undecodable, unknown type): park it, do not retry.
    #[error("poison event: {0}")]
    Poison(#[from] EventError),
    /// The start or the delivery failed and may succeed later: retry.
    #[error(transparent)]
    Retryable(RetryableError),
}

impl From<StartError> for ProcessError {
    fn from(e: StartError) -> Self {
        ProcessError::Retryable(e.into())
    }
}

impl From<SignalError> for ProcessError {
    fn from(e: SignalError) -> Self {
        ProcessError::Retryable(e.into())
    }
}

/// What one outbox row came to; every one is done with (the row is marked published).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    Started(OutboxEvent, Started),
    Signalled(SignalEvent, Delivered),
    /// A public event the saga has no part in: only its publisher acts on it.
    PublishOnly(PublicEvent),
}

/// Decodes one outbox row and acts on it: starts its saga, or delivers its signal. A stale
/// delivery is logged here, once, for both runtimes.
pub async fn process_event(
    payload: &[u8],
    starter: &dyn SagaStarter,
    signaller: &dyn TaskSignaller,
) -> Result<Processed, ProcessError> {
    match OutboxMessage::decode(payload)? {
        OutboxMessage::OrderCreated(event) => {
            // The saga's start continues the trace of the request that created the order.
            let trace_id = event.traceparent.as_ref().map(|t| t.trace_id().to_owned());
            let span = tracing::info_span!("saga_start", event_id = %event.id, trace_id);
            // Exported, it is the stored request span's child: the parent comes from the
            // event, so a start after a restart continues the same trace.
            if let Some(parent) = &event.traceparent {
                orders_telemetry::continue_trace(&span, parent);
            }
            let started = starter
                .start(&event.id.to_string(), &event.data)
                .instrument(span)
                .await?;
            Ok(Processed::Started(event, started))
        }
        OutboxMessage::Signal(event) => {
            let delivered = signaller.deliver(&event.data).await?;
            if let Delivered::Stale(reason) = &delivered {
                tracing::info!(
                    event_id = %event.id,
                    order_id = %event.subject,
                    signal = signal::kind(&event.data),
                    %reason,
                    "stale signal: nothing waits for it; done"
                );
            }
            Ok(Processed::Signalled(event, delivered))
        }
        OutboxMessage::Published(event) => Ok(Processed::PublishOnly(event)),
    }
}

/// Decodes one `order.created` row and starts its saga; any other row is poison here. For a
/// consumer that only starts sagas; the outbox's consumers use [`process_event`].
pub async fn start_event(
    payload: &[u8],
    starter: &dyn SagaStarter,
) -> Result<(OutboxEvent, Started), ProcessError> {
    let event = OutboxEvent::decode(payload)?;
    let started = starter.start(&event.id.to_string(), &event.data).await?;
    Ok((event, started))
}

#[cfg(test)]
mod tests;
