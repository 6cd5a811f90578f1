//! The outbox's events: CloudEvents 1.0 envelopes.
//!
//! `order.created` ([`OutboxEvent`], `data` the saga's input) is written in the same
//! transaction as the order, read by the relay (local) or the DynamoDB Streams processor
//! (AWS), and its `id` becomes the saga execution's name. A [`SignalEvent`] carries a result
//! for a waiting saga (a payment webhook, a cancellation) the same way; it is internal and
//! never published. The saga input carries amounts as integer cents: it is read by machines,
//! never shown to people.

use crate::ids::{CustomerId, EventId, OrderId, ProductId, VoucherCode};
use crate::lifecycle::TaskSignal;
use crate::money::{Cents, as_cents};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const SPEC_VERSION: &str = "1.0";
pub const ORDER_CREATED: &str = "order.created";
/// The type of the internal signals ([`SignalEvent`]).
pub const TASK_SIGNAL: &str = "orders.internal.task-signal";
pub const SOURCE: &str = "/orders";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub specversion: String,
    pub id: EventId,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "crate::time::rfc3339")]
    pub time: DateTime<Utc>,
    pub subject: OrderId,
    pub datacontenttype: String,
    pub data: SagaInput,
}

impl OutboxEvent {
    pub fn order_created(id: EventId, time: DateTime<Utc>, data: SagaInput) -> Self {
        Self {
            specversion: SPEC_VERSION.to_owned(),
            id,
            source: SOURCE.to_owned(),
            event_type: ORDER_CREATED.to_owned(),
            time,
            subject: data.order_id,
            datacontenttype: "application/json".to_owned(),
            data,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a valid event: {0}")]
    Malformed(String),
    #[error("unsupported specversion {0:?}")]
    SpecVersion(String),
    #[error("unsupported event type {0:?}")]
    Type(String),
    #[error("subject {subject} does not match data.orderId {order}")]
    Subject { subject: OrderId, order: OrderId },
}

impl OutboxEvent {
    /// Decodes and checks an envelope; anything the saga could not act on is an error here,
    /// so a poison event is reported once instead of failing deep inside a saga.
    pub fn decode(json: &[u8]) -> Result<Self, EventError> {
        let ev: OutboxEvent =
            serde_json::from_slice(json).map_err(|e| EventError::Malformed(e.to_string()))?;
        if ev.specversion != SPEC_VERSION {
            return Err(EventError::SpecVersion(ev.specversion));
        }
        if ev.event_type != ORDER_CREATED {
            return Err(EventError::Type(ev.event_type));
        }
        if ev.subject != ev.data.order_id {
            return Err(EventError::Subject {
                subject: ev.subject,
                order: ev.data.order_id,
            });
        }
        Ok(ev)
    }
}

/// An internal signal for the order's saga, in the outbox envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalEvent {
    pub specversion: String,
    pub id: EventId,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "crate::time::rfc3339")]
    pub time: DateTime<Utc>,
    pub subject: OrderId,
    pub datacontenttype: String,
    pub data: TaskSignal,
}

impl SignalEvent {
    pub fn new(time: DateTime<Utc>, order: OrderId, signal: TaskSignal) -> Self {
        SignalEvent {
            specversion: SPEC_VERSION.to_owned(),
            id: EventId::new(),
            source: SOURCE.to_owned(),
            event_type: TASK_SIGNAL.to_owned(),
            time,
            subject: order,
            datacontenttype: "application/json".to_owned(),
            data: signal,
        }
    }
}

/// Any outbox row, by its `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxMessage {
    OrderCreated(OutboxEvent),
    Signal(SignalEvent),
}

impl OutboxMessage {
    /// Decodes and checks a row of either kind; an unknown type is poison.
    pub fn decode(json: &[u8]) -> Result<Self, EventError> {
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "type")]
            event_type: String,
        }
        let head: Head =
            serde_json::from_slice(json).map_err(|e| EventError::Malformed(e.to_string()))?;
        if head.event_type != TASK_SIGNAL {
            return OutboxEvent::decode(json).map(OutboxMessage::OrderCreated);
        }
        let ev: SignalEvent =
            serde_json::from_slice(json).map_err(|e| EventError::Malformed(e.to_string()))?;
        if ev.specversion != SPEC_VERSION {
            return Err(EventError::SpecVersion(ev.specversion));
        }
        Ok(OutboxMessage::Signal(ev))
    }
}

/// Everything the saga needs, so no step has to read the order to learn what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SagaInput {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub items: Vec<SagaItem>,
    /// What the customer pays, after any voucher discount.
    #[serde(with = "as_cents")]
    pub total_cents: Cents,
    pub payment_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voucher_code: Option<VoucherCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SagaItem {
    pub product_id: ProductId,
    pub quantity: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OutboxEvent {
        let order_id = OrderId::new();
        OutboxEvent::order_created(
            EventId::new(),
            Utc::now(),
            SagaInput {
                order_id,
                customer_id: CustomerId::parse("c1").unwrap(),
                items: vec![SagaItem {
                    product_id: ProductId::parse("laptop").unwrap(),
                    quantity: 2,
                }],
                total_cents: Cents(259_998),
                payment_method: "pm_card_visa".into(),
                voucher_code: None,
            },
        )
    }

    #[test]
    fn envelope_round_trips_with_cloudevents_names() {
        let ev = sample();
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "order.created");
        assert_eq!(json["subject"], ev.data.order_id.to_string());
        assert_eq!(json["data"]["totalCents"], 259_998);
        assert_eq!(
            OutboxEvent::decode(json.to_string().as_bytes()).unwrap(),
            ev
        );
    }

    #[test]
    fn signals_and_orders_decode_by_type() {
        let order = OrderId::new();
        let signal = SignalEvent::new(
            Utc::now(),
            order,
            TaskSignal::CancelWaiting {
                execution: "e".into(),
                reason: None,
            },
        );
        let json = serde_json::to_vec(&signal).unwrap();
        assert_eq!(
            OutboxMessage::decode(&json).unwrap(),
            OutboxMessage::Signal(signal)
        );
        let created = serde_json::to_vec(&sample()).unwrap();
        assert!(matches!(
            OutboxMessage::decode(&created).unwrap(),
            OutboxMessage::OrderCreated(_)
        ));
        assert!(OutboxMessage::decode(b"{\"type\":\"order.deleted\"}").is_err());
    }

    #[test]
    fn decode_rejects_poison() {
        assert!(matches!(
            OutboxEvent::decode(b"{"),
            Err(EventError::Malformed(_))
        ));
        let mut json = serde_json::to_value(sample()).unwrap();
        json["type"] = "order.deleted".into();
        assert!(matches!(
            OutboxEvent::decode(json.to_string().as_bytes()),
            Err(EventError::Type(_))
        ));
        let mut json = serde_json::to_value(sample()).unwrap();
        json["subject"] = OrderId::new().to_string().into();
        assert!(matches!(
            OutboxEvent::decode(json.to_string().as_bytes()),
            Err(EventError::Subject { .. })
        ));
    }
}
