//! The lifecycle's HTTP surface on the embedded runtime: the router over SQLite, requests
//! sent with `oneshot`, the order moved through the saga's statuses by the step store itself
//! (as the steps would move it), so each case starts from exactly the state it is about.
//! [`webhooks`]: `POST /webhooks/payments` (signatures, dedup, bodies); [`cancel`]:
//! `PATCH /orders/{id}` (validation, ownership, idempotency, too late); [`view`]: what GET
//! shows of the payment, the shipment and the cancellation.

mod cancel;
mod view;
mod webhooks;

use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, Utc};
pub use orders::clock::Clock;
use orders::http::ApiSettings;
use orders_domain::lifecycle::{PaymentId, Shipment};
use orders_domain::standard_webhooks::{Signed, WebhookSecret};
use orders_domain::{Cents, OrderId, OrderStatus};
use orders_test_support::{Reply, TestApp, app_with};
use orders_workflow::steps::Step;
use orders_workflow::steps::store::{OrderAt, PaymentRequest, StatusMove};
use serde_json::{Value, json};

/// The laptop order's total, which its payment must be for.
pub const TOTAL: f64 = 1299.99;

/// The API with a webhook secret (and otherwise default settings).
pub fn app(secret: &WebhookSecret) -> TestApp {
    app_with(ApiSettings {
        payment_webhook_secret: Some(secret.clone()),
        ..ApiSettings::default()
    })
}

pub fn secret() -> WebhookSecret {
    WebhookSecret::generate().expect("a secret")
}

/// A new PENDING laptop order of `customer`, created through the API.
pub async fn order(app: &TestApp, customer: &str) -> OrderId {
    let body = json!({"customerId": customer, "items": [{"productId": "laptop", "quantity": 1, "price": TOTAL}]});
    let r = app.post_order(None, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["orderId"].as_str().unwrap().parse().unwrap()
}

/// Moves the order along `path` as the saga's steps do; RequestPayment also records the
/// REQUESTED payment (with a task token) that a webhook settles.
pub async fn advance(app: &TestApp, order: OrderId, path: &[OrderStatus]) {
    for &to in path {
        let step = match to {
            OrderStatus::InventoryReserved => Step::ReserveInventory,
            OrderStatus::AwaitingPayment => Step::RequestPayment,
            OrderStatus::Shipped => Step::MarkShipped,
            OrderStatus::Completed => Step::MarkCompleted,
            OrderStatus::Compensating => Step::BeginCompensation,
            OrderStatus::Failed => Step::MarkFailed,
            other => panic!("no step moves an order to {other}"),
        };
        let store = app.store.clone();
        store
            .step_job(move |s| async move {
                let at = OrderAt::now(order);
                if to == OrderStatus::AwaitingPayment {
                    let pay = PaymentId::for_order(order);
                    let req = PaymentRequest {
                        payment_id: &pay,
                        amount: Cents(129_999),
                        method: "pm_card_visa",
                        token: "task-token-1",
                    };
                    s.request_payment(at, &req).await.expect("request payment");
                }
                if to == OrderStatus::Shipped {
                    let parcel = Shipment {
                        tracking_number: "TRK-1".into(),
                        shipped_at: Utc::now(),
                    };
                    s.mark_shipped(at, step, &parcel).await.expect("shipped");
                    return;
                }
                let reason = matches!(to, OrderStatus::Compensating | OrderStatus::Failed)
                    .then_some("InsufficientStock: no laptop");
                let mv = StatusMove { step, to, reason };
                s.set_status(at, mv).await.expect("set status");
            })
            .await
            .expect("step job");
    }
}

/// The statuses up to AWAITING_PAYMENT.
pub const TO_AWAITING: [OrderStatus; 2] =
    [OrderStatus::InventoryReserved, OrderStatus::AwaitingPayment];

/// A `payment.succeeded` (or `.failed`) body for the order's payment.
pub fn payment_body(order: OrderId, kind: &str, amount: f64) -> Value {
    json!({
        "type": kind,
        "data": {"paymentId": PaymentId::for_order(order).as_str(), "orderId": order.to_string(), "amount": amount},
    })
}

/// POSTs `body` to the webhook route with `headers` (name, value) as given.
pub async fn post_webhook(app: &TestApp, body: &[u8], headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::post("/webhooks/payments").header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    app.send(req.body(Body::from(body.to_vec())).unwrap()).await
}

/// POSTs `body` signed with `secret` as webhook `id` at `at`.
pub async fn deliver(
    app: &TestApp,
    secret: &WebhookSecret,
    id: &str,
    at: DateTime<Utc>,
    body: &Value,
) -> Reply {
    let bytes = body.to_string().into_bytes();
    let signed = Signed::new(secret, id, at.timestamp(), &bytes).expect("sign");
    post_webhook(app, &bytes, &signed.headers()).await
}

/// `PATCH /orders/{id}` with a JSON body (as text), an optional key and bearer token.
pub async fn patch(
    app: &TestApp,
    id: &str,
    body: &str,
    key: Option<&str>,
    token: Option<&str>,
) -> Reply {
    let mut req =
        Request::patch(format!("/orders/{id}")).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("x-idempotency-key", k);
    }
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    app.send(req.body(Body::from(body.to_owned())).unwrap())
        .await
}

/// Asserts a problem+json answer of `status`; returns the problem.
pub fn problem(r: &Reply, status: u16) -> Value {
    assert_eq!(
        r.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let p = r.json();
    assert_eq!(p["status"], status, "{p}");
    p
}

/// One integer from the database file.
pub fn query(app: &TestApp, sql: &str, order: OrderId) -> i64 {
    let conn = rusqlite::Connection::open(app.dir.path().join("orders.db")).expect("open db");
    conn.query_row(sql, [order.to_string()], |r| r.get(0))
        .expect(sql)
}

/// The saga signals the order's writes queued in the outbox.
pub fn signals(app: &TestApp, order: OrderId) -> i64 {
    query(
        app,
        "SELECT COUNT(*) FROM outbox WHERE order_id = ?1 AND json_extract(payload, '$.type') = 'orders.internal.task-signal'",
        order,
    )
}

/// The order as GET shows it.
pub async fn get(app: &TestApp, order: OrderId) -> Value {
    let r = app.get(&format!("/orders/{order}")).await;
    assert_eq!(r.status, 200);
    r.json()
}
