//! The outbox's events: CloudEvents 1.0 envelopes ([`CloudEvent`]).
//!
//! `order.created` ([`OutboxEvent`], `data` the saga's input) is written in the same
//! transaction as the order, read by the relay (local) or the DynamoDB Streams processor
//! (AWS), and its `id` becomes the saga execution's name. A [`SignalEvent`] carries a result
//! for a waiting saga (a payment webhook, a cancellation) the same way; it is internal and
//! never published. Every later status change writes a [`PublicEvent`] in the transaction
//! that makes it (`public`); with `order.created` these are what subscribers receive, in
//! `sequence` order per order. The saga input carries amounts as integer cents: it is read by machines,
//! never shown to people.

mod public;
pub mod schema;
mod trace;

pub use public::{EventType, OrderChange, PublicEvent, UnknownEventType, VoucherIssued};
pub use trace::{Traceparent, TraceparentError};

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

/// A CloudEvents 1.0 envelope (structured JSON) with the `sequence` and `traceparent`
/// extensions. Every outbox row is one: [`OutboxEvent`], [`SignalEvent`] and the public
/// [`PublicEvent`]s differ only in their `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudEvent<D> {
    pub specversion: String,
    pub id: EventId,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "crate::time::rfc3339")]
    pub time: DateTime<Utc>,
    pub subject: OrderId,
    pub datacontenttype: String,
    /// The order's `version` after the change the event reports, as a decimal string:
    /// increasing per order (not contiguous). Signals carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    /// The W3C trace the change belongs to (the request's, or one it started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<Traceparent>,
    pub data: D,
}

impl<D> CloudEvent<D> {
    fn envelope(
        id: EventId,
        event_type: &str,
        time: DateTime<Utc>,
        subject: OrderId,
        data: D,
    ) -> Self {
        CloudEvent {
            specversion: SPEC_VERSION.to_owned(),
            id,
            source: SOURCE.to_owned(),
            event_type: event_type.to_owned(),
            time,
            subject,
            datacontenttype: "application/json".to_owned(),
            sequence: None,
            traceparent: None,
            data,
        }
    }

    /// The order's version this event reports, parsed from `sequence`.
    pub fn sequence_number(&self) -> Option<u64> {
        self.sequence.as_deref().and_then(|s| s.parse().ok())
    }
}

/// `order.created`: written with the order; its `data` is the saga's input.
pub type OutboxEvent = CloudEvent<SagaInput>;

/// An internal signal for the order's saga, in the outbox envelope.
pub type SignalEvent = CloudEvent<TaskSignal>;

impl OutboxEvent {
    /// The order's first event: `sequence` 1, the version every order is created at.
    pub fn order_created(id: EventId, time: DateTime<Utc>, data: SagaInput) -> Self {
        let mut ev = CloudEvent::envelope(id, ORDER_CREATED, time, data.order_id, data);
        ev.sequence = Some("1".to_owned());
        ev
    }

    /// The same event in the trace `traceparent`.
    pub fn in_trace(mut self, traceparent: Option<Traceparent>) -> Self {
        self.traceparent = traceparent;
        self
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

impl SignalEvent {
    pub fn new(time: DateTime<Utc>, order: OrderId, signal: TaskSignal) -> Self {
        CloudEvent::envelope(EventId::new(), TASK_SIGNAL, time, order, signal)
    }
}

/// Any outbox row, by its `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxMessage {
    /// Starts the saga, and is published.
    OrderCreated(OutboxEvent),
    /// Internal: delivered to the waiting saga, never published.
    Signal(SignalEvent),
    /// Any other public type: only published.
    Published(PublicEvent),
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
        if head.event_type == ORDER_CREATED {
            return OutboxEvent::decode(json).map(OutboxMessage::OrderCreated);
        }
        if head.event_type != TASK_SIGNAL {
            return PublicEvent::decode(json).map(OutboxMessage::Published);
        }
        let ev: SignalEvent =
            serde_json::from_slice(json).map_err(|e| EventError::Malformed(e.to_string()))?;
        if ev.specversion != SPEC_VERSION {
            return Err(EventError::SpecVersion(ev.specversion));
        }
        Ok(OutboxMessage::Signal(ev))
    }
}

/// Everything the saga needs, so no step has to read the order to learn what to do. Also the
/// `data` of the public `order.created` (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SagaInput {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub items: Vec<SagaItem>,
    /// What the customer pays, after any voucher discount.
    #[serde(with = "as_cents")]
    #[schema(value_type = i64)]
    pub total_cents: Cents,
    pub payment_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voucher_code: Option<VoucherCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
