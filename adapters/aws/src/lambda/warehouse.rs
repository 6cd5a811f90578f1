//! The warehouse worker Lambda on the warehouse queue (SQS event source with
//! `ReportBatchItemFailures`): each message is a shipment request `{orderId, items,
//! taskToken}` that the PrepareShipment Task put there (`sqs:sendMessage.waitForTaskToken`).
//!
//! Per message: `SendTaskHeartbeat` (the task is being worked on; the clock of its
//! `HeartbeatSeconds` restarts), "packing" for `ORDERS_WAREHOUSE_PACKING_MS` with a heartbeat
//! every [`HEARTBEAT_EVERY`], then `SendTaskSuccess` with `{"trackingNumber": "TRK-<12 hex>",
//! "shippedAt": <RFC 3339 UTC>}`. Invariants: a token Step Functions says is gone (used, timed
//! out, unknown) means nothing waits for this parcel, so the message is done (deleted), never
//! retried; a failure that may pass (throttling, the network) reports that message in
//! `batchItemFailures`, so SQS delivers it again and, after the queue's `maxReceiveCount`,
//! moves it to the dead-letter queue; so does a message that is not a shipment request
//! (poison: visible in the DLQ, not dropped). Messages of a batch are handled concurrently.

use super::LambdaEnvError;
use crate::functions::WAREHOUSE_PACKING_MS_ENV;
use crate::sfn::{TaskTokens, TokenError};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{SecondsFormat, Utc};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Packing time when the variable is unset: keeps an order's happy path short.
pub const DEFAULT_PACKING: Duration = Duration::from_millis(50);
/// The longest packing accepted: well inside the function's timeout.
pub const MAX_PACKING: Duration = Duration::from_secs(600);
/// How often a long packing sends a heartbeat; well inside the Task's `HeartbeatSeconds` (300).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(60);

/// What the function needs from its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarehouseConfig {
    pub packing: Duration,
}

impl WarehouseConfig {
    pub fn from_env() -> Result<Self, LambdaEnvError> {
        packing_from(std::env::var(WAREHOUSE_PACKING_MS_ENV).ok().as_deref())
            .map(|packing| WarehouseConfig { packing })
    }
}

/// The packing time from its variable: unset or blank is [`DEFAULT_PACKING`], else whole
/// milliseconds up to [`MAX_PACKING`].
pub fn packing_from(value: Option<&str>) -> Result<Duration, LambdaEnvError> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_PACKING);
    };
    match text.parse::<u64>() {
        Ok(ms) if Duration::from_millis(ms) <= MAX_PACKING => Ok(Duration::from_millis(ms)),
        _ => Err(LambdaEnvError::Invalid {
            name: WAREHOUSE_PACKING_MS_ENV,
            reason: format!(
                "{text:?} is not a whole number of milliseconds from 0 to {}",
                MAX_PACKING.as_millis()
            ),
        }),
    }
}

/// A shipment request, as the PrepareShipment Task's `MessageBody` builds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentRequest {
    pub order_id: String,
    #[serde(default)]
    pub items: Value,
    pub task_token: String,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    /// The task was completed with this tracking number.
    Shipped(String),
    /// Nothing waits for this parcel any more (the token is used, timed out or unknown).
    Stale,
    /// Not done; SQS delivers the message again (then the dead-letter queue).
    Failed(String),
}

/// A tracking number: `TRK-` and 12 hex digits, random (48 bits).
pub fn tracking_number() -> String {
    format!("TRK-{:012X}", fastrand::u64(..) & 0xFFFF_FFFF_FFFF)
}

/// The worker over the task-token calls.
pub struct Warehouse {
    pub tokens: TaskTokens,
    pub config: WarehouseConfig,
}

impl Warehouse {
    /// Handles one batch and answers with the messages to deliver again.
    pub async fn handle_batch(self: &Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        let mut tasks = JoinSet::new();
        for message in event.records {
            let worker = self.clone();
            tasks.spawn(async move {
                let outcome = worker.handle_message(&message).await;
                (message.message_id, outcome)
            });
        }
        let mut response = SqsBatchResponse::default();
        let mut failed = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((id, MessageOutcome::Failed(reason))) => {
                    tracing::error!(message_id = ?id, %reason, "shipment request not done");
                    failed.push(id);
                }
                Ok((id, outcome)) => {
                    tracing::info!(message_id = ?id, ?outcome, "shipment request done");
                }
                // A panic cannot be tied to its message: deliver the whole batch again.
                Err(e) => {
                    tracing::error!(error = %e, "message task failed; retrying the whole batch");
                    failed = vec![None];
                    break;
                }
            }
        }
        for id in failed {
            let mut failure = BatchItemFailure::default();
            // An empty identifier makes Lambda treat the whole batch as failed.
            failure.item_identifier = id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
        response
    }

    pub async fn handle_message(&self, message: &SqsMessage) -> MessageOutcome {
        let body = message.body.as_deref().unwrap_or_default();
        let request: ShipmentRequest = match serde_json::from_str(body) {
            Ok(r) => r,
            Err(e) => return MessageOutcome::Failed(format!("poison message: {e}")),
        };
        if request.task_token.is_empty() {
            return MessageOutcome::Failed("poison message: empty taskToken".into());
        }
        let token = request.task_token.as_str();
        if let Err(e) = self.tokens.heartbeat(token).await {
            return settle(e);
        }
        let mut left = self.config.packing;
        while !left.is_zero() {
            let chunk = left.min(HEARTBEAT_EVERY);
            tokio::time::sleep(chunk).await;
            left -= chunk;
            if !left.is_zero()
                && let Err(e) = self.tokens.heartbeat(token).await
            {
                return settle(e);
            }
        }
        let tracking = tracking_number();
        let shipment = json!({
            "trackingNumber": tracking,
            "shippedAt": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        match self.tokens.succeed(token, &shipment).await {
            Ok(()) => {
                tracing::info!(order_id = %request.order_id, %tracking, "parcel shipped");
                MessageOutcome::Shipped(tracking)
            }
            Err(e) => settle(e),
        }
    }
}

/// A token call's refusal: gone is done, anything else is delivered again.
fn settle(e: TokenError) -> MessageOutcome {
    match e {
        TokenError::Closed | TokenError::Unknown => MessageOutcome::Stale,
        TokenError::Rejected(_) | TokenError::Retryable(_) => MessageOutcome::Failed(e.to_string()),
    }
}

/// The function's main: configuration (packing time), the Step Functions client, then the
/// runtime loop.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    let (config, sdk) = super::start(WarehouseConfig::from_env).await?;
    let worker = Arc::new(Warehouse {
        tokens: TaskTokens::new(aws_sdk_sfn::Client::new(&sdk)),
        config,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move {
            let answer = worker.handle_batch(event.payload).await;
            orders_telemetry::flush().await;
            Ok::<_, lambda_runtime::Error>(answer)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_time_is_checked() {
        assert_eq!(packing_from(None).unwrap(), DEFAULT_PACKING);
        assert_eq!(packing_from(Some(" ")).unwrap(), DEFAULT_PACKING);
        assert_eq!(packing_from(Some("0")).unwrap(), Duration::ZERO);
        assert_eq!(
            packing_from(Some("250")).unwrap(),
            Duration::from_millis(250)
        );
        for bad in ["-1", "1.5", "ten", "600001"] {
            let err = packing_from(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(WAREHOUSE_PACKING_MS_ENV), "{bad}: {err}");
        }
    }

    #[test]
    fn tracking_numbers_are_trk_and_12_hex_digits() {
        let t = tracking_number();
        let hex = t.strip_prefix("TRK-").expect("prefix");
        assert_eq!(hex.len(), 12, "{t}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{t}");
        assert!(orders_domain::lifecycle::valid_tracking_number(&t));
    }

    #[test]
    fn gone_tokens_are_done_and_the_rest_is_retried() {
        assert_eq!(settle(TokenError::Closed), MessageOutcome::Stale);
        assert_eq!(settle(TokenError::Unknown), MessageOutcome::Stale);
        assert!(matches!(
            settle(TokenError::Retryable("t".into())),
            MessageOutcome::Failed(_)
        ));
        assert!(matches!(
            settle(TokenError::Rejected("r".into())),
            MessageOutcome::Failed(_)
        ));
    }
}
