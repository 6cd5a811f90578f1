//! What the logs may hold. Request bodies, idempotency keys and payment tokens never reach
//! the log, at the default level or at debug: a body can carry personal data, a key is the
//! client's own string (it may embed anything, and whoever reads it could replay an order's
//! answer), and a payment token is a credential in a real payment flow. Requests are
//! correlated by the generated `x-request-id` and by order ids instead.

use orders_test_support as common;

use common::process::{Workdir, http_client, post_raw};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hold_no_bodies_keys_or_payment_tokens() {
    let work = Workdir::new("h.db");
    let log = work.dir.path().join("server.log");
    let env = [("RUST_LOG", "debug")];
    let mut server = work.start_logging(&[], &env, &log).await;
    let client = http_client();
    let key = "idem-key-s3cr3t-7f3a";
    let token = "pm_card_s3cr3tTOKEN";
    let created = client
        .post(format!("{}/orders", server.base))
        .header("x-idempotency-key", key)
        .json(&json!({"customerId": "hygiene-c", "paymentMethod": token,
            "items": [{"productId": "laptop", "quantity": 1, "price": 42.42}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let order_id = created.json::<serde_json::Value>().await.unwrap()["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Refused bodies are not echoed to the log either.
    for body in [
        r#"{"customerId": "BODYMARKER-1", "items": "nope"}"#,
        r#"{"customerId": "BODYMARKER-2", "#,
    ] {
        let r = post_raw(&client, &server.base, body, Some("idem-key-s3cr3t-other")).await;
        assert_eq!(r.status().as_u16(), 400);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.terminate(Duration::from_secs(20)).success());

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&order_id),
        "the log is not being written (no order id in it):\n{text}"
    );
    for secret in ["s3cr3t", "BODYMARKER", "42.42", "\"items\""] {
        assert!(!text.contains(secret), "the log holds {secret:?}:\n{text}");
    }
}
