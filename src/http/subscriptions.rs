//! `/subscriptions`: who hears of the public domain events, on the embedded runtime (on AWS
//! the same events go to EventBridge, and consumers subscribe with rules instead), and the
//! dead letters of their deliveries. Admin only.
//!
//! The routes are mounted, and documented, only where the runtime gives the API a
//! [`SubscriptionApi`] (the local stack does; the API Lambda does not). A subscription is
//! created with its URL checked by [`UrlPolicy`] and a new `whsec_` secret, shown in the
//! creation's answer and never again; it receives every event of its types written after it
//! exists. Unknown or malformed ids are 404 alike. The deliveries themselves are sent by the
//! local dispatcher (`crate::local::deliveries`).

mod url_policy;
mod views;

use super::caller::Authenticated;
use super::json::JsonBody;
use super::problem::{ApiError, Problem};
use super::{ApiResult, AppState, RawId};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use orders_domain::standard_webhooks::WebhookSecret;
use orders_domain::subscriptions::{
    DeliveryCursor, DeliveryQuery, DeliveryState, NewSubscription, RetryOutcome, SubscriberUrl,
    SubscriptionStore,
};
use orders_domain::{EventId, SubscriptionId};
use serde::Deserialize;
use std::sync::Arc;
pub(crate) use url_policy::CheckedResolver;
pub use url_policy::UrlPolicy;
use views::{
    CreateSubscriptionRequest, CreatedSubscription, DeliveryList, DeliveryView, RetryAccepted,
    SubscriptionList, SubscriptionView,
};

/// What the routes need: the store and the URL rules. Present on the embedded runtime only.
#[derive(Clone)]
pub struct SubscriptionApi {
    pub store: Arc<dyn SubscriptionStore>,
    pub policy: UrlPolicy,
    /// Notified after a subscription is created: the dispatcher reads the subscriptions again.
    pub created: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for SubscriptionApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionApi")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

pub(crate) const PATH: &str = "/subscriptions";

/// Largest page of deliveries.
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 50;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, post(create_subscription).get(list_subscriptions))
        .route(
            "/subscriptions/{id}",
            get(get_subscription).delete(delete_subscription),
        )
        .route("/subscriptions/{id}/deliveries", get(list_deliveries))
        .route(
            "/subscriptions/{id}/deliveries/{event_id}/retry",
            post(retry_delivery),
        )
}

/// The caller must be an admin, and the runtime must have subscriptions.
fn api(s: &AppState, caller: &orders_domain::access::Caller) -> Result<SubscriptionApi, ApiError> {
    caller.require_admin()?;
    s.settings
        .subscriptions
        .clone()
        .ok_or_else(|| ApiError::NotFound("no such resource".into()))
}

fn subscription_id(id: &str) -> Result<SubscriptionId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("no subscription {id}")))
}

#[utoipa::path(post, path = "/subscriptions", tag = "subscriptions", request_body = CreateSubscriptionRequest,
    responses((status = 201, body = CreatedSubscription, description = "Created; `Location` names it. The secret is shown only here.",
            headers(("Location" = String, description = "/subscriptions/{id}"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Invalid body, or a URL the rules refuse"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn create_subscription(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    body: Result<JsonBody, ApiError>,
) -> ApiResult {
    let api = api(&s, &caller)?;
    let JsonBody(body) = body?;
    let request = views::validate(&body, &api.policy).await?;
    let secret = WebhookSecret::generate().map_err(|e| ApiError::Internal(e.to_string()))?;
    let shown = secret.to_string();
    let created = api
        .store
        .create_subscription(NewSubscription {
            id: SubscriptionId::new(),
            url: SubscriberUrl::from_checked(request.url),
            types: request.types,
            secret,
            created_at: s.clock.now(),
        })
        .await?;
    api.created.notify_one();
    tracing::info!(subscription = %created.id, url = %created.url, "subscription created");
    let location = format!("{PATH}/{}", created.id);
    let body = Json(CreatedSubscription::new(created, shown));
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], body).into_response())
}

#[utoipa::path(get, path = "/subscriptions", tag = "subscriptions",
    responses((status = 200, body = SubscriptionList, description = "Every subscription, oldest first; no secrets"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn list_subscriptions(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<SubscriptionList>> {
    let api = api(&s, &caller)?;
    let all = api.store.list_subscriptions().await?;
    Ok(Json(SubscriptionList {
        subscriptions: all.into_iter().map(SubscriptionView::from).collect(),
    }))
}

#[utoipa::path(get, path = "/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id (UUID)")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn get_subscription(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    axum::extract::Path(id): RawId,
) -> ApiResult<Json<SubscriptionView>> {
    let api = api(&s, &caller)?;
    let found = api.store.get_subscription(subscription_id(&id)?).await?;
    let found = found.ok_or_else(|| ApiError::NotFound(format!("no subscription {id}")))?;
    Ok(Json(found.into()))
}

#[utoipa::path(delete, path = "/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id (UUID)")),
    responses((status = 204, description = "Deleted, with its deliveries: none is sent after this"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn delete_subscription(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    axum::extract::Path(id): RawId,
) -> ApiResult {
    let api = api(&s, &caller)?;
    if !api.store.delete_subscription(subscription_id(&id)?).await? {
        return Err(ApiError::NotFound(format!("no subscription {id}")));
    }
    tracing::info!(subscription = %id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only deliveries in this state: `failed` (the dead letters), `pending` or `delivered`.
    #[param(value_type = Option<String>, pattern = "^([pP][eE][nN][dD][iI][nN][gG]|[dD][eE][lL][iI][vV][eE][rR][eE][dD]|[fF][aA][iI][lL][eE][dD])$")]
    status: Option<String>,
    /// Page size, 1-100, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `nextCursor` from the previous page (opaque; anything else is a 400).
    cursor: Option<String>,
}

fn delivery_query(id: SubscriptionId, p: DeliveryParams) -> Result<DeliveryQuery, ApiError> {
    let bad = ApiError::invalid;
    let state = p
        .status
        .map(|s| {
            s.to_ascii_uppercase()
                .parse::<DeliveryState>()
                .map_err(|_| bad("status", "must be pending, delivered or failed"))
        })
        .transpose()?;
    let limit = match p.limit {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| bad("limit", "must be an integer from 1 to 100"))?,
    };
    let after = p
        .cursor
        .map(|c| {
            B64.decode(c.as_bytes())
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|text| text.strip_prefix("d:")?.parse::<i64>().ok())
                .map(DeliveryCursor)
                .ok_or_else(|| bad("cursor", "is not a cursor this service issued"))
        })
        .transpose()?;
    Ok(DeliveryQuery {
        subscription: id,
        state,
        limit,
        after,
    })
}

#[utoipa::path(get, path = "/subscriptions/{id}/deliveries", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id (UUID)"), DeliveryParams),
    responses((status = 200, body = DeliveryList, description = "Its deliveries, oldest event first, each with its last status and error"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn list_deliveries(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    axum::extract::Path(id): RawId,
    params: Result<Query<DeliveryParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<DeliveryList>> {
    let api = api(&s, &caller)?;
    let sub = subscription_id(&id)?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let query = delivery_query(sub, p)?;
    let page = api
        .store
        .deliveries(&query)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no subscription {id}")))?;
    Ok(Json(DeliveryList {
        deliveries: page
            .deliveries
            .into_iter()
            .map(DeliveryView::from)
            .collect(),
        next_cursor: page.next.map(|c| B64.encode(format!("d:{}", c.0))),
    }))
}

#[utoipa::path(post, path = "/subscriptions/{id}/deliveries/{eventId}/retry", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id (UUID)"), ("eventId" = String, Path, description = "The event's id (UUID)")),
    responses((status = 202, body = RetryAccepted, description = "The dead letter is PENDING again, due now, with a new retry window"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such subscription, or no delivery of that event to it"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The delivery is not FAILED, or the subscription is disabled"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn retry_delivery(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    axum::extract::Path((id, event)): axum::extract::Path<(String, String)>,
) -> ApiResult {
    let api = api(&s, &caller)?;
    let sub = subscription_id(&id)?;
    let not_found = || ApiError::NotFound(format!("no delivery of event {event} to {id}"));
    let event_id: EventId = event.parse().map_err(|_| not_found())?;
    match api
        .store
        .retry_delivery(sub, event_id, s.clock.now())
        .await?
    {
        RetryOutcome::Retried => {
            tracing::info!(subscription = %sub, event = %event_id, "dead letter sent again");
            let body = RetryAccepted {
                subscription_id: sub,
                event_id,
                status: DeliveryState::Pending,
            };
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
        RetryOutcome::NotFound => Err(not_found()),
        RetryOutcome::NotFailed => Err(ApiError::Conflict(
            "the delivery is not FAILED: only a dead letter is sent again".into(),
        )),
        RetryOutcome::SubscriptionDisabled => Err(ApiError::Conflict(
            "the subscription is disabled: nothing would be sent".into(),
        )),
    }
}

/// The subscription routes and their schemas, with the public events' (what a subscriber
/// receives), merged into the document where the routes are mounted.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_subscription,
        list_subscriptions,
        get_subscription,
        delete_subscription,
        list_deliveries,
        retry_delivery,
    ),
    tags((name = "subscriptions", description = "Signed webhook deliveries of the public domain events (embedded runtime)"))
)]
pub(crate) struct SubscriptionsDoc;

/// Where a valid token can still be refused: every subscription operation is an admin's.
pub(crate) const ADMIN_OPERATIONS: [(&str, &str); 6] = [
    ("post", "/subscriptions"),
    ("get", "/subscriptions"),
    ("get", "/subscriptions/{id}"),
    ("delete", "/subscriptions/{id}"),
    ("get", "/subscriptions/{id}/deliveries"),
    ("post", "/subscriptions/{id}/deliveries/{eventId}/retry"),
];
