//! `/metrics` is the embedded runtime's: the local stack serves and documents it, a router
//! without the stack's metrics (the API Lambda's) does neither, and requests through it are
//! not measured. The exposition itself is read by a reference parser in the process suite.

use orders_test_support::app;
use orders_test_support::stack::Stack;

#[tokio::test]
async fn the_local_stack_serves_metrics_and_a_router_without_them_does_not() {
    let stack = Stack::new().await;
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{}/metrics", stack.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("orders_outbox_backlog "));
    let doc: serde_json::Value = client
        .get(format!("{}/openapi.json", stack.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"].get("/metrics").is_some());

    let lambda_like = app();
    assert_eq!(lambda_like.get("/metrics").await.status.as_u16(), 404);
    let doc = lambda_like.get("/openapi.json").await.json();
    assert!(doc["paths"].get("/metrics").is_none());
}
