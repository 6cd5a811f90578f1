//! The API as a Lambda: API Gateway HTTP API (payload 2.0) events go through `lambda_http`'s
//! adapter (what `lambda_http::run` wraps the router in) to the same router, on the DynamoDB
//! store on moto, and come back as API Gateway responses. And the binary, started as a
//! Lambda without its configuration, refuses to start and names what is missing.

use orders_test_support::dynamodb as support_dynamodb;

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use orders::clock::SystemClock;
use orders::http::{ApiSettings, AppState, router};
use serde_json::{Value, json};
use std::sync::Arc;

/// An HTTP API (v2) event without authorizer claims (the router serves identity off).
fn v2_event(method: &str, path: &str, query: &str, headers: Value, body: Option<&str>) -> Value {
    orders_test_support::apigw::http_api_event(method, path, query, None, headers, body)
}

async fn call(router: &axum::Router, event: Value) -> Value {
    let request: LambdaRequest = serde_json::from_value(event).expect("an API Gateway v2 event");
    let mut adapter = Adapter::from(router.clone());
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the router is infallible");
    serde_json::to_value(response).expect("an API Gateway response")
}

/// A JSON POST /orders without an idempotency key.
async fn post_json(router: &axum::Router, body: &str) -> Value {
    let headers = json!({"content-type": "application/json"});
    call(router, v2_event("POST", "/orders", "", headers, Some(body))).await
}

/// An order of one unit each of `MAX_DISTINCT_PRODUCTS + 1` different products.
fn wide_order(customer: &str) -> String {
    let n = orders_domain::validation::MAX_DISTINCT_PRODUCTS + 1;
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"productId": format!("p-{i}"), "quantity": 1, "price": 1}))
        .collect();
    json!({"customerId": customer, "items": items}).to_string()
}

fn body_json(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().expect("a text body")).expect("JSON body")
}

#[tokio::test]
async fn api_gateway_v2_events_reach_the_router_on_dynamodb() {
    let moto = orders_aws::moto::session().await;
    let stack = support_dynamodb::stack(&moto, "api-", |c| c).await;
    let router = router(AppState {
        store: stack.store,
        clock: Arc::new(SystemClock),
        settings: Arc::new(ApiSettings::default()),
    });

    let order = r#"{"customerId": "lambda-1", "items": [{"productId": "laptop", "quantity": 1, "price": 1299.99}]}"#;
    let headers = json!({"content-type": "application/json", "x-idempotency-key": "lambda-key-1"});
    let created = call(
        &router,
        v2_event("POST", "/orders", "", headers.clone(), Some(order)),
    )
    .await;
    assert_eq!(created["statusCode"], 201, "{created:#}");
    let first = body_json(&created);
    let id = first["orderId"].as_str().unwrap().to_owned();
    assert_eq!(created["headers"]["location"], format!("/orders/{id}"));
    assert_eq!(first["status"], "PENDING");
    assert_eq!(first["totalAmount"], 1299.99);

    let replay = call(
        &router,
        v2_event("POST", "/orders", "", headers, Some(order)),
    )
    .await;
    assert_eq!(replay["statusCode"], 201);
    assert_eq!(replay["headers"]["idempotent-replayed"], "true");
    assert_eq!(replay["body"], created["body"], "replayed byte for byte");

    let got = call(
        &router,
        v2_event("GET", &format!("/orders/{id}"), "", json!({}), None),
    )
    .await;
    assert_eq!(got["statusCode"], 200, "{got:#}");
    assert_eq!(body_json(&got)["customerId"], "lambda-1");

    let listed = call(
        &router,
        v2_event(
            "GET",
            "/orders",
            "customerId=lambda-1&limit=5",
            json!({}),
            None,
        ),
    )
    .await;
    assert_eq!(listed["statusCode"], 200);
    assert_eq!(body_json(&listed)["orders"][0]["orderId"], id.as_str());

    let bad = post_json(&router, "{").await;
    assert_eq!(bad["statusCode"], 400);
    assert_eq!(bad["headers"]["content-type"], "application/problem+json");

    // More distinct products than one DynamoDB reservation transaction holds: refused before
    // anything is written, not left to fail in the saga.
    let wide = wide_order("lambda-wide");
    let too_wide = post_json(&router, &wide).await;
    assert_eq!(too_wide["statusCode"], 400, "{too_wide:#}");
    assert_eq!(body_json(&too_wide)["errors"][0]["field"], "items");
    let none = v2_event("GET", "/orders", "customerId=lambda-wide", json!({}), None);
    assert_eq!(body_json(&call(&router, none).await)["orders"], json!([]));

    let stock = call(
        &router,
        v2_event("GET", "/inventory/laptop", "", json!({}), None),
    )
    .await;
    assert_eq!(stock["statusCode"], 200);
    assert_eq!(body_json(&stock)["available"], 1_000_000);
}

#[test]
fn as_a_lambda_without_its_tables_the_binary_refuses_to_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orders"))
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env_remove("ORDERS_TABLE_ORDERS")
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ORDERS_TABLE_ORDERS"), "stderr: {stderr}");
}
