//! `PATCH /orders/{id}`: the customer's cancellation, the one change a client may make.
//!
//! Read as extract -> validate -> authorize -> store -> respond. Everything that can refuse
//! the request without the database (key syntax, the id, the body) is checked first, so a
//! rejected request stores nothing and may be retried with the same key. The owner check is
//! the one GET makes (another customer's order is a 404, never a 403). Whether the order can
//! still be cancelled, whether the key replays, and the response the key keeps are decided in
//! the store's one transaction: `respond` builds that response from the order as the write
//! leaves it, so what is sent now and what a replay sends are the same bytes.

use super::view::OrderView;
use super::{send_stored, wire_response};
use crate::http::caller::Authenticated;
use crate::http::idempotency::{IdempotencyHeader, request_fingerprint};
use crate::http::json::JsonBody;
use crate::http::problem::{ApiError, Problem};
use crate::http::{ApiResult, AppState, RawId};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use orders_domain::idempotency::StoredResponse;
use orders_domain::lifecycle::MAX_REASON_CHARS;
use orders_domain::store::{CancelOrder, CancelOutcome, OrderRecord};
use orders_domain::validation::FieldError;
use orders_domain::{OrderId, OrderStatus};
use serde::Deserialize;
use serde_json::Value;

/// The cancellation request, for the OpenAPI document; the handler validates the raw JSON.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct CancelOrderRequest {
    /// The only change a customer may ask for.
    status: CancelledStatus,
    /// Why, in the customer's words; kept on the order and shown by GET.
    #[schema(min_length = 1, max_length = 500, example = "ordered by mistake")]
    reason: Option<String>,
}

/// `CANCELLED`, the one status a client may set.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub enum CancelledStatus {
    #[serde(rename = "CANCELLED")]
    Cancelled,
}

const FIELDS: [&str; 2] = ["status", "reason"];

/// The reason of a valid cancellation request (`None`: not given); otherwise every problem.
/// A `null` reason is an absent one, as the fingerprint also treats it.
pub(crate) fn validate_cancel(body: &Value) -> Result<Option<String>, Vec<FieldError>> {
    let error = |field: &str, message: &str| FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let Some(obj) = body.as_object() else {
        return Err(vec![error("", "the body must be a JSON object")]);
    };
    let mut errs: Vec<FieldError> = obj
        .keys()
        .filter(|k| !FIELDS.contains(&k.as_str()))
        .map(|k| error(k, "unknown field"))
        .collect();
    match obj.get("status") {
        Some(Value::String(s)) if s == OrderStatus::Cancelled.as_str() => {}
        None | Some(Value::Null) => errs.push(error("status", "is required")),
        Some(_) => errs.push(error("status", "only CANCELLED may be set")),
    }
    let reason = match obj.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if (1..=MAX_REASON_CHARS).contains(&s.chars().count()) => {
            Some(s.clone())
        }
        Some(Value::String(_)) => {
            errs.push(error("reason", "must be 1-500 characters"));
            None
        }
        Some(_) => {
            errs.push(error("reason", "must be a string"));
            None
        }
    };
    if errs.is_empty() {
        Ok(reason)
    } else {
        Err(errs)
    }
}

/// The 202 a cancellation answers (and its key keeps): the order as GET shows it.
fn accepted(order: &OrderRecord) -> StoredResponse {
    wire_response(StatusCode::ACCEPTED, None, &OrderView::from(order.clone()))
}

/// Why an order that is past cancelling cannot be cancelled, in the words of the contract.
fn too_late(status: OrderStatus) -> String {
    match status {
        OrderStatus::Shipped | OrderStatus::Completed => "the parcel has shipped".into(),
        OrderStatus::Failed => "the order has failed".into(),
        OrderStatus::Compensating => "the order failed and is being compensated".into(),
        other => format!("the order is {other}"),
    }
}

#[utoipa::path(patch, path = "/orders/{id}", tag = "orders",
    request_body = CancelOrderRequest,
    params(
        ("id" = String, Path, description = "Order id (UUID)"),
        ("x-idempotency-key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1-255 visible ASCII characters; `Idempotency-Key` is a synonym"),
    ),
    responses(
        (status = 202, body = OrderView, description = "Cancellation requested (now or before, or the order is CANCELLED): the order, `cancellationRequested: true`; a replay carries `Idempotent-Replayed: true`",
            headers(("idempotent-replayed" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Not `{\"status\": \"CANCELLED\", \"reason\"?}`, or a bad idempotency key"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such order, or another customer's"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Too late: the parcel has shipped (SHIPPED, COMPLETED), or the order failed (FAILED, COMPENSATING)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Key reused with another request"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After"),
    ))]
pub async fn cancel_order(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    IdempotencyHeader(key): IdempotencyHeader,
    Path(id): RawId,
    body: Result<JsonBody, ApiError>,
) -> ApiResult {
    let not_found = || ApiError::NotFound(format!("no order {id}"));
    let order_id: OrderId = id.parse().map_err(|_| not_found())?;
    let JsonBody(body) = body?;
    let reason = validate_cancel(&body).map_err(ApiError::Validation)?;
    let order = s.store.get_order(order_id).await?.ok_or_else(not_found)?;
    caller
        .sees(&order.order.customer_id)
        .map_err(|_| not_found())?;
    let path = format!("/orders/{order_id}");
    let cmd = CancelOrder {
        order: order_id,
        reason,
        idempotency: key.map(|k| {
            let fp = request_fingerprint(&Method::PATCH, &path, &body);
            (caller.scope(k), fp)
        }),
        ttl: s.settings.ttl(),
        now: s.clock.now(),
    };
    match s.store.cancel_order(cmd, &accepted).await? {
        CancelOutcome::Accepted(order) => {
            tracing::info!(order_id = %order_id, "cancellation requested");
            send_stored(accepted(&order), false)
        }
        CancelOutcome::AlreadyRequested(order) => send_stored(accepted(&order), false),
        CancelOutcome::NotCancellable(order) => {
            Err(ApiError::NotCancellable(too_late(order.status)))
        }
        CancelOutcome::NotFound => Err(not_found()),
        CancelOutcome::Replayed(stored) => send_stored(stored, true),
        CancelOutcome::KeyReused => Err(ApiError::KeyReused),
    }
}

#[cfg(test)]
mod tests {
    use super::validate_cancel;
    use serde_json::json;

    fn fields(body: serde_json::Value) -> Vec<String> {
        validate_cancel(&body)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn only_a_cancellation_with_an_optional_reason() {
        assert_eq!(validate_cancel(&json!({"status": "CANCELLED"})), Ok(None));
        assert_eq!(
            validate_cancel(&json!({"status": "CANCELLED", "reason": null})),
            Ok(None)
        );
        let long = "é".repeat(500);
        assert_eq!(
            validate_cancel(&json!({"status": "CANCELLED", "reason": long})),
            Ok(Some(long.clone()))
        );
        assert_eq!(fields(json!({"status": "COMPLETED"})), ["status"]);
        assert_eq!(fields(json!({"status": "cancelled"})), ["status"]);
        assert_eq!(fields(json!({})), ["status"]);
        assert_eq!(fields(json!({"status": null})), ["status"]);
        assert_eq!(
            fields(json!({"status": "CANCELLED", "reason": ""})),
            ["reason"]
        );
        let too_long = format!("{long}x");
        assert_eq!(
            fields(json!({"status": "CANCELLED", "reason": too_long})),
            ["reason"]
        );
        assert_eq!(
            fields(json!({"status": "CANCELLED", "reason": 3})),
            ["reason"]
        );
        assert_eq!(
            fields(json!({"status": "CANCELLED", "items": []})),
            ["items"]
        );
        assert_eq!(fields(json!(["CANCELLED"])), [""]);
        assert_eq!(
            fields(json!({"status": "SHIPPED", "reason": "", "x": 1})).len(),
            3,
            "every problem at once"
        );
    }
}
