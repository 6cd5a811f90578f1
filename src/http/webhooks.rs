//! `POST /webhooks/payments`: the payment provider's asynchronous result.
//!
//! Not token-authenticated: the provider proves itself with a Standard Webhooks signature
//! over the body as sent, so the bytes are verified before anything reads them, and a
//! refused signature (missing, wrong, or a timestamp more than five minutes off) is a 401
//! that stores nothing. Without a configured secret nothing can be verified: 503. A signed
//! body that is not a payment result is a 400 (the provider's bug, not a retry's cure); an
//! event type this service does not handle is acknowledged, since providers add types.
//!
//! The 200 is sent only once `OrderStore::apply_payment_webhook` has committed: the result,
//! its dedup record and the saga's signal are durable before the provider stops retrying.

mod payload;

use super::json::{RawBody, parse_strict};
use super::problem::{ApiError, Problem};
use super::{ApiResult, AppState};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use orders_domain::lifecycle::{PaymentWebhook, WebhookOutcome};
use orders_domain::standard_webhooks::{self, Header};
use payload::Payload;
use serde::{Deserialize, Serialize};

/// The operation's path, also listed among the routes no token is asked for.
pub const PATH: &str = "/webhooks/payments";

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, post(payment_webhook))
}

/// A payment webhook's body, for the OpenAPI document; the handler reads the raw bytes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PaymentWebhookBody {
    /// Other types are acknowledged (2xx) and ignored.
    #[serde(rename = "type")]
    event_type: PaymentEventType,
    /// When the provider created the event (the Standard Webhooks payload field; not used).
    timestamp: Option<String>,
    data: PaymentWebhookData,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub enum PaymentEventType {
    #[serde(rename = "payment.succeeded")]
    Succeeded,
    #[serde(rename = "payment.failed")]
    Failed,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct PaymentWebhookData {
    payment_id: orders_domain::PaymentId,
    #[schema(value_type = String, format = Uuid)]
    order_id: orders_domain::OrderId,
    /// The charged amount in EUR (two decimals at most).
    #[schema(value_type = f64, minimum = 0, multiple_of = 0.01, example = 1299.99)]
    amount: f64,
    /// Why the payment failed, for `payment.failed`.
    #[schema(min_length = 1, max_length = 500, example = "card declined")]
    reason: Option<String>,
}

/// What the webhook came to: acknowledged in every case, so the provider stops retrying.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookReceived {
    received: bool,
    outcome: Outcome,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Recorded; the waiting order resumes.
    Applied,
    /// This `webhook-id` was applied before: no second effect.
    Duplicate,
    /// A charge that succeeded too late (the order was cancelled or failed): refunded.
    Refunded,
    /// Recorded (or of a type not handled) with nothing to do; the reason is logged.
    Ignored,
}

fn received(outcome: Outcome) -> Json<WebhookReceived> {
    Json(WebhookReceived {
        received: true,
        outcome,
    })
}

#[utoipa::path(post, path = "/webhooks/payments", tag = "webhooks",
    request_body = PaymentWebhookBody,
    security(("webhookId" = [], "webhookTimestamp" = [], "webhookSignature" = [])),
    responses(
        (status = 200, body = WebhookReceived, description = "Durably recorded (or a duplicate, or a type not handled): the provider may stop retrying"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Well signed, but not a payment result"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Missing or invalid Standard Webhooks signature, or a timestamp more than 5 minutes off: nothing stored",
            headers(("www-authenticate" = String))),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "No webhook secret configured, or overloaded: retry after Retry-After"),
    ))]
pub async fn payment_webhook(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<RawBody, ApiError>,
) -> ApiResult<Json<WebhookReceived>> {
    let Some(secret) = s.settings.payment_webhook_secret.as_ref() else {
        tracing::warn!("payment webhook refused: no webhook secret is configured");
        return Err(ApiError::WebhooksNotConfigured);
    };
    let RawBody(bytes) = body?;
    let header = |h: Header| headers.get(h.name()).and_then(|v| v.to_str().ok());
    let verified = standard_webhooks::verify(
        secret,
        header(Header::Id),
        header(Header::Timestamp),
        header(Header::Signature),
        &bytes,
        s.clock.now(),
    )
    .map_err(|e| {
        tracing::warn!(reason = %e, "payment webhook refused: 401");
        ApiError::BadSignature(e)
    })?;
    let value = parse_strict(&bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let event = match payload::parse(&value).map_err(ApiError::Validation)? {
        Payload::Payment(event) => event,
        Payload::Other(event_type) => {
            tracing::info!(webhook_id = %verified.id, %event_type, "payment webhook of a type not handled: acknowledged");
            return Ok(received(Outcome::Ignored));
        }
    };
    let webhook = PaymentWebhook {
        webhook_id: verified.id,
        result: event.result,
        payment_id: event.payment_id,
        order_id: event.order_id,
        amount: event.amount,
        reason: event.reason,
        received_at: s.clock.now(),
    };
    let outcome = s.store.apply_payment_webhook(&webhook).await?;
    let (id, order, payment) = (&webhook.webhook_id, webhook.order_id, &webhook.payment_id);
    Ok(received(match outcome {
        WebhookOutcome::Applied => {
            tracing::info!(webhook_id = %id, order_id = %order, payment_id = %payment, result = ?webhook.result, "payment webhook applied");
            Outcome::Applied
        }
        WebhookOutcome::Duplicate => {
            tracing::info!(webhook_id = %id, order_id = %order, "payment webhook already applied");
            Outcome::Duplicate
        }
        WebhookOutcome::Refunded => {
            tracing::warn!(webhook_id = %id, order_id = %order, payment_id = %payment, "payment succeeded after its order stopped waiting: refunded");
            Outcome::Refunded
        }
        WebhookOutcome::Ignored(reason) => {
            tracing::warn!(webhook_id = %id, order_id = %order, payment_id = %payment, %reason, "payment webhook ignored");
            Outcome::Ignored
        }
    }))
}
