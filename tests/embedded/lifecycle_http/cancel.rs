//! `PATCH /orders/{id}`: only `{"status": "CANCELLED", "reason"?}` is accepted, a refused
//! request stores nothing, another customer's order is a 404, too late is a 409 saying why,
//! and idempotency keys behave as they do for POST (a key of a POST is not a PATCH's).

use super::*;
use crate::identity::id_app;

const CANCEL: &str = r#"{"status": "CANCELLED"}"#;

fn fields(p: &Value) -> Vec<String> {
    let mut f: Vec<String> = p["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {p}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    f.sort();
    f
}

#[tokio::test]
async fn only_a_cancellation_is_accepted_and_a_refusal_stores_nothing() {
    let app = app(&secret());
    let id = order(&app, "customer-c").await;
    let uri = id.to_string();
    let cases: [(&str, &[&str]); 8] = [
        (r#"{"status": "COMPLETED"}"#, &["status"]),
        (r#"{"status": "cancelled"}"#, &["status"]),
        (r#"{}"#, &["status"]),
        (r#"{"status": "CANCELLED", "reason": ""}"#, &["reason"]),
        (r#"{"status": "CANCELLED", "reason": 5}"#, &["reason"]),
        (r#"{"status": "CANCELLED", "items": []}"#, &["items"]),
        (r#"{"status": "SHIPPED", "note": "x"}"#, &["note", "status"]),
        (r#"["CANCELLED"]"#, &[""]),
    ];
    for (body, expected) in cases {
        let p = problem(&patch(&app, &uri, body, Some("k-invalid"), None).await, 400);
        assert_eq!(fields(&p), expected.to_vec(), "{body}: {p}");
    }
    let long = format!(
        r#"{{"status": "CANCELLED", "reason": "{}"}}"#,
        "r".repeat(501)
    );
    let p = problem(
        &patch(&app, &uri, &long, Some("k-invalid"), None).await,
        400,
    );
    assert_eq!(fields(&p), ["reason"]);
    problem(&patch(&app, &uri, "{", None, None).await, 400);
    let req = Request::patch(format!("/orders/{id}"))
        .header("content-type", "text/plain")
        .body(Body::from(CANCEL))
        .unwrap();
    problem(&app.send(req).await, 415);
    problem(
        &patch(&app, &uri, CANCEL, Some("has space"), None).await,
        400,
    );

    assert_eq!(app.count("idempotency"), 0, "no key was kept");
    assert_eq!(signals(&app, id), 0);
    let o = get(&app, id).await;
    assert!(o.get("cancellationRequested").is_none(), "{o}");
    // The key refused with every bad body is still free.
    let r = patch(&app, &uri, CANCEL, Some("k-invalid"), None).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("idempotent-replayed").is_none());
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let app = app(&secret());
    problem(
        &patch(&app, &OrderId::new().to_string(), CANCEL, None, None).await,
        404,
    );
    problem(&patch(&app, "not-a-uuid", CANCEL, None, None).await, 404);
}

#[tokio::test]
async fn another_customers_order_is_404_and_stays_as_it_was() {
    let id = id_app().await;
    let alice = id.token("alice");
    let created = id
        .call(
            "POST",
            "/orders",
            Some(&alice),
            Some(&crate::identity::order(None)),
            None,
        )
        .await;
    assert_eq!(created.status, 201);
    let order = created.json()["orderId"].as_str().unwrap().to_owned();
    let uri = format!("/orders/{order}");
    let body: Value = serde_json::from_str(CANCEL).unwrap();

    let r = id.call("PATCH", &uri, None, Some(&body), None).await;
    assert_eq!(r.status, 401, "a token is needed");
    let bob = id.token("bob");
    let r = id.call("PATCH", &uri, Some(&bob), Some(&body), None).await;
    let p = problem(&r, 404);
    assert_eq!(
        p["detail"],
        format!("no order {order}"),
        "as for no order at all"
    );
    let get = id.call("GET", &uri, Some(&bob), None, None).await;
    assert_eq!(problem(&get, 404)["detail"], p["detail"], "as GET answers");
    let seen = id.call("GET", &uri, Some(&alice), None, None).await.json();
    assert!(seen.get("cancellationRequested").is_none(), "{seen}");

    let r = id
        .call("PATCH", &uri, Some(&alice), Some(&body), None)
        .await;
    assert_eq!(r.status, 202, "the owner may");
    let admin = id.admin("ops");
    let r = id
        .call("PATCH", &uri, Some(&admin), Some(&body), None)
        .await;
    assert_eq!(r.status, 202, "an admin may too");
    assert_eq!(r.json()["cancellationRequested"], true);
}

#[tokio::test]
async fn too_late_is_409_saying_why() {
    let app = app(&secret());
    let shipped = [OrderStatus::InventoryReserved, OrderStatus::AwaitingPayment];
    let cases = [
        ("SHIPPED", "the parcel has shipped"),
        ("COMPLETED", "the parcel has shipped"),
        ("FAILED", "the order has failed"),
        ("COMPENSATING", "being compensated"),
    ];
    for (status, why) in cases {
        let id = order(&app, "customer-late").await;
        match status {
            "SHIPPED" | "COMPLETED" => {
                advance(&app, id, &shipped).await;
                // The payment's webhook moves it to PAYMENT_PROCESSED; here the step store does.
                app.store
                    .step_job(move |s| async move {
                        let mv = StatusMove {
                            step: Step::RequestPayment,
                            to: OrderStatus::PaymentProcessed,
                            reason: None,
                        };
                        s.set_status(OrderAt::now(id), mv).await.expect("paid");
                    })
                    .await
                    .unwrap();
                advance(&app, id, &[OrderStatus::Shipped]).await;
                if status == "COMPLETED" {
                    advance(&app, id, &[OrderStatus::Completed]).await;
                }
            }
            "FAILED" => advance(&app, id, &[OrderStatus::Compensating, OrderStatus::Failed]).await,
            _ => advance(&app, id, &[OrderStatus::Compensating]).await,
        }
        let before = get(&app, id).await;
        assert_eq!(before["status"], status, "{before}");
        let p = problem(
            &patch(
                &app,
                &id.to_string(),
                CANCEL,
                Some(&format!("k-{status}")),
                None,
            )
            .await,
            409,
        );
        assert!(p["detail"].as_str().unwrap().contains(why), "{status}: {p}");
        let after = get(&app, id).await;
        assert_eq!(
            after["version"], before["version"],
            "nothing changed: {after}"
        );
        assert!(after.get("cancellationRequested").is_none(), "{after}");
        assert_eq!(signals(&app, id), 0);
    }
    assert_eq!(app.count("idempotency"), 0, "a 409 keeps no key");
}

#[tokio::test]
async fn a_key_replays_its_202_and_refuses_another_request() {
    let app = app(&secret());
    let id = order(&app, "customer-k").await;
    let uri = id.to_string();
    let body = r#"{"status": "CANCELLED", "reason": "ordered by mistake"}"#;
    let first = patch(&app, &uri, body, Some("k-1"), None).await;
    assert_eq!(
        first.status,
        202,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let o = first.json();
    assert_eq!(
        (
            o["orderId"].as_str(),
            o["cancellationRequested"].as_bool(),
            o["cancellationReason"].as_str()
        ),
        (Some(uri.as_str()), Some(true), Some("ordered by mistake")),
        "{o}"
    );
    assert!(first.header("idempotent-replayed").is_none());

    let reordered = r#"{ "reason" : "ordered by mistake", "status" : "CANCELLED" }"#;
    let again = patch(&app, &uri, reordered, Some("k-1"), None).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "byte for byte");

    let other = patch(&app, &uri, CANCEL, Some("k-1"), None).await;
    problem(&other, 422);
    // One key space, told apart by method and path: a POST's key is not a PATCH's.
    let p = app
        .post_order(Some("k-1"), orders_test_support::LAPTOP)
        .await;
    problem(&p, 422);
    let post = app
        .post_order(Some("k-post"), orders_test_support::LAPTOP)
        .await;
    assert_eq!(post.status, 201);
    problem(&patch(&app, &uri, body, Some("k-post"), None).await, 422);
    // Nor is one order's cancellation another's.
    let second = order(&app, "customer-k").await;
    problem(
        &patch(&app, &second.to_string(), body, Some("k-1"), None).await,
        422,
    );
    assert_eq!(signals(&app, id), 1);
    assert_eq!(signals(&app, second), 0);
}

#[tokio::test]
async fn cancelling_twice_is_202_twice_with_one_signal() {
    let app = app(&secret());
    let id = order(&app, "customer-twice").await;
    advance(&app, id, &TO_AWAITING).await;
    let version = get(&app, id).await["version"].as_i64().unwrap();
    let first = patch(&app, &id.to_string(), CANCEL, None, None).await;
    assert_eq!(
        first.status,
        202,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let second = patch(
        &app,
        &id.to_string(),
        r#"{"status": "CANCELLED", "reason": "again"}"#,
        None,
        None,
    )
    .await;
    assert_eq!(second.status, 202);
    assert_eq!(
        second.body, first.body,
        "the same order, unchanged by the second"
    );
    let o = second.json();
    assert_eq!(o["cancellationRequested"], true);
    assert_eq!(o["version"], version + 1, "{o}");
    assert!(
        o.get("cancellationReason").is_none(),
        "the first request's (none): {o}"
    );
    assert_eq!(signals(&app, id), 1, "one signal for the saga");
}
