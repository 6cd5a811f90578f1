//! `GET /admin/orders`: every customer's orders for an operator, newest first, of one status
//! and one customer when asked, with the counts by status; `GET /admin/orders/{orderId}`: one
//! of them, with its saga's execution name (what `/executions/{name}` is asked with).
//!
//! A summary each, not the whole order (no lines, no step history): the console polls this
//! every second, and `GET /orders/{id}` has the rest. Admin only; mounted with the console.
//! The counts follow the customer filter but not the status filter, so they say what each
//! status filter would show.

use super::super::caller::Authenticated;
use super::super::console::operator;
use super::super::paging;
use super::super::problem::{ApiError, Problem};
use super::super::{ApiResult, AppState, RawId};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use orders_domain::money::Total;
use orders_domain::store::{AllOrders, OrderSummary};
use orders_domain::time::format_millis as format_ts;
use orders_domain::{Cents, Currency, CustomerId, OrderId, OrderStatus};
use serde::{Deserialize, Serialize};

pub(crate) const PATH: &str = "/admin/orders";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(all_orders))
        .route("/admin/orders/{id}", get(order_summary))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AllOrdersParams {
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    /// Only this customer's orders (the counts too).
    #[param(value_type = Option<CustomerId>)]
    customer_id: Option<String>,
    /// Page size, 1-100, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `nextCursor` from the previous page (opaque; anything else is a 400).
    cursor: Option<String>,
}

/// An order in the operator's list.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummaryView {
    order_id: OrderId,
    #[schema(value_type = String)]
    customer_id: CustomerId,
    status: OrderStatus,
    #[schema(value_type = Total)]
    total_amount: Cents,
    currency: Currency,
    created_at: String,
    updated_at: String,
    /// Why the order failed: only when its status is FAILED.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
    /// Present, and `true`, once a cancellation was asked.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cancellation_requested: bool,
    /// Its saga's execution (`GET /executions/{name}`), once the order has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_name: Option<String>,
}

impl From<OrderSummary> for OrderSummaryView {
    fn from(o: OrderSummary) -> Self {
        OrderSummaryView {
            order_id: o.id,
            customer_id: o.customer_id,
            status: o.status,
            total_amount: o.total,
            currency: Currency::Eur,
            created_at: format_ts(o.created_at),
            updated_at: format_ts(o.updated_at),
            failure_reason: o.failure_reason.filter(|_| o.status == OrderStatus::Failed),
            cancellation_requested: o.cancellation_requested,
            execution_name: o.execution,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusCount {
    status: OrderStatus,
    count: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllOrdersPage {
    orders: Vec<OrderSummaryView>,
    next_cursor: Option<String>,
    /// Every status in lifecycle order, with how many orders (of the customer, if one was
    /// named) are in it.
    counts: Vec<StatusCount>,
}

fn query(p: AllOrdersParams) -> Result<AllOrders, ApiError> {
    let bad = ApiError::invalid;
    let status = p
        .status
        .map(|s| {
            s.parse::<OrderStatus>()
                .map_err(|_| bad("status", "is not an order status"))
        })
        .transpose()?;
    let customer = p
        .customer_id
        .map(|c| CustomerId::parse(&c).map_err(|m| bad("customerId", m)))
        .transpose()?;
    let limit = paging::limit(p.limit.as_deref(), 50)?;
    let after = paging::cursor(p.cursor.as_deref())?;
    Ok(AllOrders {
        status,
        customer,
        limit,
        after,
    })
}

#[utoipa::path(get, path = "/admin/orders", tag = "operations", params(AllOrdersParams),
    responses((status = 200, body = AllOrdersPage, description = "Every customer's orders, newest first, with the counts by status"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn all_orders(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<AllOrdersParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AllOrdersPage>> {
    let store = operator(&s, &caller)?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let query = query(p)?;
    let page = store.all_orders(&query).await?;
    let counted = store.status_counts(query.customer.as_ref()).await?;
    let count = |status| {
        counted
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |c| c.1)
    };
    Ok(Json(AllOrdersPage {
        orders: page.orders.into_iter().map(Into::into).collect(),
        next_cursor: paging::next_cursor(page.next),
        counts: OrderStatus::ALL
            .into_iter()
            .map(|status| StatusCount {
                status,
                count: count(status),
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/admin/orders/{orderId}", tag = "operations",
    params(("orderId" = String, Path, description = "Order id (UUID)")),
    responses((status = 200, body = OrderSummaryView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn order_summary(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): RawId,
) -> ApiResult<Json<OrderSummaryView>> {
    let store = operator(&s, &caller)?;
    let not_found = || ApiError::NotFound(format!("no order {id}"));
    let order_id: OrderId = id.parse().map_err(|_| not_found())?;
    let found = store.order_summary(order_id).await?.ok_or_else(not_found)?;
    Ok(Json(found.into()))
}
