//! `/executions`: the saga's executions, for an operator. Admin only.
//!
//! `POST /executions/{name}/redrive` resumes a FAILED execution from the step that failed,
//! with Step Functions' `RedriveExecution` semantics, on both runtimes: the local executor
//! redrives it in process, the API Lambda asks Step Functions. The reads (`GET /executions`
//! of one status, newest first, and `GET /executions/{name}` with its history) are the
//! embedded runtime's only: on AWS the Step Functions console shows executions. Each runtime
//! hands the API its side of the ports below in [`ExecutionsApi`]; without one, the redrive
//! route answers 404 after the caller is checked, and the reads are neither served nor
//! documented. Unknown names are 404, a redrive of an execution that is not FAILED is 409.

mod views;

use super::caller::Authenticated;
use super::paging;
use super::problem::{ApiError, Problem};
use super::{ApiResult, AppState, RawId};
use async_trait::async_trait;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use orders_workflow::executor::{ExecutionSnapshot, ExecutionStatus, HistoryEvent};
use serde::Deserialize;
use std::sync::Arc;
use views::{ExecutionDetail, ExecutionList, ExecutionSummary, RedriveAccepted};

/// Why an executions call failed, as the HTTP layer answers it.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionsError {
    #[error("execution {0} does not exist")]
    NotFound(String),
    /// Known but not FAILED (running, succeeded, or redriven meanwhile); the text says why.
    #[error("{0}")]
    NotRedrivable(String),
    /// Busy or out of reach for now (a 503 with `Retry-After`); the text is logged only.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (a 500); the text is logged only.
    #[error("{0}")]
    Failed(String),
}

impl From<ExecutionsError> for ApiError {
    fn from(e: ExecutionsError) -> Self {
        match e {
            ExecutionsError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ExecutionsError::NotRedrivable(why) => ApiError::Conflict(why),
            ExecutionsError::Unavailable(why) => {
                tracing::warn!(error = %why, "executions unavailable: 503");
                ApiError::Unavailable
            }
            ExecutionsError::Failed(why) => ApiError::Internal(why),
        }
    }
}

/// Redrives an execution by name: the local executor, or Step Functions.
#[async_trait]
pub trait ExecutionRedrive: Send + Sync {
    async fn redrive(&self, name: &str) -> Result<(), ExecutionsError>;
}

/// Reads executions (the embedded runtime).
#[async_trait]
pub trait ExecutionReads: Send + Sync {
    /// In `status`, most recently changed first, at most `limit`.
    async fn list(
        &self,
        status: ExecutionStatus,
        limit: usize,
    ) -> Result<Vec<ExecutionSnapshot>, ExecutionsError>;
    /// One execution and its whole history; None if unknown.
    async fn describe(
        &self,
        name: &str,
    ) -> Result<Option<(ExecutionSnapshot, Vec<HistoryEvent>)>, ExecutionsError>;
}

/// What the routes need, given by the runtime.
#[derive(Clone)]
pub struct ExecutionsApi {
    pub redrive: Arc<dyn ExecutionRedrive>,
    /// The reads: where present, `GET /executions` and `GET /executions/{name}` are served.
    pub reads: Option<Arc<dyn ExecutionReads>>,
}

impl std::fmt::Debug for ExecutionsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionsApi")
            .field("reads", &self.reads.is_some())
            .finish_non_exhaustive()
    }
}

/// Largest page of executions.
const DEFAULT_PAGE: u32 = 50;

/// The redrive route, on every runtime (documented in the main document).
pub fn routes() -> Router<AppState> {
    Router::new().route("/executions/{name}/redrive", post(redrive_execution))
}

/// The read routes, where the runtime has the reads.
pub fn read_routes() -> Router<AppState> {
    Router::new()
        .route("/executions", get(list_executions))
        .route("/executions/{name}", get(get_execution))
}

/// The caller must be an admin, and the runtime must have executions.
fn api(s: &AppState, caller: &orders_domain::access::Caller) -> Result<ExecutionsApi, ApiError> {
    caller.require_admin()?;
    s.settings
        .executions
        .clone()
        .ok_or_else(|| ApiError::NotFound("no such resource".into()))
}

fn reads(
    s: &AppState,
    caller: &orders_domain::access::Caller,
) -> Result<Arc<dyn ExecutionReads>, ApiError> {
    api(s, caller)?
        .reads
        .ok_or_else(|| ApiError::NotFound("no such resource".into()))
}

#[utoipa::path(post, path = "/executions/{name}/redrive", tag = "executions",
    params(("name" = String, Path, description = "The execution's name (locally and on AWS, the id of the order.created event that started it)")),
    responses((status = 202, body = RedriveAccepted, description = "Redriven: it runs again from the step that failed, keeping what succeeded. Where executions can be read, `Location` names it.",
            headers(("Location" = String, description = "/executions/{name} (embedded runtime)"))),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such execution"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The execution is not FAILED (running, succeeded, or redriven meanwhile)"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded, timed out or Step Functions busy: retry after Retry-After")))]
pub async fn redrive_execution(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    axum::extract::Path(name): RawId,
) -> ApiResult {
    let api = api(&s, &caller)?;
    api.redrive.redrive(&name).await?;
    tracing::info!(execution = %name, "execution redriven");
    let body = Json(RedriveAccepted {
        name: name.clone(),
        status: ExecutionStatus::Running,
    });
    if api.reads.is_none() {
        return Ok((StatusCode::ACCEPTED, body).into_response());
    }
    let location = format!("/executions/{}", views::path_segment(&name));
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], body).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only executions in this status: `FAILED` (the default: those an operator acts on),
    /// `RUNNING` or `SUCCEEDED`.
    #[param(value_type = Option<String>, pattern = "^([rR][uU][nN][nN][iI][nN][gG]|[sS][uU][cC][cC][eE][eE][dD][eE][dD]|[fF][aA][iI][lL][eE][dD])$")]
    status: Option<String>,
    /// How many, 1-100, default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

fn list_query(p: ListParams) -> Result<(ExecutionStatus, usize), ApiError> {
    let bad = ApiError::invalid;
    let status = match p.status {
        None => ExecutionStatus::Failed,
        Some(s) => s
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| bad("status", "must be RUNNING, SUCCEEDED or FAILED"))?,
    };
    let limit = paging::limit(p.limit.as_deref(), DEFAULT_PAGE)? as usize;
    Ok((status, limit))
}

#[utoipa::path(get, path = "/executions", tag = "executions", params(ListParams),
    responses((status = 200, body = ExecutionList, description = "The executions in that status, most recently changed first"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn list_executions(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ExecutionList>> {
    let reads = reads(&s, &caller)?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (status, limit) = list_query(p)?;
    let found = reads.list(status, limit).await?;
    Ok(Json(ExecutionList {
        executions: found.iter().map(ExecutionSummary::from).collect(),
    }))
}

#[utoipa::path(get, path = "/executions/{name}", tag = "executions",
    params(("name" = String, Path, description = "The execution's name")),
    responses((status = 200, body = ExecutionDetail, description = "The execution and its whole history, oldest event first"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn get_execution(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    axum::extract::Path(name): RawId,
) -> ApiResult<Json<ExecutionDetail>> {
    let reads = reads(&s, &caller)?;
    let (snapshot, history) = reads
        .describe(&name)
        .await?
        .ok_or_else(|| ExecutionsError::NotFound(name.clone()))?;
    Ok(Json(ExecutionDetail::new(&snapshot, &history)))
}

/// The reads and their schemas, merged into the document where they are served.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_executions, get_execution),
    tags((name = "executions", description = "The saga's executions: redrive a failed one (both runtimes); list and inspect them (embedded runtime)"))
)]
pub(crate) struct ExecutionReadsDoc;

/// Where a valid token can still be refused: every executions operation is an admin's.
pub(crate) const ADMIN_OPERATIONS: [(&str, &str); 3] = [
    ("post", "/executions/{name}/redrive"),
    ("get", "/executions"),
    ("get", "/executions/{name}"),
];
