//! The page's files as served, and the console's API on a real store: every file with the
//! strict CSP, nothing inline that the CSP would block, every file the page asks for served;
//! the routes exist only where the runtime has the console, and refuse bad input with 4xx.

use super::{ASSETS, CSP, INDEX};
use crate::clock::SystemClock;
use crate::http::{ApiSettings, AppState, router};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use orders_sqlite::SqliteStore;
use std::sync::Arc;
use tower::ServiceExt;

fn app(dir: &tempfile::TempDir, console: bool) -> axum::Router {
    let store = Arc::new(SqliteStore::open(&dir.path().join("orders.db")).unwrap());
    let console = console.then(|| super::ConsoleApi {
        store: store.clone(),
    });
    router(AppState {
        store,
        clock: Arc::new(SystemClock),
        settings: Arc::new(ApiSettings {
            console,
            ..ApiSettings::default()
        }),
    })
}

async fn send(app: &axum::Router, method: &str, path: &str) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let csp = res
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, csp, String::from_utf8(body.to_vec()).unwrap())
}

/// Every `/console/...` path the page's HTML and its modules refer to.
fn referenced() -> Vec<String> {
    let mut texts = vec![INDEX.to_owned()];
    texts.extend(ASSETS.iter().map(|(_, _, body)| body.to_string()));
    let mut found = Vec::new();
    for text in texts {
        for piece in text.split(['"', '\'']) {
            if let Some(name) = piece.strip_prefix("./").filter(|n| n.ends_with(".js")) {
                found.push(format!("/console/{name}"));
            } else if piece.starts_with("/console/") && !piece.contains(['$', ' ']) {
                found.push(piece.to_owned());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn the_page_has_nothing_inline_for_the_policy_to_block() {
    let html = INDEX.to_ascii_lowercase();
    for script in html.split("<script").skip(1) {
        let tag = &script[..script.find('>').unwrap()];
        assert!(tag.contains("src="), "an inline script: <script{tag}>");
    }
    assert!(!html.contains("<style"), "an inline stylesheet");
    assert!(!html.contains(" style="), "an inline style attribute");
    for js in ASSETS.iter().filter(|(n, ..)| n.ends_with(".js")) {
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "eval(",
            "new Function",
            "setAttribute(\"style",
        ] {
            assert!(!js.2.contains(forbidden), "{} uses {forbidden}", js.0);
        }
    }
    assert!(CSP.starts_with("default-src 'self'"));
}

#[tokio::test]
async fn every_file_the_page_asks_for_is_served_with_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir, true);
    let mut paths = referenced();
    assert!(
        paths.len() >= 6,
        "the scan found the page's files: {paths:?}"
    );
    paths.extend([
        "/console".to_owned(),
        "/console/statemachine.json".to_owned(),
    ]);
    for path in paths {
        let (status, csp, body) = send(&app, "GET", &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(csp, CSP, "{path}");
        assert!(!body.is_empty(), "{path}");
    }
    let (_, _, asl) = send(&app, "GET", "/console/statemachine.json").await;
    assert_eq!(
        asl,
        orders_workflow::asl::DEFINITION,
        "the definition the executor runs"
    );
    let (_, _, auth) = send(&app, "GET", "/console/settings.json").await;
    assert_eq!(auth, r#"{"auth":"none"}"#);
}

#[tokio::test]
async fn the_console_api_answers_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir, true);
    let (status, _, body) = send(&app, "GET", "/admin/orders").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["orders"], serde_json::json!([]));
    let counts = page["counts"].as_array().unwrap();
    assert_eq!(counts.len(), orders_domain::OrderStatus::ALL.len());
    assert_eq!(
        counts[0],
        serde_json::json!({"status": "PENDING", "count": 0})
    );

    for bad in [
        "status=LOST",
        "limit=0",
        "limit=101",
        "cursor=nope",
        "customerId=",
    ] {
        let (status, _, body) = send(&app, "GET", &format!("/admin/orders?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let unknown = uuid::Uuid::new_v4();
    let (status, ..) = send(&app, "GET", &format!("/admin/orders/{unknown}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, parked) = send(&app, "GET", "/outbox/parked").await;
    assert_eq!(parked, r#"{"events":[]}"#);
    for id in [unknown.to_string(), "not-an-id".to_owned()] {
        let path = format!("/outbox/parked/{id}/retry");
        let (status, ..) = send(&app, "POST", &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn without_the_console_nothing_of_it_is_served_or_documented() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir, false);
    for path in [
        "/console",
        "/console/app.js",
        "/admin/orders",
        "/outbox/parked",
    ] {
        let (status, ..) = send(&app, "GET", path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, _, doc) = send(&app, "GET", "/openapi.json").await;
    assert!(!doc.contains("/admin/orders") && !doc.contains("/console"));
    let other = tempfile::tempdir().unwrap();
    let (_, _, doc) = send(&self::app(&other, true), "GET", "/openapi.json").await;
    for path in ["\"/console\"", "\"/admin/orders\"", "\"/outbox/parked\""] {
        assert!(doc.contains(path), "{path} is documented where served");
    }
    assert!(doc.contains("\"$ref\":\"#/components/schemas/OrderSummaryView\""));
    let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
    for piece in doc.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &piece[..piece.find('"').unwrap()];
        assert!(
            parsed["components"]["schemas"].get(name).is_some(),
            "{name} is referred to but not in the document"
        );
    }
}
