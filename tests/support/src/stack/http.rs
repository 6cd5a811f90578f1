//! Requests to the stack's router, in process, and waiting for an order to settle.

use super::{Stack, order_body, with_payment};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The statuses an order ends in.
const TERMINAL: [&str; 3] = ["COMPLETED", "FAILED", "CANCELLED"];

impl Stack {
    pub async fn request(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (status, json)
    }

    pub async fn post_order(&self, body: &Value) -> (StatusCode, Value) {
        let req = Request::post("/orders")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.request(req).await
    }

    /// POSTs an order that must be accepted; returns its id.
    pub async fn create(&self, body: &Value) -> String {
        let (status, json) = self.post_order(body).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["orderId"].as_str().expect("orderId").to_owned()
    }

    /// For tests that run the saga by hand: 10 gizmos in stock, an order of 3 at 4.50 whose
    /// card is declined (so its saga compensates), and the event its execution starts from.
    pub async fn declined_order_event(&self, customer: &str) -> orders_domain::OutboxEvent {
        self.put_inventory("gizmo", 10).await;
        let body = with_payment(
            order_body(customer, "gizmo", 3, 4.5),
            "pm_card_chargeDeclined",
        );
        let id = self.create(&body).await;
        orders_domain::OutboxEvent::decode(self.outbox_payload(&id).as_bytes())
            .expect("the order's created event")
    }

    /// POSTs an order that must be refused with `status`; returns the problem it got.
    pub async fn refused(&self, body: &Value, status: StatusCode) -> Value {
        let (got, problem) = self.post_order(body).await;
        assert_eq!(got, status, "{problem}");
        problem
    }

    /// PATCH /orders/{id} with `body`, whatever the answer.
    pub async fn patch_order(&self, order_id: &str, body: &Value) -> (StatusCode, Value) {
        let req = Request::patch(format!("/orders/{order_id}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.request(req).await
    }

    /// Asks to cancel the order (with `reason`, if any), whatever the answer.
    pub async fn cancel(&self, order_id: &str, reason: Option<&str>) -> (StatusCode, Value) {
        let mut body = json!({ "status": "CANCELLED" });
        if let Some(reason) = reason {
            body["reason"] = reason.into();
        }
        self.patch_order(order_id, &body).await
    }

    pub async fn get_json(&self, uri: &str) -> Value {
        let (status, json) = self
            .request(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "GET {uri}: {json}");
        json
    }

    pub async fn put_inventory(&self, product: &str, available: i64) {
        let req = Request::put(format!("/inventory/{product}"))
            .header("content-type", "application/json")
            .body(Body::from(json!({ "available": available }).to_string()))
            .unwrap();
        let (status, json) = self.request(req).await;
        assert_eq!(status, StatusCode::OK, "PUT inventory: {json}");
    }

    pub async fn stock(&self, product: &str) -> i64 {
        self.get_json(&format!("/inventory/{product}")).await["available"]
            .as_i64()
            .expect("available")
    }

    pub async fn vouchers(&self, customer: &str) -> Vec<Value> {
        let v = self
            .get_json(&format!("/customers/{customer}/vouchers"))
            .await;
        v["vouchers"].as_array().expect("vouchers").clone()
    }

    /// Polls the order every 10 ms until it is COMPLETED, FAILED or CANCELLED and its history
    /// has settled: the step that sets the final status records its own outcome in a later
    /// commit, so the first terminal read may still show that step RUNNING (see
    /// `a_terminal_order_shows_its_last_step_finished`).
    pub async fn wait_terminal(&self, order_id: &str, timeout: Duration) -> Value {
        self.poll(order_id, timeout, Duration::from_millis(10), true)
            .await
    }

    /// The first read, polling every millisecond, that shows a terminal status.
    pub async fn wait_status(&self, order_id: &str, timeout: Duration) -> Value {
        self.poll(order_id, timeout, Duration::from_millis(1), false)
            .await
    }

    /// The first read, polling every millisecond, that shows `status`.
    pub async fn wait_for_status(&self, order_id: &str, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let uri = format!("/orders/{order_id}");
        loop {
            let order = self.get_json(&uri).await;
            if order["status"] == status {
                return order;
            }
            if Instant::now() >= deadline {
                panic!("order {order_id} not {status} after {timeout:?}: {order}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn poll(&self, id: &str, timeout: Duration, every: Duration, settled: bool) -> Value {
        let deadline = Instant::now() + timeout;
        let uri = format!("/orders/{id}");
        loop {
            let order = self.get_json(&uri).await;
            let terminal = order["status"]
                .as_str()
                .is_some_and(|s| TERMINAL.contains(&s));
            let steps = order["history"].as_array().expect("history");
            if terminal && (!settled || steps.iter().all(|s| !s["finishedAt"].is_null())) {
                return order;
            }
            if Instant::now() >= deadline {
                panic!("order {id} not terminal (settled: {settled}) after {timeout:?}: {order}");
            }
            tokio::time::sleep(every).await;
        }
    }
}
