//! The HTTP API through the router (no socket): status codes, problem+json, idempotency rules.

use orders_test_support as common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{LAPTOP, app, app_with};
use orders::http::ApiSettings;
use serde_json::{Value, json};

fn is_problem(r: &common::Reply, status: u16) {
    assert_eq!(
        r.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let p = r.json();
    assert_eq!(p["status"], status);
    assert!(
        p["type"].is_string() && p["title"].is_string() && p["detail"].is_string(),
        "{p}"
    );
}

#[tokio::test]
async fn create_returns_201_with_location_and_exact_total() {
    let app = app();
    let r = app.post_order(None, LAPTOP).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = r.json();
    let id = body["orderId"].as_str().unwrap();
    assert_eq!(r.header("location"), Some(format!("/orders/{id}").as_str()));
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["currency"], "EUR");
    assert_eq!(body["totalAmount"], json!(1299.99));
    assert!(r.header("idempotent-replayed").is_none());

    let cents = r#"{"customerId":"c","items":[{"productId":"mouse","quantity":3,"price":0.10},{"productId":"keyboard","quantity":1,"price":0.20}]}"#;
    let r = app.post_order(None, cents).await;
    assert!(
        std::str::from_utf8(&r.body)
            .unwrap()
            .contains(r#""totalAmount":0.5,"#)
    );
}

#[tokio::test]
async fn without_a_key_every_post_is_a_new_order() {
    let app = app();
    let a = app.post_order(None, LAPTOP).await.json();
    let b = app.post_order(None, LAPTOP).await.json();
    assert_ne!(a["orderId"], b["orderId"]);
    assert_eq!(app.count("orders"), 2);
    assert_eq!(app.count("outbox"), 2);
    assert_eq!(app.count("idempotency"), 0);
}

#[tokio::test]
async fn replay_is_byte_identical_and_marked() {
    let app = app();
    let first = app.post_order(Some("k-1"), LAPTOP).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let reordered = r#"{ "items": [ {"price": 1299.99, "quantity": 1, "productId": "laptop"} ],
                        "customerId": "customer-123" }"#;
    let again = app.post_order(Some("k-1"), reordered).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The IETF header name is the same key.
    let req = Request::post("/orders")
        .header("content-type", "application/json")
        .header("Idempotency-Key", "k-1")
        .body(Body::from(LAPTOP))
        .unwrap();
    assert_eq!(app.send(req).await.body, first.body);
    assert_eq!(app.count("orders"), 1);
    assert_eq!(app.count("outbox"), 1);
}

#[tokio::test]
async fn a_new_key_makes_a_new_order() {
    let app = app();
    let first = app.post_order(Some("k-a"), LAPTOP).await.json();
    let other = app.post_order(Some("k-b"), LAPTOP).await.json();
    assert_ne!(first["orderId"], other["orderId"]);
}

#[tokio::test]
async fn same_key_other_body_is_422_and_stores_nothing_more() {
    let app = app();
    app.post_order(Some("k-2"), LAPTOP).await;
    let changed = LAPTOP.replace("\"quantity\":1", "\"quantity\":2");
    let r = app.post_order(Some("k-2"), &changed).await;
    is_problem(&r, 422);
    assert_eq!(app.count("orders"), 1);
}

#[tokio::test]
async fn expired_key_is_free_again() {
    let app = app();
    let first = app.post_order(Some("k-exp"), LAPTOP).await.json();
    app.clock.advance(chrono::Duration::minutes(9));
    assert_eq!(
        app.post_order(Some("k-exp"), LAPTOP).await.json()["orderId"],
        first["orderId"]
    );
    app.clock.advance(chrono::Duration::minutes(1));
    let later = app.post_order(Some("k-exp"), LAPTOP).await;
    assert_eq!(later.status, StatusCode::CREATED);
    assert!(later.header("idempotent-replayed").is_none());
    assert_ne!(later.json()["orderId"], first["orderId"]);
    assert_eq!(app.count("orders"), 2);
}

#[tokio::test]
async fn more_distinct_products_than_one_reservation_holds_is_400() {
    let app = app();
    let n = orders_domain::validation::MAX_DISTINCT_PRODUCTS + 1;
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"productId": format!("p-{i}"), "quantity": 1, "price": 1}))
        .collect();
    let body = serde_json::json!({"customerId": "c-wide", "items": items}).to_string();
    let r = app.post_order(Some("k-wide"), &body).await;
    is_problem(&r, 400);
    assert_eq!(r.json()["errors"][0]["field"], "items");
    assert_eq!(
        app.count("orders") + app.count("idempotency") + app.count("outbox"),
        0
    );
}

#[tokio::test]
async fn validation_failure_lists_fields_and_stores_nothing() {
    let app = app();
    let bad = r#"{"customerId":"","items":[{"productId":"laptop","quantity":0,"price":1.005}],"colour":"red"}"#;
    let r = app.post_order(Some("k-fix"), bad).await;
    is_problem(&r, 400);
    let fields: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    for f in [
        "customerId",
        "items[0].quantity",
        "items[0].price",
        "colour",
    ] {
        assert!(
            fields.contains(&f.to_owned()),
            "{f} missing from {fields:?}"
        );
    }
    assert_eq!(
        app.count("orders") + app.count("idempotency") + app.count("outbox"),
        0
    );
    // The client fixes the body and retries with the same key: a fresh 201, not a replay.
    let fixed = app.post_order(Some("k-fix"), LAPTOP).await;
    assert_eq!(fixed.status, StatusCode::CREATED);
    assert!(fixed.header("idempotent-replayed").is_none());
}

#[tokio::test]
async fn bad_bodies_and_headers_are_problems() {
    let app = app();
    is_problem(&app.post_order(None, "{\"customerId\":").await, 400);
    is_problem(&app.post_order(None, "[]").await, 400);
    is_problem(&app.post_order(Some(&"k".repeat(256)), LAPTOP).await, 400);
    is_problem(&app.post_order(Some("has space"), LAPTOP).await, 400);
    assert_eq!(
        app.post_order(Some(&"k".repeat(255)), LAPTOP).await.status,
        StatusCode::CREATED
    );
    let text = Request::post("/orders")
        .header("content-type", "text/plain")
        .body(Body::from(LAPTOP))
        .unwrap();
    is_problem(&app.send(text).await, 415);
    let none = Request::post("/orders").body(Body::from(LAPTOP)).unwrap();
    is_problem(&app.send(none).await, 415);
    let big = format!(r#"{{"customerId":"{}"}}"#, "x".repeat(70_000));
    is_problem(&app.post_order(None, &big).await, 413);
    let conflicting = Request::post("/orders")
        .header("content-type", "application/json")
        .header("x-idempotency-key", "a")
        .header("idempotency-key", "b")
        .body(Body::from(LAPTOP))
        .unwrap();
    is_problem(&app.send(conflicting).await, 400);
    assert_eq!(app.count("orders"), 1);
}

#[tokio::test]
async fn key_can_be_required() {
    let app = app_with(ApiSettings {
        require_idempotency_key: true,
        ..ApiSettings::default()
    });
    is_problem(&app.post_order(None, LAPTOP).await, 400);
    assert_eq!(
        app.post_order(Some("k"), LAPTOP).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn unknown_voucher_is_409_and_stores_nothing() {
    let app = app();
    let body = LAPTOP.replace("\"items\"", "\"voucherCode\":\"NO-SUCH\",\"items\"");
    is_problem(&app.post_order(Some("k-v"), &body).await, 409);
    assert_eq!(app.count("orders") + app.count("idempotency"), 0);
}

#[tokio::test]
async fn get_order_shows_the_live_order() {
    let app = app();
    let id = app.post_order(None, LAPTOP).await.json()["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.get(&format!("/orders/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let o = r.json();
    assert_eq!(o["orderId"], id.as_str());
    assert_eq!(o["customerId"], "customer-123");
    assert_eq!(
        o["items"],
        json!([{"productId": "laptop", "quantity": 1, "price": 1299.99}])
    );
    assert_eq!(o["status"], "PENDING");
    assert_eq!(o["version"], 1);
    assert!(o["history"].is_array());
    is_problem(
        &app.get(&format!("/orders/{}", uuid::Uuid::new_v4())).await,
        404,
    );
    is_problem(&app.get("/orders/not-a-uuid").await, 404);
}

#[tokio::test]
async fn list_pages_newest_first() {
    let app = app();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.post_order(None, LAPTOP).await.json()["orderId"].clone());
        app.clock.advance(chrono::Duration::milliseconds(5));
    }
    let mut seen = Vec::new();
    let mut uri = "/orders?customerId=customer-123&limit=2".to_owned();
    loop {
        let page = app.get(&uri).await.json();
        seen.extend(
            page["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["orderId"].clone()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => uri = format!("/orders?customerId=customer-123&limit=2&cursor={c}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    is_problem(&app.get("/orders").await, 400);
    is_problem(&app.get("/orders?customerId=c&limit=0").await, 400);
    is_problem(&app.get("/orders?customerId=c&limit=101").await, 400);
    is_problem(&app.get("/orders?customerId=c&cursor=garbage").await, 400);
    assert_eq!(
        app.get("/orders?customerId=nobody").await.json(),
        json!({"orders": [], "nextCursor": null})
    );
}

#[tokio::test]
async fn inventory_get_and_put() {
    let app = app();
    assert_eq!(
        app.get("/inventory/sold-out").await.json(),
        json!({"productId": "sold-out", "available": 0})
    );
    is_problem(&app.get("/inventory/nothing-here").await, 404);
    let put = |body: &'static str| {
        Request::put("/inventory/widget")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    assert_eq!(
        app.send(put(r#"{"available": 7}"#)).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get("/inventory/widget").await.json()["available"], 7);
    is_problem(&app.send(put(r#"{"available": -1}"#)).await, 400);
    is_problem(&app.send(put(r#"{"available": 1.5}"#)).await, 400);
    is_problem(&app.send(put(r#"{"available": 1, "x": 1}"#)).await, 400);
    assert_eq!(app.get("/inventory/widget").await.json()["available"], 7);
}

#[tokio::test]
async fn vouchers_health_openapi_and_fallbacks() {
    let app = app();
    assert_eq!(
        app.get("/customers/nobody/vouchers").await.json(),
        json!({"vouchers": []})
    );
    assert_eq!(app.get("/health").await.json()["status"], "ok");
    let doc: Value = app.get("/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/orders",
        "/orders/{id}",
        "/inventory/{productId}",
        "/customers/{customerId}/vouchers",
        "/health",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    is_problem(&app.get("/nope").await, 404);
    is_problem(
        &app.send(Request::delete("/orders").body(Body::empty()).unwrap())
            .await,
        405,
    );
}
