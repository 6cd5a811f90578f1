//! The subscription API: create (secret shown once), list and get without secrets, delete;
//! every URL and type rule a 400 problem that creates nothing, with and without private
//! subscribers allowed; admin only with identity on; documented where served.

use super::{ALL_TYPES, post_subscription, stack};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use orders::http::ApiSettings;
use orders_domain::standard_webhooks::WebhookSecret;
use orders_test_support::stack::{Stack, StackOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Any request to the stack's router; the answer with its headers.
async fn call(
    stack: &Stack,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let res = stack
        .router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, headers, json)
}

fn subscriptions_in_db(stack: &Stack) -> i64 {
    let conn = rusqlite::Connection::open(stack.db()).unwrap();
    conn.query_row("SELECT count(*) FROM subscriptions", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn create_shows_the_secret_once_and_list_get_delete_follow() {
    let s = stack(1.0).await;
    let body =
        json!({"url": "http://127.0.0.1:9/hook", "types": ["order.completed", "order.created"]});
    let (status, headers, created) = call(&s, "POST", "/subscriptions", None, Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        headers.get("location").unwrap().to_str().unwrap(),
        format!("/subscriptions/{id}")
    );
    assert_eq!(created["url"], "http://127.0.0.1:9/hook");
    assert_eq!(
        created["types"],
        json!(["order.completed", "order.created"])
    );
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(
        WebhookSecret::parse(secret).is_ok(),
        "a Standard Webhooks secret"
    );
    assert_eq!(secret.len(), "whsec_".len() + 44, "32 random bytes, base64");
    let (_, _, other) = call(&s, "POST", "/subscriptions", None, Some(&body)).await;
    assert_ne!(other["secret"], created["secret"], "a secret of its own");

    let (status, _, list) = call(&s, "GET", "/subscriptions", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = list["subscriptions"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], id, "oldest first");
    assert!(
        !list.to_string().contains("whsec_"),
        "no secret listed: {list}"
    );
    assert!(listed[0].get("secret").is_none() && listed[0].get("disabledAt").is_none());
    let (status, _, one) = call(&s, "GET", &format!("/subscriptions/{id}"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, listed[0]);
    let uri = format!("/subscriptions/{id}/deliveries");
    let (status, _, page) = call(&s, "GET", &uri, None, None).await;
    assert_eq!(
        (status, page),
        (
            StatusCode::OK,
            json!({"deliveries": [], "nextCursor": null})
        )
    );

    let (status, _, _) = call(&s, "DELETE", &format!("/subscriptions/{id}"), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (method, uri) in [
        ("DELETE", format!("/subscriptions/{id}")),
        ("GET", format!("/subscriptions/{id}")),
        ("GET", format!("/subscriptions/{id}/deliveries")),
        ("GET", "/subscriptions/not-a-uuid".to_owned()),
    ] {
        let (status, headers, problem) = call(&s, method, &uri, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
    }
    assert_eq!(subscriptions_in_db(&s), 1);
}

/// Refused bodies and the field each names.
fn refused_bodies() -> Vec<(Value, &'static str)> {
    let types = json!(["order.completed"]);
    let url = |u: &str| json!({"url": u, "types": types});
    let long = format!("https://8.8.8.8/{}", "a".repeat(2048));
    vec![
        (url("ftp://8.8.8.8/hook"), "url"),
        (url("/relative/hook"), "url"),
        (url("http://user:pw@8.8.8.8/hook"), "url"),
        (url(&long), "url"),
        (url("http://169.254.169.254/latest/meta-data/"), "url"),
        (url("http://169.254.10.1/"), "url"),
        (url("http://[fe80::1]/"), "url"),
        (url("http://[fd00:ec2::254]/"), "url"),
        (
            url("http://metadata.google.internal/computeMetadata/v1/"),
            "url",
        ),
        (url("http://[::ffff:169.254.169.254]/"), "url"),
        (json!({"url": 42, "types": types}), "url"),
        (json!({"types": types}), "url"),
        (json!({"url": "https://8.8.8.8/", "types": []}), "types"),
        (
            json!({"url": "https://8.8.8.8/", "types": "order.created"}),
            "types",
        ),
        (json!({"url": "https://8.8.8.8/"}), "types"),
        (
            json!({"url": "https://8.8.8.8/", "types": ["order.deleted"]}),
            "types[0]",
        ),
        (
            json!({"url": "https://8.8.8.8/", "types": ["orders.internal.task-signal"]}),
            "types[0]",
        ),
        (
            json!({"url": "https://8.8.8.8/", "types": ["order.created", "order.created"]}),
            "types[1]",
        ),
        (
            json!({"url": "https://8.8.8.8/", "types": types, "secret": "whsec_x"}),
            "secret",
        ),
        (json!(["https://8.8.8.8/"]), ""),
    ]
}

async fn assert_refused(s: &Stack, body: &Value, field: &str) -> String {
    let (status, headers, problem) = call(s, "POST", "/subscriptions", None, Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    let errors = problem["errors"].as_array().expect("field errors");
    let hit = errors.iter().find(|e| e["field"] == field);
    let hit = hit.unwrap_or_else(|| panic!("{body}: no error for {field:?}: {problem}"));
    hit["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_rule_is_a_400_problem_that_creates_nothing() {
    let s = Stack::new().await; // as `orders` runs by default: no private subscribers
    for (body, field) in refused_bodies() {
        assert_refused(&s, &body, field).await;
    }
    for private in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.0.0.1/",
        "http://192.168.0.10/",
        "http://172.20.0.1/",
        "http://100.64.1.1/",
        "http://0.0.0.0:9/",
        "http://[::1]:9/",
        "http://[fd12::1]/",
    ] {
        let body = json!({"url": private, "types": ["order.created"]});
        let message = assert_refused(&s, &body, "url").await;
        assert!(
            message.contains("ORDERS_ALLOW_PRIVATE_SUBSCRIBERS"),
            "{private}: {message}"
        );
    }
    let (status, _, list) = call(&s, "GET", "/subscriptions", None, None).await;
    assert_eq!(
        (status, list),
        (StatusCode::OK, json!({"subscriptions": []}))
    );
    assert_eq!(subscriptions_in_db(&s), 0);
    // A public address is what the default is for (no event is written here, so nothing is
    // ever sent to it).
    let body = json!({"url": "https://8.8.8.8/hook", "types": ["order.completed"]});
    let (status, created) = post_subscription(&s, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let uri = format!("/subscriptions/{}", created["id"].as_str().unwrap());
    assert_eq!(
        call(&s, "DELETE", &uri, None, None).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn private_subscribers_allowed_still_refuse_link_local_and_metadata() {
    let s = stack(1.0).await;
    for (body, field) in refused_bodies() {
        assert_refused(&s, &body, field).await;
    }
    for private in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/",
        "http://10.0.0.1/",
    ] {
        let body = json!({"url": private, "types": ["order.created"]});
        let (status, created) = post_subscription(&s, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{private}: {created}");
    }
    assert_eq!(subscriptions_in_db(&s), 4);
}

#[tokio::test]
async fn with_identity_on_only_admins_manage_subscriptions() {
    use crate::identity::{AUDIENCE, ISSUER};
    let dir = tempfile::tempdir().unwrap();
    let (keys, identity) = crate::identity::dev_identity(dir.path()).await;
    let mut options = StackOptions::default();
    options.deliveries.allow_private = true;
    options.api = ApiSettings {
        identity,
        ..ApiSettings::default()
    };
    let s = Stack::with_options(options).await;
    let admin = keys.token("ops", ISSUER, AUDIENCE, Some("orders/admin"), 3600);
    let customer = keys.token("alice", ISSUER, AUDIENCE, None, 3600);
    let body = json!({"url": "http://127.0.0.1:9/hook", "types": ["order.created"]});
    let (status, _, created) = call(&s, "POST", "/subscriptions", Some(&admin), Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let event = uuid::Uuid::now_v7();
    let operations = [
        ("POST", "/subscriptions".to_owned(), Some(&body)),
        ("GET", "/subscriptions".to_owned(), None),
        ("GET", format!("/subscriptions/{id}"), None),
        ("DELETE", format!("/subscriptions/{id}"), None),
        (
            "GET",
            format!("/subscriptions/{id}/deliveries?status=failed"),
            None,
        ),
        (
            "POST",
            format!("/subscriptions/{id}/deliveries/{event}/retry"),
            None,
        ),
    ];
    for (method, uri, body) in &operations {
        let (status, headers, _) = call(&s, method, uri, None, *body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (status, _, problem) = call(&s, method, uri, Some(&customer), *body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {problem}");
    }
    assert_eq!(
        subscriptions_in_db(&s),
        1,
        "nothing changed by the refused calls"
    );
    let (status, _, list) = call(&s, "GET", "/subscriptions", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_document_has_the_routes_where_they_are_served_and_the_event_schemas_always() {
    let s = stack(1.0).await;
    let (_, _, doc) = call(&s, "GET", "/openapi.json", None, None).await;
    for path in [
        "/subscriptions",
        "/subscriptions/{id}",
        "/subscriptions/{id}/deliveries",
        "/subscriptions/{id}/deliveries/{eventId}/retry",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    let schemas = &doc["components"]["schemas"];
    for name in [
        "OrderChange",
        "VoucherIssued",
        "EventType",
        "SubscriptionView",
        "DeliveryView",
    ] {
        assert!(schemas.get(name).is_some(), "{name}");
    }
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(&r);
        assert!(schemas.get(name).is_some(), "{r} is not in the document");
    }
    let types = &schemas["CreateSubscriptionRequest"]["properties"]["types"];
    assert_eq!(types["maxItems"], ALL_TYPES.len(), "{types}");
    assert_eq!(schemas["EventType"]["enum"], json!(ALL_TYPES));

    // Without subscriptions (the API Lambda's router): neither served nor documented.
    let app = orders_test_support::app();
    let reply = app.get("/openapi.json").await;
    let doc = reply.json();
    assert!(doc["paths"].get("/subscriptions").is_none());
    assert!(doc["components"]["schemas"].get("OrderChange").is_some());
    assert_eq!(
        app.get("/subscriptions").await.status,
        StatusCode::NOT_FOUND
    );
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
