//! `GET /health`: the process answers and its storage serves: reads answer, and writes are not
//! being refused for want of space. A full disk still answers reads, so the store reports the
//! refusals its writer saw (`OrderStore::ping`); /health answers 503 `storage-full` from the
//! first refused write until a write takes space again.

use super::AppState;
use super::problem::ApiError;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use orders_domain::store::StoreError;
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when answered with 200.
    status: &'static str,
    storage: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = super::problem::Problem, content_type = "application/problem+json")))]
pub async fn health(State(s): State<AppState>) -> Result<Json<Health>, ApiError> {
    s.store.ping().await.map_err(|e| match e {
        // Logged once per episode by the store, not once per probe.
        StoreError::StorageFull => ApiError::StorageFull,
        e => {
            tracing::warn!(error = %e, "health check: storage unreachable");
            ApiError::Unavailable
        }
    })?;
    Ok(Json(Health {
        status: "ok",
        storage: "ok",
    }))
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health))
}
