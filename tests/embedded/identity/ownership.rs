//! What each caller may do with identity on (the rules of `orders_domain::access`, through the
//! router): customers create and read their own orders, another customer's order is 404,
//! naming another customer is 403, admins (by scope) act for anyone and alone write stock,
//! and an idempotency key is the caller's own.

use super::*;
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn customers_see_only_their_own_orders_and_vouchers() {
    let id = id_app().await;
    let (alice, bob, ops) = (id.token("alice"), id.token("bob"), id.admin("ops"));

    let r = id
        .call("POST", "/orders", Some(&alice), Some(&order(None)), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "customerId defaults to the caller"
    );
    let location = r.header("location").unwrap().to_owned();
    let mine = id.call("GET", &location, Some(&alice), None, None).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.json()["customerId"], "alice");

    let theirs = id.call("GET", &location, Some(&bob), None, None).await;
    assert_eq!(
        theirs.status,
        StatusCode::NOT_FOUND,
        "existence is not leaked"
    );
    assert_eq!(
        id.call("GET", &location, Some(&ops), None, None)
            .await
            .status,
        StatusCode::OK
    );

    let r = id
        .call(
            "POST",
            "/orders",
            Some(&bob),
            Some(&order(Some("alice"))),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "an order for someone else");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let r = id
        .call(
            "POST",
            "/orders",
            Some(&ops),
            Some(&order(Some("alice"))),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "an admin orders for anyone");

    let own = id.call("GET", "/orders", Some(&alice), None, None).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.json()["orders"].as_array().unwrap().len(), 2);
    for uri in ["/orders?customerId=alice", "/customers/alice/vouchers"] {
        assert_eq!(
            id.call("GET", uri, Some(&alice), None, None).await.status,
            StatusCode::OK,
            "{uri}"
        );
        assert_eq!(
            id.call("GET", uri, Some(&bob), None, None).await.status,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
        assert_eq!(
            id.call("GET", uri, Some(&ops), None, None).await.status,
            StatusCode::OK,
            "{uri}"
        );
    }
}

#[tokio::test]
async fn only_admins_write_stock_by_scope_or_group() {
    let id = id_app().await;
    let body = json!({"available": 7});
    let alice = id.token("alice");
    let r = id
        .call("PUT", "/inventory/gizmo", Some(&alice), Some(&body), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        id.call("GET", "/inventory/gizmo", Some(&alice), None, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let by_scope = id.admin("ops");
    let now = jsonwebtoken::get_current_timestamp();
    let by_group = id.keys.sign(&json!({
        "sub": "ops2", "iss": ISSUER, "client_id": AUDIENCE, "exp": now + 600,
        "cognito:groups": ["staff", "orders-admin"],
    }));
    let scope_lookalike = id
        .keys
        .token("eve", ISSUER, AUDIENCE, Some("orders/admins orders"), 600);
    assert_eq!(
        id.call(
            "PUT",
            "/inventory/gizmo",
            Some(&scope_lookalike),
            Some(&body),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    for token in [by_scope, by_group] {
        let r = id
            .call("PUT", "/inventory/gizmo", Some(&token), Some(&body), None)
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = id
        .call("GET", "/inventory/gizmo", Some(&alice), None, None)
        .await;
    assert_eq!(r.json()["available"], 7);
}

#[tokio::test]
async fn one_key_from_two_customers_is_two_orders_and_replays_stay_private() {
    let id = id_app().await;
    let (alice, bob) = (id.token("alice"), id.token("bob"));
    let body = order(None);
    let a = id
        .call(
            "POST",
            "/orders",
            Some(&alice),
            Some(&body),
            Some("shared-key"),
        )
        .await;
    let b = id
        .call(
            "POST",
            "/orders",
            Some(&bob),
            Some(&body),
            Some("shared-key"),
        )
        .await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_ne!(a.json()["orderId"], b.json()["orderId"]);
    assert!(
        b.header("idempotent-replayed").is_none(),
        "bob got a fresh order"
    );

    let again = id
        .call(
            "POST",
            "/orders",
            Some(&alice),
            Some(&body),
            Some("shared-key"),
        )
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, a.body, "alice's own response, byte for byte");
    // Spelling out one's own id is the same request as omitting it.
    let explicit = id
        .call(
            "POST",
            "/orders",
            Some(&alice),
            Some(&order(Some("alice"))),
            Some("shared-key"),
        )
        .await;
    assert_eq!(explicit.body, a.body);
    let mut null = order(None);
    null["customerId"] = Value::Null;
    let null = id
        .call(
            "POST",
            "/orders",
            Some(&alice),
            Some(&null),
            Some("shared-key"),
        )
        .await;
    assert_eq!(null.body, a.body, "a null customerId is an absent one");
    assert_eq!(id.app.count("orders"), 2);
}
