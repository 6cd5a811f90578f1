//! The public domain events: what other services learn about an order. Each is written in the
//! same transaction as the change it reports, so a subscriber hears of every change that was
//! committed and of none that was not.
//!
//! `data` is a documented, versioned snapshot (`docs/events/`, and the OpenAPI document's
//! components): `order.created` carries the saga's input, every other `order.*` type an
//! [`OrderChange`] (the order as it is after the change), `voucher.issued` a
//! [`VoucherIssued`]. These are version 1 of each type; a change that would break a consumer
//! gets a new type name instead (`order.shipped.v2`), so old consumers keep working.
//! `sequence` is the order's `version` after the change: the per-order order consumers sort
//! by, since EventBridge keeps none.

use super::{CloudEvent, EventError, SPEC_VERSION};
use crate::ids::{CustomerId, EventId, OrderId, VoucherCode};
use crate::lifecycle::PaymentId;
use crate::money::{Cents, Currency, as_cents};
use crate::order::OrderStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

crate::wire_names! {
    /// The public event types, which subscriptions choose from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum EventType with ALL {
        OrderCreated = "order.created",
        OrderPaymentProcessed = "order.payment_processed",
        OrderShipped = "order.shipped",
        OrderCompleted = "order.completed",
        OrderCancelled = "order.cancelled",
        OrderFailed = "order.failed",
        VoucherIssued = "voucher.issued",
    }
    unknown: UnknownEventType = |s| UnknownEventType(s.to_owned());
}

impl EventType {
    /// The event a move to `status` publishes; the statuses between (reserved, awaiting
    /// payment, compensating) are the saga's business and publish nothing.
    pub fn for_status(status: OrderStatus) -> Option<EventType> {
        Some(match status {
            OrderStatus::PaymentProcessed => EventType::OrderPaymentProcessed,
            OrderStatus::Shipped => EventType::OrderShipped,
            OrderStatus::Completed => EventType::OrderCompleted,
            OrderStatus::Cancelled => EventType::OrderCancelled,
            OrderStatus::Failed => EventType::OrderFailed,
            _ => return None,
        })
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for EventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(EventType::ALL.map(EventType::as_str)))
            .description(Some("A public event type."))
            .into()
    }
}

impl utoipa::ToSchema for EventType {}

/// `data` of `order.payment_processed`, `order.shipped`, `order.completed`,
/// `order.cancelled` and `order.failed` (version 1): the order as the change left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderChange {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    /// The order's version after the change; the envelope's `sequence`.
    pub version: i64,
    /// What the customer pays, after any voucher discount.
    #[serde(with = "as_cents")]
    #[schema(value_type = i64)]
    pub total_cents: Cents,
    pub currency: Currency,
    /// Why the order failed (`order.failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// The customer's reason, when they gave one (`order.cancelled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    /// The provider's payment (`order.payment_processed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    /// The warehouse's parcel (`order.shipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}

/// `data` of `voucher.issued` (version 1): the voucher an order earned for its customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoucherIssued {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    #[schema(value_type = String)]
    pub voucher_code: VoucherCode,
    #[serde(with = "as_cents")]
    #[schema(value_type = i64)]
    pub discount_cents: Cents,
}

/// A public event as stored and sent, its `data` left as JSON: what deliveries and the
/// EventBridge publisher read.
pub type PublicEvent = CloudEvent<Value>;

impl CloudEvent<OrderChange> {
    /// The event of a status change, or `None` for a status that publishes nothing.
    pub fn order_changed(time: DateTime<Utc>, change: OrderChange) -> Option<Self> {
        let kind = EventType::for_status(change.status)?;
        let mut ev =
            CloudEvent::envelope(EventId::new(), kind.as_str(), time, change.order_id, change);
        ev.sequence = Some(ev.data.version.to_string());
        Some(ev)
    }
}

impl CloudEvent<VoucherIssued> {
    /// `voucher.issued`, at the order's `version` after issuing.
    pub fn voucher_issued(time: DateTime<Utc>, version: i64, voucher: VoucherIssued) -> Self {
        let order = voucher.order_id;
        let mut ev = CloudEvent::envelope(
            EventId::new(),
            EventType::VoucherIssued.as_str(),
            time,
            order,
            voucher,
        );
        ev.sequence = Some(version.to_string());
        ev
    }
}

impl<D: Serialize> CloudEvent<D> {
    /// The envelope as it is stored and published: compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serializes")
    }
}

impl PublicEvent {
    /// Decodes a public event of any type, `order.created` included; a signal or an unknown
    /// type is an error.
    pub fn decode(json: &[u8]) -> Result<Self, EventError> {
        let ev: PublicEvent =
            serde_json::from_slice(json).map_err(|e| EventError::Malformed(e.to_string()))?;
        if ev.specversion != SPEC_VERSION {
            return Err(EventError::SpecVersion(ev.specversion));
        }
        ev.kind()?;
        if ev.sequence_number().is_none() {
            return Err(EventError::Malformed(format!(
                "event {} has no decimal sequence",
                ev.id
            )));
        }
        Ok(ev)
    }

    /// The event's public type.
    pub fn kind(&self) -> Result<EventType, EventError> {
        self.event_type
            .parse()
            .map_err(|_| EventError::Type(self.event_type.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: OrderStatus) -> OrderChange {
        OrderChange {
            order_id: OrderId::new(),
            customer_id: CustomerId::parse("c1").unwrap(),
            status,
            version: 7,
            total_cents: Cents(12_000),
            currency: Currency::Eur,
            failure_reason: None,
            cancellation_reason: None,
            payment_id: None,
            tracking_number: Some("TRK-1".into()),
        }
    }

    #[test]
    fn a_status_change_publishes_its_type_at_its_version() {
        let ev = CloudEvent::order_changed(Utc::now(), change(OrderStatus::Shipped)).unwrap();
        let json: Value = serde_json::from_str(&ev.to_json()).unwrap();
        assert_eq!(json["type"], "order.shipped");
        assert_eq!(json["sequence"], "7");
        assert_eq!(json["subject"], json["data"]["orderId"]);
        assert_eq!(json["data"]["totalCents"], 12_000);
        assert_eq!(json["data"]["trackingNumber"], "TRK-1");
        assert!(json["data"].get("failureReason").is_none());
        let back = PublicEvent::decode(ev.to_json().as_bytes()).unwrap();
        assert_eq!(back.kind().unwrap(), EventType::OrderShipped);
        assert_eq!(back.sequence_number(), Some(7));
    }

    #[test]
    fn the_saga_s_own_statuses_publish_nothing() {
        for status in OrderStatus::ALL {
            let published = CloudEvent::order_changed(Utc::now(), change(status)).is_some();
            let expected = matches!(
                status,
                OrderStatus::PaymentProcessed
                    | OrderStatus::Shipped
                    | OrderStatus::Completed
                    | OrderStatus::Cancelled
                    | OrderStatus::Failed
            );
            assert_eq!(published, expected, "{status}");
        }
    }

    #[test]
    fn signals_and_unknown_types_are_not_public() {
        let mut json: Value = serde_json::from_str(
            &CloudEvent::order_changed(Utc::now(), change(OrderStatus::Completed))
                .unwrap()
                .to_json(),
        )
        .unwrap();
        json["type"] = super::super::TASK_SIGNAL.into();
        assert!(matches!(
            PublicEvent::decode(json.to_string().as_bytes()),
            Err(EventError::Type(_))
        ));
        json["type"] = "order.completed".into();
        json["sequence"] = "seven".into();
        assert!(PublicEvent::decode(json.to_string().as_bytes()).is_err());
        assert_eq!(
            "order.deleted".parse::<EventType>(),
            Err(UnknownEventType("order.deleted".into()))
        );
    }
}
