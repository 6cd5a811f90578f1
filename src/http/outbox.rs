//! `/outbox/parked`: the events the local relay parked because it could never act on them
//! (the `orders parked-events` command prints the same), and the operator's retry: the park is
//! cleared and the relay is woken, so it takes the event again on its next pass, as if it had
//! just been written. Retrying an event whose cause was not fixed parks it again, with the new
//! reason. Admin only; mounted with the console (the API Lambda has no relay: its stream's
//! failures go to the SQS on-failure destination instead).

use super::caller::Authenticated;
use super::console::operator;
use super::problem::{ApiError, Problem};
use super::{ApiResult, AppState, RawId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use orders_domain::EventId;
use orders_domain::store::{ParkedOutboxEvent, RetryParked};
use serde::Serialize;

pub(crate) const PARKED: &str = "/outbox/parked";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PARKED, get(parked_events))
        .route("/outbox/parked/{event_id}/retry", post(retry_parked))
}

/// A parked event, as the relay left it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParkedEventView {
    event_id: String,
    order_id: String,
    /// The CloudEvent type, when the stored event reads as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    event_type: Option<String>,
    /// Why the relay parked it.
    reason: String,
    attempts: u32,
    parked_at: String,
}

impl From<ParkedOutboxEvent> for ParkedEventView {
    fn from(p: ParkedOutboxEvent) -> Self {
        ParkedEventView {
            event_id: p.event_id,
            order_id: p.order_id,
            event_type: p.event_type,
            reason: p.reason,
            attempts: p.attempts,
            parked_at: p.parked_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ParkedEventList {
    events: Vec<ParkedEventView>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParkedRetried {
    event_id: EventId,
    /// Always `PENDING`: the relay takes it again.
    #[schema(example = "PENDING")]
    status: &'static str,
}

#[utoipa::path(get, path = "/outbox/parked", tag = "operations",
    responses((status = 200, body = ParkedEventList, description = "Every parked outbox event, oldest first"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn parked_events(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<ParkedEventList>> {
    let store = operator(&s, &caller)?;
    let parked = store.parked().await?;
    Ok(Json(ParkedEventList {
        events: parked.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(post, path = "/outbox/parked/{eventId}/retry", tag = "operations",
    params(("eventId" = String, Path, description = "The event's id (UUID)")),
    responses((status = 202, body = ParkedRetried, description = "No longer parked: the relay takes it again"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No outbox event with that id"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The event is not parked"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn retry_parked(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): RawId,
) -> ApiResult {
    let store = operator(&s, &caller)?;
    let not_found = || ApiError::NotFound(format!("no outbox event {id}"));
    let event: EventId = id.parse().map_err(|_| not_found())?;
    match store.retry_parked(event).await? {
        RetryParked::Retried => {
            tracing::info!(event = %event, "parked outbox event released for another try");
            let body = ParkedRetried {
                event_id: event,
                status: "PENDING",
            };
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
        RetryParked::NotFound => Err(not_found()),
        RetryParked::NotParked => Err(ApiError::Conflict(
            "the event is not parked: only a parked event is tried again".into(),
        )),
    }
}
