//! The outside actors of the saga, in process and at zero delay, as Orders runs its payment
//! simulator and warehouse worker beside the service: they answer as soon as they are asked,
//! and only through public interfaces that cross the process boundary (HTTP to the peer's own
//! listener, then the Restate ingress).
//!
//! - `POST /charges` (the payment provider): `Idempotency-Key` must be the payment id; one
//!   webhook per payment id (ids remembered, bounded). A method containing `Declined` fails
//!   with `card_declined`, `pm_card_noAnswer` is never answered, any other succeeds. The
//!   answer is a Standard Webhooks signed `POST /webhooks/payment` to this same listener,
//!   retried with backoff on any non-2xx.
//! - `POST /webhooks/payment` (the service's webhook endpoint): verifies the signature and the
//!   timestamp (401 otherwise, nothing resumed), then resolves the payment awakeable named in
//!   the charge's metadata through the ingress; 2xx only once the ingress has accepted it.
//! - `POST /refunds`: the provider's refund, acknowledged.
//! - `POST /shipments` (the warehouse): one shipment per order id; resolves the shipment
//!   awakeable through the ingress with a tracking number, retried with backoff.
//! - `GET /stats`: `{"<order id>": [status, epoch µs]}` of every order that reached COMPLETED
//!   or FAILED: an in-memory measurement side channel, not the order's state (that is in
//!   Restate) and not durable.

use crate::saga::now_micros;
use crate::signing::Secret;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Ids remembered for deduplication (payments, refunds, shipments), each.
const REMEMBERED: usize = 100_000;
/// Attempts of one webhook or callback delivery, the first included.
const ATTEMPTS: u32 = 8;

/// The final status and time of every finished order (measurement only).
#[derive(Default)]
pub struct Finals(Mutex<HashMap<String, (String, u64)>>);

impl Finals {
    /// Keeps the first record of an order: a replay after a crash does not move its time.
    pub fn record(&self, order_id: &str, status: &str, at_micros: u64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(order_id.to_owned())
            .or_insert_with(|| (status.to_owned(), at_micros));
    }

    fn to_json(&self) -> Value {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = map.iter().map(|(k, (s, t))| (k.clone(), json!([s, t])));
        Value::Object(entries.collect())
    }
}

/// Ids seen, oldest forgotten first beyond the capacity.
#[derive(Default)]
struct Remembered {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Remembered {
    /// Whether `id` is new; it is remembered from now on.
    fn insert(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }
}

pub struct Actors {
    pub http: reqwest::Client,
    /// The Restate ingress (`http://127.0.0.1:port`).
    pub ingress: String,
    /// This listener's own base URL, where the provider sends its webhooks.
    pub own_url: String,
    pub secret: Secret,
    pub finals: Arc<Finals>,
    charges: Mutex<Remembered>,
    shipments: Mutex<Remembered>,
}

impl Actors {
    pub fn new(http: reqwest::Client, ingress: String, own_url: String, secret: Secret) -> Self {
        Actors {
            http,
            ingress,
            own_url,
            secret,
            finals: Arc::default(),
            charges: Mutex::default(),
            shipments: Mutex::default(),
        }
    }

    fn first_time(set: &Mutex<Remembered>, id: &str) -> bool {
        set.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id)
    }
}

pub fn router(actors: Arc<Actors>) -> Router {
    Router::new()
        .route("/charges", post(charge))
        .route("/refunds", post(refund))
        .route("/shipments", post(shipment))
        .route("/webhooks/payment", post(payment_webhook))
        .route("/stats", get(stats))
        .route("/health", get(|| async { "ok" }))
        .with_state(actors)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Charge {
    payment_id: String,
    order_id: String,
    amount_cents: i64,
    currency: String,
    payment_method: String,
    metadata: Value,
}

async fn charge(State(a): State<Arc<Actors>>, headers: HeaderMap, body: Bytes) -> Response {
    let charge: Charge = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("malformed charge: {e}")),
    };
    let key = headers.get("idempotency-key").map(|v| v.as_bytes());
    if key != Some(charge.payment_id.as_bytes()) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be the paymentId",
        );
    }
    if charge.amount_cents < 0 || charge.currency != "EUR" {
        return problem(
            StatusCode::BAD_REQUEST,
            "the amount must be EUR cents, not negative",
        );
    }
    if Actors::first_time(&a.charges, &charge.payment_id) {
        let kind = if charge.payment_method == "pm_card_noAnswer" {
            None
        } else if charge.payment_method.contains("Declined") {
            Some(("payment.failed", Some("card_declined")))
        } else {
            Some(("payment.succeeded", None))
        };
        if let Some((kind, reason)) = kind {
            let webhook = json!({"type": kind, "data": {
                "paymentId": charge.payment_id, "orderId": charge.order_id,
                "amount": charge.amount_cents as f64 / 100.0, "reason": reason,
                "metadata": charge.metadata,
            }});
            tokio::spawn(deliver_webhook(a.clone(), webhook.to_string().into_bytes()));
        }
    }
    let body = json!({"paymentId": charge.payment_id, "status": "pending"});
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

/// Signs and POSTs one webhook, anew at each attempt's time, with one `webhook-id`.
async fn deliver_webhook(a: Arc<Actors>, body: Vec<u8>) {
    let id = format!("msg_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let url = format!("{}/webhooks/payment", a.own_url);
    retry("payment webhook", || {
        let ts = (now_micros() / 1_000_000) as i64;
        a.http
            .post(&url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", a.secret.sign(&id, ts, &body))
            .body(body.clone())
    })
    .await;
}

async fn payment_webhook(
    State(a): State<Arc<Actors>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = (now_micros() / 1_000_000) as i64;
    let verified = a.secret.verify(
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        &body,
        now,
    );
    if let Err(why) = verified {
        return problem(StatusCode::UNAUTHORIZED, why);
    }
    let webhook: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("malformed webhook: {e}")),
    };
    let data = &webhook["data"];
    let (Some(kind), Some(awakeable)) = (
        webhook["type"].as_str(),
        data["metadata"]["awakeableId"].as_str(),
    ) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "type and data.metadata.awakeableId are required",
        );
    };
    let answer = json!({"result": kind, "reason": data["reason"]});
    match resolve(&a, awakeable, &answer).send().await {
        Ok(r) if r.status().is_success() => StatusCode::NO_CONTENT.into_response(),
        Ok(r) => problem(
            StatusCode::BAD_GATEWAY,
            &format!("the ingress answered {}", r.status()),
        ),
        Err(e) => problem(StatusCode::BAD_GATEWAY, &format!("the ingress: {e}")),
    }
}

async fn refund(headers: HeaderMap) -> Response {
    match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(id) => axum::Json(json!({"paymentId": id, "status": "refunded"})).into_response(),
        None => problem(
            StatusCode::BAD_REQUEST,
            "the Idempotency-Key header is required",
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentRequest {
    order_id: String,
    awakeable_id: String,
}

async fn shipment(State(a): State<Arc<Actors>>, body: Bytes) -> Response {
    let req: ShipmentRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("malformed shipment: {e}")),
    };
    if Actors::first_time(&a.shipments, &req.order_id) {
        let shipped = json!({
            "trackingNumber": format!("TRK-{:08X}", fastrand::u32(..)),
            "shippedAtMicros": now_micros(),
        });
        tokio::spawn(async move {
            retry("warehouse callback", || {
                resolve(&a, &req.awakeable_id, &shipped)
            })
            .await;
        });
    }
    StatusCode::ACCEPTED.into_response()
}

/// `POST /restate/awakeables/{id}/resolve` on the ingress.
fn resolve(a: &Actors, awakeable_id: &str, payload: &Value) -> reqwest::RequestBuilder {
    a.http
        .post(format!(
            "{}/restate/awakeables/{awakeable_id}/resolve",
            a.ingress
        ))
        .json(payload)
}

/// Sends the request `make` builds until a 2xx, with exponential backoff and jitter (100 ms
/// doubling, at most 30 s), [`ATTEMPTS`] times at most.
async fn retry(what: &str, make: impl Fn() -> reqwest::RequestBuilder) {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        match make().send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => last = format!("answered {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        if attempt + 1 < ATTEMPTS {
            let full = Duration::from_millis(100 << attempt).min(Duration::from_secs(30));
            tokio::time::sleep(full.mul_f64(0.5 + fastrand::f64() * 0.5)).await;
        }
    }
    tracing::warn!(what, last = %last, "delivery given up");
}

async fn stats(State(a): State<Arc<Actors>>) -> Response {
    axum::Json(a.finals.to_json()).into_response()
}

fn problem(status: StatusCode, detail: &str) -> Response {
    let body =
        json!({"title": status.canonical_reason(), "status": status.as_u16(), "detail": detail});
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/problem+json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finals_keep_the_first_record() {
        let f = Finals::default();
        f.record("a", "COMPLETED", 5);
        f.record("a", "COMPLETED", 9);
        assert_eq!(f.to_json(), json!({"a": ["COMPLETED", 5]}));
    }

    #[test]
    fn remembered_ids_are_deduplicated() {
        let mut r = Remembered::default();
        assert!(r.insert("x"));
        assert!(!r.insert("x"));
        assert!(r.insert("y"));
    }
}
