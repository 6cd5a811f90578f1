//! The DynamoDB Streams handler of the outbox table: each INSERT record is an outbox row
//! (`OutboxMessage`): an `order.created` starts its saga (StartExecution), a task signal is
//! delivered to the waiting execution (SendTaskSuccess / SendTaskFailure, a cancellation's
//! token found in the execution's history), through the processor's shared `process_event`.
//!
//! Records are handled concurrently (the order of items written by one transaction is not
//! guaranteed anyway), and each record that was not acted on (a saga not started, a signal not delivered) is
//! reported in
//! `batchItemFailures` by its sequence number. Lambda then retries from the lowest failed
//! record, bisecting and finally sending the batch to the on-failure destination; records
//! after it are delivered again, which the idempotent start absorbs. A malformed record is
//! reported too, and logged as poison: it reaches the dead-letter queue after the bounded
//! retries instead of being retried forever or dropped silently. MODIFY and REMOVE records
//! carry no new event and are skipped.

use super::LambdaEnvError;
use crate::sfn::{StepFunctionsSignaller, StepFunctionsStarter};
use crate::tables::{STATE_MACHINE_ARN_ENV, attrs};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{LambdaEvent, service_fn};
use orders_processor::{
    Delivered, ProcessError, Processed, SagaStarter, Started, TaskSignaller, process_event,
};
use std::sync::Arc;
use tokio::task::JoinSet;

/// The function's main: configuration (the state machine), the Step Functions client, then
/// the runtime loop.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    let (arn, sdk) = super::start(state_machine_arn_from_env).await?;
    let client = aws_sdk_sfn::Client::new(&sdk);
    let ports = Ports {
        starter: Arc::new(StepFunctionsStarter::new(client.clone(), arn.clone())),
        signaller: Arc::new(StepFunctionsSignaller::new(client, arn)),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let ports = ports.clone();
        async move { Ok::<_, lambda_runtime::Error>(handle_batch(event.payload, ports).await) }
    }))
    .await
}

/// What the processor acts through: the saga starter and the signal deliverer.
#[derive(Clone)]
pub struct Ports {
    pub starter: Arc<dyn SagaStarter>,
    pub signaller: Arc<dyn TaskSignaller>,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Started(Started),
    Signalled(Delivered),
    Skipped,
    Failed(String),
}

/// Handles one batch and answers with the records to retry.
pub async fn handle_batch(event: Event, ports: Ports) -> DynamoDbEventResponse {
    let mut tasks = JoinSet::new();
    for (index, record) in event.records.into_iter().enumerate() {
        let ports = ports.clone();
        tasks.spawn(async move {
            let id = record.change.sequence_number.clone();
            (index, id, handle_record(&record, &ports).await)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, id, RecordOutcome::Failed(reason))) => {
                tracing::error!(record = index, sequence = ?id, %reason, "record not acted on");
                failed.push((index, id));
            }
            Ok((index, id, outcome)) => {
                tracing::info!(record = index, sequence = ?id, ?outcome, "record handled");
            }
            // A panicking start cannot be tied to its record, so the whole batch is retried.
            Err(e) => {
                tracing::error!(error = %e, "record task failed; retrying the whole batch");
                return whole_batch_failed();
            }
        }
    }
    failed.sort();
    let mut response = DynamoDbEventResponse::default();
    for (_, id) in failed {
        let Some(id) = id else {
            // Without a sequence number Lambda cannot retry one record: retry them all.
            return whole_batch_failed();
        };
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(id);
        response.batch_item_failures.push(failure);
    }
    response
}

/// A failure with an empty identifier makes Lambda treat the whole batch as failed.
fn whole_batch_failed() -> DynamoDbEventResponse {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(String::new());
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
    response
}

pub async fn handle_record(record: &EventRecord, ports: &Ports) -> RecordOutcome {
    if record.event_name != "INSERT" {
        return RecordOutcome::Skipped;
    }
    let payload = match event_text(record) {
        Ok(text) => text,
        Err(reason) => return RecordOutcome::Failed(format!("poison record: {reason}")),
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
            RecordOutcome::Started(started)
        }
        Ok(Processed::Signalled(event, delivered)) => {
            tracing::info!(event_id = %event.id, order_id = %event.subject, ?delivered, "signal delivered");
            RecordOutcome::Signalled(delivered)
        }
        Ok(Processed::PublishOnly(_)) => RecordOutcome::Skipped,
        Err(e @ ProcessError::Poison(_)) => RecordOutcome::Failed(e.to_string()),
        Err(e @ ProcessError::Retryable(_)) => RecordOutcome::Failed(e.to_string()),
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
mod tests {
    use super::*;

    #[test]
    fn only_a_state_machine_arn_is_accepted() {
        let good = "arn:aws:states:us-east-1:123456789012:stateMachine:orders-saga";
        assert_eq!(parse_state_machine_arn(good).unwrap(), good);
        for bad in [
            "",
            "orders-saga",
            "arn:aws:lambda:us-east-1:123456789012:function:orders-steps",
            "arn:aws:states:us-east-1:123456789012:execution:orders-saga:x",
            "arn:aws:states:us-east-1::stateMachine:orders-saga",
        ] {
            assert!(parse_state_machine_arn(bad).is_err(), "{bad:?}");
        }
    }
}
