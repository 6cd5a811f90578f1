//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations so
//! it cannot drift from the code.

use super::{AppState, customers, health, inventory, orders};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orders",
        description = "Idempotent order API with a transactional outbox and a saga."
    ),
    paths(
        orders::create_order,
        orders::get_order,
        orders::list_orders,
        inventory::get_inventory,
        inventory::put_inventory,
        customers::list_vouchers,
        health::health,
        openapi_json,
    )
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "This document"),
    (status = 503, body = super::problem::Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}
