//! `GET /health`: the process answers and its storage answers.

use super::AppState;
use super::problem::ApiError;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
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
    s.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "health check: storage unreachable");
        ApiError::Unavailable
    })?;
    Ok(Json(Health {
        status: "ok",
        storage: "ok",
    }))
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health))
}
