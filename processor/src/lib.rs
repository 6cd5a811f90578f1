//! Outbox processing: turning each outbox event into exactly one saga start.
//!
//! Delivery from the outbox is at-least-once (a crash between "started" and "marked
//! published" replays the event), so correctness rests on the start being idempotent: the
//! execution is named after the event id, and a start that finds that name taken counts as
//! success. The same [`start_event`] serves the local relay ([`relay`]) and, on AWS, the
//! DynamoDB Streams Lambda (`orders_aws::lambda::stream`); only the [`SagaStarter`] behind it
//! differs (the local executor, or Step Functions' StartExecution in `orders_aws::sfn`).
//!
//! # Layout
//!
//! - this file: [`start_event`] and the port [`SagaStarter`] with what a start comes to.
//! - [`relay`]: the local relay and its port [`relay::OutboxSource`] (what it reads the outbox
//!   through; `orders-sqlite` implements it).
//!
//! No adapter lives here: the ports' implementations are in `orders-sqlite` and `orders-aws`.

pub mod relay;

use async_trait::async_trait;
use orders_domain::event::EventError;
use orders_domain::{OutboxEvent, SagaInput};

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

/// Why one event did not lead to a started saga.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// The event can never be processed (undecodable, wrong type): park it, do not retry.
    #[error("poison event: {0}")]
    Poison(#[from] EventError),
    /// The start failed and may succeed later: retry.
    #[error(transparent)]
    Retryable(#[from] StartError),
}

/// Decodes one outbox event and starts its saga.
pub async fn start_event(
    payload: &[u8],
    starter: &dyn SagaStarter,
) -> Result<(OutboxEvent, Started), ProcessError> {
    let event = OutboxEvent::decode(payload)?;
    let started = starter.start(&event.id.to_string(), &event.data).await?;
    Ok((event, started))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_domain::{Cents, CustomerId, EventId, OrderId, ProductId, SagaItem};
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<HashMap<String, SagaInput>>);

    #[async_trait]
    impl SagaStarter for Recorder {
        async fn start(&self, name: &str, input: &SagaInput) -> Result<Started, StartError> {
            let mut m = self.0.lock().unwrap();
            if m.contains_key(name) {
                return Ok(Started::AlreadyExists);
            }
            m.insert(name.to_owned(), input.clone());
            Ok(Started::New)
        }
    }

    fn event() -> OutboxEvent {
        OutboxEvent::order_created(
            EventId::new(),
            chrono::Utc::now(),
            SagaInput {
                order_id: OrderId::new(),
                customer_id: CustomerId::parse("c").unwrap(),
                items: vec![SagaItem {
                    product_id: ProductId::parse("laptop").unwrap(),
                    quantity: 1,
                }],
                total_cents: Cents(100),
                payment_method: "pm_card_visa".into(),
                voucher_code: None,
            },
        )
    }

    #[tokio::test]
    async fn a_redelivered_event_starts_one_saga() {
        let rec = Recorder::default();
        let ev = event();
        let payload = serde_json::to_vec(&ev).unwrap();
        assert_eq!(start_event(&payload, &rec).await.unwrap().1, Started::New);
        assert_eq!(
            start_event(&payload, &rec).await.unwrap().1,
            Started::AlreadyExists
        );
        let started = rec.0.lock().unwrap();
        assert_eq!(started.len(), 1);
        assert_eq!(started[&ev.id.to_string()], ev.data);
    }

    #[tokio::test]
    async fn poison_is_not_retryable() {
        let rec = Recorder::default();
        assert!(matches!(
            start_event(b"not json", &rec).await,
            Err(ProcessError::Poison(_))
        ));
        assert!(rec.0.lock().unwrap().is_empty());
    }
}
