//! `/inventory/{productId}`: stock levels. The saga's reservations move them; PUT sets them
//! (restocking, or preparing a test scenario).

use super::caller::Authenticated;
use super::json::JsonBody;
use super::problem::{ApiError, Problem};
use super::{ApiResult, AppState, RawId};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use orders_domain::ProductId;
use orders_domain::store::StockLevel;
use orders_domain::validation::{FieldError, whole_number};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest stock level accepted.
const MAX_AVAILABLE: i64 = 1_000_000_000;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/inventory/{product_id}",
        get(get_inventory).put(put_inventory),
    )
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    product_id: String,
    available: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SetInventory {
    #[schema(minimum = 0, maximum = 1000000000)]
    available: i64,
}

fn product(id: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(id).map_err(|m| ApiError::invalid("productId", m))
}

#[utoipa::path(get, path = "/inventory/{productId}", tag = "inventory",
    params(("productId" = ProductId, Path)),
    responses((status = 200, body = Inventory), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn get_inventory(
    State(s): State<AppState>,
    Authenticated(_): Authenticated,
    Path(id): RawId,
) -> ApiResult<Json<Inventory>> {
    let p = product(&id).map_err(|_| ApiError::NotFound(format!("no product {id}")))?;
    let available = s
        .store
        .get_inventory(&p)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no product {id}")))?;
    Ok(Json(Inventory {
        product_id: id,
        available,
    }))
}

#[utoipa::path(put, path = "/inventory/{productId}", tag = "inventory",
    params(("productId" = ProductId, Path)), request_body = SetInventory,
    responses((status = 200, body = Inventory), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn put_inventory(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> ApiResult<Json<Inventory>> {
    caller.require_admin()?;
    let p = product(&id)?;
    let JsonBody(body) = body?;
    let field = |message: &str| ApiError::invalid("available", message);
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("", "the body must be a JSON object"))?;
    let unknown: Vec<FieldError> = obj
        .keys()
        .filter(|k| *k != "available")
        .map(|k| FieldError {
            field: k.clone(),
            message: "unknown field".into(),
        })
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    let available = match obj.get("available") {
        Some(Value::Number(n)) => whole_number(n)
            .filter(|a| (0..=MAX_AVAILABLE).contains(a))
            .ok_or_else(|| field("must be an integer from 0 to 1000000000"))?,
        None | Some(Value::Null) => return Err(field("is required")),
        Some(_) => return Err(field("must be an integer from 0 to 1000000000")),
    };
    s.store
        .set_inventory(StockLevel {
            product: p.clone(),
            available,
            at: s.clock.now(),
        })
        .await?;
    Ok(Json(Inventory {
        product_id: id,
        available,
    }))
}
