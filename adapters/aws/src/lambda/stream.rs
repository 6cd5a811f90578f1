//! The DynamoDB Streams handler of the outbox table: each INSERT record is an outbox row
//! (`OutboxMessage`): an `order.created` starts its saga (StartExecution), a task signal is
//! delivered to the waiting execution (SendTaskSuccess / SendTaskFailure, a cancellation's
//! token found in the execution's history), through the processor's shared `process_event`.
//! Every public event, `order.created` included, is then published through the
//! [`EventPublisher`] port (EventBridge, `crate::eventbridge`); a signal never is.
//!
//! Records are acted on concurrently (the order of items written by one transaction is not
//! guaranteed anyway), then the batch's public events are handed to the publisher at once, so
//! it can send them in as few calls as its API allows. A record counts as done only when
//! everything it asks for is done: a public event whose saga started but whose publication
//! failed is failed, and its retry starts the saga again, which the idempotent start absorbs.
//! A record whose action failed is not published (its retry will be).
//!
//! Each record that was not acted on is reported in `batchItemFailures` by its sequence
//! number. Lambda then retries from the lowest failed record, bisecting and finally sending
//! the batch to the on-failure destination; records after it are delivered again, and so may
//! be published again: consumers dedupe on the CloudEvent `id`. A malformed record is
//! reported too, and logged as poison: it reaches the dead-letter queue after the bounded
//! retries instead of being retried forever or dropped silently. MODIFY and REMOVE records
//! carry no new event and are skipped.

use super::LambdaEnvError;
use crate::eventbridge::{EventBridgePublisher, EventBusName};
use crate::functions::EVENT_BUS_NAME_ENV;
use crate::sfn::{StepFunctionsSignaller, StepFunctionsStarter};
use crate::tables::{STATE_MACHINE_ARN_ENV, attrs};
use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use lambda_runtime::{LambdaEvent, service_fn};
use orders_domain::{EventId, EventType};
use orders_processor::{
    Delivered, ProcessError, Processed, SagaStarter, Started, TaskSignaller, process_event,
};
use std::sync::Arc;
use tokio::task::JoinSet;

/// What the function reads at its cold start, checked there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorConfig {
    pub state_machine_arn: String,
    pub event_bus: EventBusName,
}

impl ProcessorConfig {
    /// `ORDERS_STATE_MACHINE_ARN`, then `ORDERS_EVENT_BUS_NAME`; the first bad one is named.
    pub fn from_env() -> Result<Self, LambdaEnvError> {
        let state_machine_arn = state_machine_arn_from_env()?;
        let name = EVENT_BUS_NAME_ENV;
        let event_bus = EventBusName::parse(&std::env::var(name).unwrap_or_default())
            .map_err(|reason| LambdaEnvError::Invalid { name, reason })?;
        Ok(ProcessorConfig {
            state_machine_arn,
            event_bus,
        })
    }
}

/// The function's main: configuration (the state machine, the bus), the Step Functions and
/// EventBridge clients, then the runtime loop.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    let (config, sdk) = super::start(ProcessorConfig::from_env).await?;
    let client = aws_sdk_sfn::Client::new(&sdk);
    let arn = config.state_machine_arn;
    let ports = Ports {
        starter: Arc::new(StepFunctionsStarter::new(client.clone(), arn.clone())),
        signaller: Arc::new(StepFunctionsSignaller::new(client, arn)),
        publisher: Arc::new(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            config.event_bus,
        )),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let ports = ports.clone();
        async move {
            let answer = handle_batch(event.payload, ports).await;
            orders_telemetry::flush().await;
            Ok::<_, lambda_runtime::Error>(answer)
        }
    }))
    .await
}

/// One public event to publish: its type and time, and the CloudEvent JSON as it was written
/// to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub event_id: EventId,
    pub event_type: EventType,
    pub time: DateTime<Utc>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not published: {0}")]
pub struct PublishError(pub String);

/// Publishes public events to the other services.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes `events`, as many as the batch holds; one answer per event, in their order.
    async fn publish(&self, events: &[Publication]) -> Vec<Result<(), PublishError>>;
}

/// What the processor acts through: the saga starter, the signal deliverer, the publisher.
#[derive(Clone)]
pub struct Ports {
    pub starter: Arc<dyn SagaStarter>,
    pub signaller: Arc<dyn TaskSignaller>,
    pub publisher: Arc<dyn EventPublisher>,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// `order.created`: its saga started (or had been) and the event was published.
    Started(Started),
    Signalled(Delivered),
    /// Any other public event, published.
    Published,
    Skipped,
    Failed(String),
}

/// A record acted on, and the public event it still has to publish.
struct Acted {
    index: usize,
    sequence: Option<String>,
    outcome: RecordOutcome,
    publication: Option<Publication>,
}

/// Handles one batch and answers with the records to retry.
pub async fn handle_batch(event: Event, ports: Ports) -> DynamoDbEventResponse {
    let mut tasks = JoinSet::new();
    for (index, record) in event.records.into_iter().enumerate() {
        let ports = ports.clone();
        tasks.spawn(async move {
            let (outcome, publication) = act(&record, &ports).await;
            Acted {
                index,
                sequence: record.change.sequence_number.clone(),
                outcome,
                publication,
            }
        });
    }
    let mut acted = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(record) => acted.push(record),
            // A panicking start cannot be tied to its record, so the whole batch is retried.
            Err(e) => {
                tracing::error!(error = %e, "record task failed; retrying the whole batch");
                return whole_batch_failed();
            }
        }
    }
    acted.sort_by_key(|a| a.index);
    publish(&mut acted, ports.publisher.as_ref()).await;

    let mut response = DynamoDbEventResponse::default();
    for record in acted {
        let (index, sequence) = (record.index, &record.sequence);
        let RecordOutcome::Failed(reason) = &record.outcome else {
            tracing::info!(record = index, ?sequence, outcome = ?record.outcome, "record handled");
            continue;
        };
        tracing::error!(record = index, ?sequence, %reason, "record not acted on");
        let Some(id) = record.sequence else {
            // Without a sequence number Lambda cannot retry one record: retry them all.
            return whole_batch_failed();
        };
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(id);
        response.batch_item_failures.push(failure);
    }
    response
}

/// Publishes the public events of the records acted on, in one hand-over; a record whose
/// event was not published becomes failed.
async fn publish(acted: &mut [Acted], publisher: &dyn EventPublisher) {
    let pending: Vec<usize> = (0..acted.len())
        .filter(|&i| acted[i].publication.is_some())
        .filter(|&i| !matches!(acted[i].outcome, RecordOutcome::Failed(_)))
        .collect();
    if pending.is_empty() {
        return;
    }
    let events: Vec<Publication> = pending
        .iter()
        .filter_map(|&i| acted[i].publication.take())
        .collect();
    let mut answers = publisher.publish(&events).await.into_iter();
    for (i, event) in pending.into_iter().zip(&events) {
        let answer = answers
            .next()
            .unwrap_or_else(|| Err(PublishError("the publisher gave no answer".into())));
        match answer {
            Ok(()) => {
                tracing::info!(event_id = %event.event_id, r#type = %event.event_type, "event published")
            }
            Err(e) => acted[i].outcome = RecordOutcome::Failed(e.to_string()),
        }
    }
}

/// A failure with an empty identifier makes Lambda treat the whole batch as failed.
fn whole_batch_failed() -> DynamoDbEventResponse {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(String::new());
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
    response
}

/// Acts on one record; a public event comes back with what to publish once the action is done.
async fn act(record: &EventRecord, ports: &Ports) -> (RecordOutcome, Option<Publication>) {
    if record.event_name != "INSERT" {
        return (RecordOutcome::Skipped, None);
    }
    let payload = match event_text(record) {
        Ok(text) => text,
        Err(reason) => {
            return (
                RecordOutcome::Failed(format!("poison record: {reason}")),
                None,
            );
        }
    };
    let processed = process_event(
        payload.as_bytes(),
        ports.starter.as_ref(),
        ports.signaller.as_ref(),
    )
    .await;
    match processed {
        Ok(Processed::Started(event, started)) => {
            tracing::info!(event_id = %event.id, order_id = %event.data.order_id, ?started, "saga started");
            let publication = Publication {
                event_id: event.id,
                event_type: EventType::OrderCreated,
                time: event.time,
                detail: payload,
            };
            (RecordOutcome::Started(started), Some(publication))
        }
        Ok(Processed::Signalled(event, delivered)) => {
            tracing::info!(event_id = %event.id, order_id = %event.subject, ?delivered, "signal delivered");
            (RecordOutcome::Signalled(delivered), None)
        }
        Ok(Processed::PublishOnly(event)) => match event.kind() {
            Ok(event_type) => {
                let publication = Publication {
                    event_id: event.id,
                    event_type,
                    time: event.time,
                    detail: payload,
                };
                (RecordOutcome::Published, Some(publication))
            }
            // `process_event` decoded it as public, so this is not reached; still poison.
            Err(e) => (RecordOutcome::Failed(format!("poison event: {e}")), None),
        },
        Err(e @ ProcessError::Poison(_)) => (RecordOutcome::Failed(e.to_string()), None),
        Err(e @ ProcessError::Retryable(_)) => (RecordOutcome::Failed(e.to_string()), None),
    }
}

/// The `event` attribute of the new image, as the JSON text the API wrote.
fn event_text(record: &EventRecord) -> Result<String, String> {
    // The image is DynamoDB JSON (`{"event": {"S": "..."}}`); going through serde_json keeps
    // this independent of the attribute-value type of the events crate.
    let image = serde_json::to_value(&record.change.new_image)
        .map_err(|e| format!("unreadable new image: {e}"))?;
    match image.get(attrs::outbox::EVENT) {
        Some(value) => value
            .get("S")
            .and_then(|s| s.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("attribute {} is not a string", attrs::outbox::EVENT)),
        None => Err(format!(
            "no attribute {} in the new image",
            attrs::outbox::EVENT
        )),
    }
}

/// The state machine ARN from `ORDERS_STATE_MACHINE_ARN`, checked at start.
pub fn state_machine_arn_from_env() -> Result<String, LambdaEnvError> {
    let name = STATE_MACHINE_ARN_ENV;
    parse_state_machine_arn(&std::env::var(name).unwrap_or_default())
        .map_err(|reason| LambdaEnvError::Invalid { name, reason })
}

/// `arn:<partition>:states:<region>:<account>:stateMachine:<name>`, or why not.
pub fn parse_state_machine_arn(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.split(':').collect();
    let well_formed = parts.len() == 7
        && parts[0] == "arn"
        && parts[2] == "states"
        && parts[5] == "stateMachine"
        && parts.iter().all(|p| !p.is_empty());
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err(format!("expected a state machine ARN, got {value:?}"))
    }
}

#[cfg(test)]
mod tests;
