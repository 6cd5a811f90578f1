//! `/customers/{customerId}/vouchers`: the vouchers a customer has earned, whatever their state.

use super::caller::Authenticated;
use super::problem::{ApiError, Problem};
use super::{ApiResult, AppState, RawId};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use orders_domain::{Cents, CustomerId, OrderId, VoucherStatus};
use serde::Serialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/customers/{customer_id}/vouchers", get(list_vouchers))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Voucher {
    voucher_code: String,
    discount: Cents,
    status: VoucherStatus,
    /// The order that earned it.
    order_id: OrderId,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VoucherList {
    vouchers: Vec<Voucher>,
}

#[utoipa::path(get, path = "/customers/{customerId}/vouchers", tag = "vouchers",
    params(("customerId" = CustomerId, Path)),
    responses((status = 200, body = VoucherList), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn list_vouchers(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): RawId,
) -> ApiResult<Json<VoucherList>> {
    let customer = CustomerId::parse(&id).map_err(|m| ApiError::invalid("customerId", m))?;
    let customer = caller.acts_for(Some(customer))?;
    let vouchers = s
        .store
        .list_vouchers(&customer)
        .await?
        .into_iter()
        .map(|v| Voucher {
            voucher_code: v.code.to_string(),
            discount: v.discount,
            status: v.status,
            order_id: v.order_id,
        })
        .collect();
    Ok(Json(VoucherList { vouchers }))
}
