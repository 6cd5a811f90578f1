//! `POST /webhooks/payments`: a refused signature is a 401 that stores nothing; a valid
//! webhook is applied once however often it is delivered; a signed body that is not a
//! payment result is a 400; no secret, no webhooks (503); no bearer token is ever asked for.

use super::*;
use crate::identity::{AUDIENCE, ISSUER};
use chrono::TimeDelta;
use orders_domain::standard_webhooks::sign;

/// Nothing a refused webhook could have written: no dedup record, no signal, the order and
/// its payment as they were.
async fn nothing_stored(app: &TestApp, order: OrderId, version: i64) {
    assert_eq!(app.count("payment_webhooks"), 0, "no webhook recorded");
    assert_eq!(signals(app, order), 0, "no signal queued");
    let o = get(app, order).await;
    assert_eq!(
        (o["status"].as_str(), o["version"].as_i64()),
        (Some("AWAITING_PAYMENT"), Some(version)),
        "{o}"
    );
    assert_eq!(o["payment"]["status"], "REQUESTED", "{o}");
}

/// An order waiting for its payment, and its version.
async fn awaiting(app: &TestApp) -> (OrderId, i64) {
    let id = order(app, "customer-pay").await;
    advance(app, id, &TO_AWAITING).await;
    let version = get(app, id).await["version"].as_i64().unwrap();
    (id, version)
}

#[tokio::test]
async fn refused_signatures_are_401_and_store_nothing() {
    let key = secret();
    let app = app(&key);
    let (id, version) = awaiting(&app).await;
    let body = payment_body(id, "payment.succeeded", TOTAL).to_string();
    let now = app.clock.now();
    let signed = Signed::new(&key, "msg_1", now.timestamp(), body.as_bytes()).unwrap();
    let [h_id, h_ts, h_sig] = signed.headers();

    let missing = [
        vec![h_ts, h_sig],
        vec![h_id, h_sig],
        vec![h_id, h_ts],
        vec![],
    ];
    for headers in missing {
        let r = post_webhook(&app, body.as_bytes(), &headers).await;
        let p = problem(&r, 401);
        assert!(p["detail"].as_str().unwrap().contains("missing"), "{p}");
        assert!(
            !r.header("www-authenticate")
                .unwrap_or("")
                .starts_with("Bearer"),
            "a signature, not a token, is asked for"
        );
    }

    let tampered = body.replace("1299.99", "1.99");
    let r = post_webhook(&app, tampered.as_bytes(), &signed.headers()).await;
    problem(&r, 401);

    let bad = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let r = post_webhook(
        &app,
        body.as_bytes(),
        &[h_id, h_ts, ("webhook-signature", bad)],
    )
    .await;
    problem(&r, 401);

    let other = secret();
    let r = deliver(
        &app,
        &other,
        "msg_1",
        now,
        &payment_body(id, "payment.succeeded", TOTAL),
    )
    .await;
    problem(&r, 401);

    for off in [TimeDelta::seconds(-301), TimeDelta::seconds(301)] {
        let at = now + off;
        let stale = sign(&key, "msg_1", at.timestamp(), body.as_bytes());
        let ts = at.timestamp().to_string();
        let headers = [
            h_id,
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", stale.as_str()),
        ];
        let p = problem(&post_webhook(&app, body.as_bytes(), &headers).await, 401);
        assert!(p["detail"].as_str().unwrap().contains("tolerance"), "{p}");
    }
    nothing_stored(&app, id, version).await;

    // The same delivery, correctly signed, is taken: the refusals were about the signature.
    let r = post_webhook(&app, body.as_bytes(), &signed.headers()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn a_webhook_delivered_twice_is_applied_once() {
    let key = secret();
    let app = app(&key);
    let (id, version) = awaiting(&app).await;
    let body = payment_body(id, "payment.succeeded", TOTAL);
    let first = deliver(&app, &key, "msg_twice", app.clock.now(), &body).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(
        first.json(),
        json!({"received": true, "outcome": "applied"})
    );
    // A retry is signed again (a later timestamp) under the same id.
    app.clock.advance(TimeDelta::seconds(30));
    let again = deliver(&app, &key, "msg_twice", app.clock.now(), &body).await;
    assert_eq!(
        again.json(),
        json!({"received": true, "outcome": "duplicate"})
    );

    let o = get(&app, id).await;
    assert_eq!(o["status"], "PAYMENT_PROCESSED", "{o}");
    assert_eq!(o["version"], version + 1, "one status change: {o}");
    assert_eq!(o["payment"]["status"], "SUCCEEDED", "{o}");
    assert_eq!(signals(&app, id), 1, "one signal for the saga");
    assert_eq!(app.count("payment_webhooks"), 1);
}

#[tokio::test]
async fn a_declined_payment_is_applied_with_its_reason() {
    let key = secret();
    let app = app(&key);
    let (id, version) = awaiting(&app).await;
    let mut body = payment_body(id, "payment.failed", TOTAL);
    body["data"]["reason"] = "card declined".into();
    let r = deliver(&app, &key, "msg_declined", app.clock.now(), &body).await;
    assert_eq!(r.json()["outcome"], "applied");
    let o = get(&app, id).await;
    assert_eq!(o["payment"]["status"], "FAILED", "{o}");
    assert_eq!(
        o["version"], version,
        "the saga, not the webhook, moves it on: {o}"
    );
    assert_eq!(signals(&app, id), 1);
}

#[tokio::test]
async fn a_well_signed_malformed_body_is_400_and_an_unknown_type_is_acknowledged() {
    let key = secret();
    let app = app(&key);
    let (id, version) = awaiting(&app).await;
    let now = app.clock.now();

    let mut extra = payment_body(id, "payment.succeeded", TOTAL);
    extra["data"]["currency"] = "EUR".into();
    extra["data"]["amount"] = json!(1.005);
    let p = problem(&deliver(&app, &key, "msg_bad", now, &extra).await, 400);
    let mut fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, ["data.amount", "data.currency"], "{p}");

    let no_data = json!({"type": "payment.succeeded"});
    problem(&deliver(&app, &key, "msg_bad2", now, &no_data).await, 400);
    let bytes = b"{\"type\": \"payment.succeeded\", \"data\": ";
    let signed = Signed::new(&key, "msg_bad3", now.timestamp(), bytes).unwrap();
    let p = problem(&post_webhook(&app, bytes, &signed.headers()).await, 400);
    assert_eq!(p["type"], "/problems/malformed-json", "{p}");

    let other = json!({"type": "payment.disputed", "data": {"anything": 1}});
    let r = deliver(&app, &key, "msg_other", now, &other).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"received": true, "outcome": "ignored"}));
    nothing_stored(&app, id, version).await;
}

#[tokio::test]
async fn results_that_do_not_match_are_acknowledged_and_change_nothing() {
    let key = secret();
    let app = app(&key);
    let (id, version) = awaiting(&app).await;
    let now = app.clock.now();
    let wrong_amount = payment_body(id, "payment.succeeded", 1.0);
    let r = deliver(&app, &key, "msg_amount", now, &wrong_amount).await;
    assert_eq!(r.json()["outcome"], "ignored");
    let unknown = payment_body(OrderId::new(), "payment.succeeded", TOTAL);
    let r = deliver(&app, &key, "msg_unknown", now, &unknown).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["outcome"].clone()),
        (200, json!("ignored"))
    );
    let o = get(&app, id).await;
    assert_eq!(
        (o["status"].clone(), o["version"].clone()),
        (json!("AWAITING_PAYMENT"), json!(version))
    );
    assert_eq!(signals(&app, id), 0);
}

#[tokio::test]
async fn without_a_secret_webhooks_are_503() {
    let app = orders_test_support::app();
    let id = order(&app, "customer-pay").await;
    let body = payment_body(id, "payment.succeeded", TOTAL);
    let r = deliver(&app, &secret(), "msg_1", app.clock.now(), &body).await;
    let p = problem(&r, 503);
    assert_eq!(p["detail"], "webhooks not configured");
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn with_identity_on_the_webhook_needs_no_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, identity) = crate::identity::dev_identity(dir.path()).await;
    let key = secret();
    let app = app_with(ApiSettings {
        identity,
        payment_webhook_secret: Some(key.clone()),
        ..ApiSettings::default()
    });
    let admin = keys.token("ops", ISSUER, AUDIENCE, Some("orders/admin"), 3600);
    let body = json!({"customerId": "customer-pay", "items": [{"productId": "laptop", "quantity": 1, "price": TOTAL}]});
    let req = Request::post("/orders")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {admin}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let created = app.send(req).await;
    assert_eq!(created.status, 201);
    let id: OrderId = created.json()["orderId"].as_str().unwrap().parse().unwrap();
    advance(&app, id, &TO_AWAITING).await;

    let r = deliver(
        &app,
        &key,
        "msg_id_on",
        app.clock.now(),
        &payment_body(id, "payment.succeeded", TOTAL),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["outcome"], "applied");
    let unsigned = post_webhook(&app, b"{}", &[]).await;
    problem(&unsigned, 401);
    assert!(
        !unsigned
            .header("www-authenticate")
            .unwrap_or("")
            .starts_with("Bearer"),
        "no token is asked for"
    );
}
