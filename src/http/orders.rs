//! `/orders`: create (idempotent), read one, list a customer's; cancel one ([`cancel`]);
//! every customer's, for an operator ([`admin`]).
//!
//! Creation reads as extract -> validate -> build -> store -> respond. Order matters: key
//! syntax (the extractor), then body, then validation, all before any storage call, so a
//! rejected request stores nothing and the client may fix it and retry with the same key.
//! Whether the key replays is decided inside the store's atomic write.

pub(crate) mod admin;
pub mod cancel;
mod view;

pub use view::OrderView;

use super::caller::Authenticated;
use super::idempotency::{IdempotencyHeader, REPLAYED_HEADER, request_fingerprint};
use super::json::JsonBody;
use super::paging;
use super::problem::{ApiError, Problem};
use super::trace::RequestTrace;
use super::{ApiResult, AppState, RawId};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use orders_domain::access::Caller;
use orders_domain::idempotency::StoredResponse;
use orders_domain::money::Total;
use orders_domain::store::{CreateOrder, CreateOutcome, ListOrders, NewOrder};
use orders_domain::time::format_millis as format_ts;
use orders_domain::validation::validate_order;
use orders_domain::{Cents, Currency, CustomerId, OrderId, OrderStatus, VoucherCode};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create_order).get(list_orders))
        .route("/orders/{id}", get(get_order).patch(cancel::cancel_order))
}

/// The create request, for the OpenAPI document; the handler validates the raw JSON itself.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct CreateOrderRequest {
    /// Whose order. With identity on it may be omitted (the caller's) and must be the
    /// caller's unless the caller is an admin.
    #[schema(example = "customer-123")]
    customer_id: CustomerId,
    /// 1-100 lines, of at most 99 distinct products (what one reservation holds).
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<NewItem>,
    /// A READY voucher of this customer, redeemed atomically with the order (5.00 EUR off).
    voucher_code: Option<VoucherCode>,
    /// Test payment token; default `pm_card_visa`, `pm_card_chargeDeclined` is declined.
    #[schema(example = "pm_card_visa", pattern = "^pm_[A-Za-z0-9_]{1,125}$")]
    payment_method: Option<String>,
}

/// One line of the create request (unknown fields are refused, so the document says so).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewItem {
    #[schema(example = "laptop")]
    product_id: orders_domain::ProductId,
    #[schema(minimum = 1, maximum = 10000)]
    quantity: u32,
    price: Cents,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    order_id: OrderId,
    status: OrderStatus,
    #[schema(value_type = Total)]
    total_amount: Cents,
    currency: Currency,
    created_at: String,
    message: &'static str,
}

#[utoipa::path(post, path = "/orders", tag = "orders",
    request_body = CreateOrderRequest,
    params(
        ("x-idempotency-key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1-255 visible ASCII characters; `Idempotency-Key` is a synonym"),
        ("traceparent" = Option<String>, Header, description = "W3C Trace Context; the order's events continue this trace (an absent or invalid one starts a new trace)"),
    ),
    responses(
        (status = 201, body = OrderCreated, description = "Created, or a replay (then with `Idempotent-Replayed: true`)",
            headers(("location" = String), ("idempotent-replayed" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Voucher unknown, not READY, or another customer's"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Key reused with another body"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_order(
    state: State<AppState>,
    caller: Result<Authenticated, ApiError>,
    key: Result<IdempotencyHeader, ApiError>,
    trace: RequestTrace,
    body: Result<JsonBody, ApiError>,
) -> ApiResult {
    // Taken as results so that every answer is counted, the extractors' refusals included
    // (in their order: the caller first, then the key).
    let result = match (caller, key) {
        (Ok(caller), Ok(key)) => create(state, caller, key, trace, body).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    super::metrics::count_create(&result);
    result
}

async fn create(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    IdempotencyHeader(key): IdempotencyHeader,
    RequestTrace(trace): RequestTrace,
    body: Result<JsonBody, ApiError>,
) -> ApiResult {
    let JsonBody(mut body) = body?;
    default_customer(&mut body, &caller);
    let draft = validate_order(&body).map_err(ApiError::Validation)?;
    caller.acts_for(Some(draft.customer_id.clone()))?;
    let order = NewOrder::from_draft(draft, s.clock.now());
    let (id, response) = (order.id, OrderCreated::of(&order).response());
    let key = key.map(|k| {
        let fp = request_fingerprint(&Method::POST, "/orders", &body);
        (caller.scope(k), fp)
    });
    let mut cmd = CreateOrder::new(order, key, response.clone(), s.settings.ttl());
    let trace_id = trace.trace_id().to_owned();
    cmd.event.traceparent = Some(trace);
    let outcome = s.store.create_order(cmd).await?;
    if outcome == CreateOutcome::Created {
        tracing::info!(order_id = %id, %trace_id, "order created");
    }
    respond(outcome, response)
}

/// An order without `customerId` (absent or null, which validation treats alike) is the
/// caller's: the body is completed before validation and before its fingerprint, so omitting
/// one's own id and spelling it out are one request.
fn default_customer(body: &mut serde_json::Value, caller: &Caller) {
    if let (Some(fields), Ok(me)) = (body.as_object_mut(), caller.acts_for(None))
        && fields
            .get("customerId")
            .is_none_or(serde_json::Value::is_null)
    {
        fields.insert("customerId".into(), me.as_str().into());
    }
}

impl OrderCreated {
    fn of(order: &NewOrder) -> Self {
        OrderCreated {
            order_id: order.id,
            status: OrderStatus::Pending,
            total_amount: order.total,
            currency: Currency::Eur,
            created_at: format_ts(order.created_at),
            message: "Order created",
        }
    }

    /// The 201 as it is sent, and replayed byte for byte.
    fn response(&self) -> StoredResponse {
        let location = format!("/orders/{}", self.order_id);
        wire_response(StatusCode::CREATED, Some(location), self)
    }
}

/// A response as an idempotency record keeps it: status, `Location`, the JSON body's bytes.
pub(crate) fn wire_response(
    status: StatusCode,
    location: Option<String>,
    body: &impl Serialize,
) -> StoredResponse {
    StoredResponse {
        status: status.as_u16(),
        location,
        body: serde_json::to_string(body).expect("serializable"),
    }
}

/// The answer to a create: the fresh 201, or the stored one with `Idempotent-Replayed`.
fn respond(outcome: CreateOutcome, fresh: StoredResponse) -> ApiResult {
    match outcome {
        CreateOutcome::Created => send_stored(fresh, false),
        CreateOutcome::Replayed(r) => send_stored(r, true),
        CreateOutcome::KeyReused => Err(ApiError::KeyReused),
    }
}

/// Sends a response kept as an idempotency record keeps it (fresh, or `replayed` from one).
pub(crate) fn send_stored(stored: StoredResponse, replayed: bool) -> ApiResult {
    let status =
        StatusCode::from_u16(stored.status).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut res = (status, stored.body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(loc) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, loc);
    }
    if replayed {
        h.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(res)
}

#[utoipa::path(get, path = "/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "Order id (UUID)")),
    responses((status = 200, body = OrderView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn get_order(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): RawId,
) -> ApiResult<Json<OrderView>> {
    let not_found = || ApiError::NotFound(format!("no order {id}"));
    let order_id: OrderId = id.parse().map_err(|_| not_found())?;
    let order = s.store.get_order(order_id).await?.ok_or_else(not_found)?;
    caller
        .sees(&order.order.customer_id)
        .map_err(|_| not_found())?;
    Ok(Json(order.into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Whose orders: the caller's by default; another customer's for an admin only (with
    /// identity off, required).
    #[param(value_type = Option<CustomerId>)]
    customer_id: Option<String>,
    /// Page size, 1-100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `nextCursor` from the previous page (opaque; anything else is a 400).
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderList {
    orders: Vec<OrderView>,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/orders", tag = "orders", params(ListParams),
    responses((status = 200, body = OrderList), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn list_orders(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<OrderList>> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let bad = ApiError::invalid;
    let named = p
        .customer_id
        .map(|c| CustomerId::parse(&c).map_err(|m| bad("customerId", m)))
        .transpose()?;
    let customer = caller.acts_for(named)?;
    let limit = paging::limit(p.limit.as_deref(), 20)?;
    let after = paging::cursor(p.cursor.as_deref())?;
    let query = ListOrders {
        customer,
        limit,
        after,
    };
    let page = s.store.list_orders(&query).await?;
    Ok(Json(OrderList {
        orders: page.orders.into_iter().map(OrderView::from).collect(),
        next_cursor: paging::next_cursor(page.next),
    }))
}
