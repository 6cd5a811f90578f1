//! What the subscription routes take and answer: the create request's validation (every
//! field error at once, the URL rules last since they may resolve a name) and the JSON views.
//! A secret appears in one view only, the creation's.

use super::url_policy::UrlPolicy;
use crate::http::problem::ApiError;
use orders_domain::subscriptions::{Delivery, DeliveryState, Subscription};
use orders_domain::time::format_millis as format_ts;
use orders_domain::validation::FieldError;
use orders_domain::{EventId, EventType, OrderId, SubscriptionId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /subscriptions` (documentation of the body; [`validate`] reads it).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CreateSubscriptionRequest {
    /// Where deliveries are posted: an absolute http(s) URL without user name or password.
    /// Link-local and cloud metadata addresses are always refused, loopback and private ones
    /// unless the service runs with `ORDERS_ALLOW_PRIVATE_SUBSCRIBERS=true`; a host name must
    /// resolve, to allowed addresses only.
    #[schema(max_length = 2048, pattern = "^[hH][tT][tT][pP][sS]?://")]
    url: String,
    /// The public event types to deliver, each once.
    #[schema(min_items = 1, max_items = 7)]
    types: Vec<EventType>,
}

/// A valid create request.
pub struct NewRequest {
    pub url: String,
    pub types: Vec<EventType>,
}

fn error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn types_of(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Vec<EventType> {
    let Some(Value::Array(items)) = value else {
        let message = match value {
            None | Some(Value::Null) => "is required",
            Some(_) => "must be an array of event types",
        };
        errors.push(error("types", message));
        return Vec::new();
    };
    if items.is_empty() {
        errors.push(error("types", "must name at least one event type"));
    }
    let mut types = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("types[{i}]");
        match item.as_str().map(str::parse::<EventType>) {
            Some(Ok(kind)) if types.contains(&kind) => {
                errors.push(error(&field, format!("{kind} is named twice")));
            }
            Some(Ok(kind)) => types.push(kind),
            _ => {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                errors.push(error(
                    &field,
                    format!("must be one of {}", known.join(", ")),
                ));
            }
        }
    }
    types
}

/// Checks the body; the URL against `policy` (with DNS for a host name) only when everything
/// else is well-formed enough to judge it.
pub async fn validate(body: &Value, policy: &UrlPolicy) -> Result<NewRequest, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("", "the body must be a JSON object"))?;
    let mut errors: Vec<FieldError> = obj
        .keys()
        .filter(|k| !matches!(k.as_str(), "url" | "types"))
        .map(|k| error(k, "unknown field"))
        .collect();
    let types = types_of(obj.get("types"), &mut errors);
    let raw = match obj.get("url") {
        Some(Value::String(url)) => Some(url.as_str()),
        None | Some(Value::Null) => {
            errors.push(error("url", "is required"));
            None
        }
        Some(_) => {
            errors.push(error("url", "must be a string"));
            None
        }
    };
    let url = match raw {
        Some(raw) => match policy.check(raw).await {
            Ok(url) => Some(url.to_string()),
            Err(refused) => {
                errors.push(error("url", refused.to_string()));
                None
            }
        },
        None => None,
    };
    match url {
        Some(url) if errors.is_empty() => Ok(NewRequest { url, types }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// A subscription, without its secret.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    id: SubscriptionId,
    url: String,
    types: Vec<EventType>,
    created_at: String,
    /// Set once the subscription is disabled (its subscriber answered 410 Gone): it gets no
    /// new deliveries, and those pending then were dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        SubscriptionView {
            id: s.id,
            url: s.url.as_str().to_owned(),
            types: s.types,
            created_at: format_ts(s.created_at),
            disabled_at: s.disabled.as_ref().map(|d| format_ts(d.at)),
            disabled_reason: s.disabled.map(|d| d.reason),
        }
    }
}

/// `201` of `POST /subscriptions`: the only answer that shows the secret.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSubscription {
    id: SubscriptionId,
    url: String,
    types: Vec<EventType>,
    /// The Standard Webhooks secret (`whsec_` and base64) every delivery is signed with.
    /// Shown once: keep it.
    secret: String,
    created_at: String,
}

impl CreatedSubscription {
    pub fn new(s: Subscription, secret: String) -> Self {
        CreatedSubscription {
            id: s.id,
            url: s.url.as_str().to_owned(),
            types: s.types,
            secret,
            created_at: format_ts(s.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionView>,
}

/// One event's delivery to the subscription.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    event_id: EventId,
    #[serde(rename = "type")]
    event_type: EventType,
    order_id: OrderId,
    /// The event's `sequence` (decimal string, increasing per order).
    sequence: String,
    status: DeliveryState,
    attempts: u32,
    /// The subscriber's HTTP status on the last attempt; none when it did not answer.
    last_status: Option<u16>,
    /// Why the last attempt failed, or why the delivery was given up on.
    last_error: Option<String>,
    /// PENDING: the next attempt, not before.
    next_attempt_at: Option<String>,
    /// DELIVERED or FAILED: when.
    finished_at: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            event_id: d.event_id,
            event_type: d.event_type,
            order_id: d.order_id,
            sequence: d.sequence.to_string(),
            status: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at.map(format_ts),
            finished_at: d.finished_at.map(format_ts),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

/// `202` of a retry: the dead letter is PENDING again and due now.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryAccepted {
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub status: DeliveryState,
}
