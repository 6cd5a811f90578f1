//! infra/template.yaml held to the code it deploys: the tables of `orders_aws::tables`, the
//! functions, environments and permissions of `orders_aws::functions`, the placeholders of
//! workflow/statemachine.asl.json, the operations of the OpenAPI document, and which of them
//! are open ([`OPEN_ROUTES`], held to what the router answers a caller nobody vouched for).
//!
//! `ORDERS_TEMPLATE=<path>` checks another template (a scratch copy, say) instead. The
//! negative tests change one fact at a time, on the template's side or the code's, and
//! require the checker to name it: that is what keeps the main test able to fail.

mod checks;
mod model;
mod negative;
mod negative_events;
mod negative_hardening;
mod negative_identity;
mod negative_lifecycle;
mod negative_redrive;
mod negative_retention;
mod negative_simulator;
mod yaml;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use checks::{Code, check};
use orders::http::ApiSettings;
use orders::identity::{AdminRules, Identity};
use orders_aws::functions::{API, FUNCTIONS, PROCESSOR, STEPS, WAREHOUSE};
use orders_aws::tables::TABLES;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use utoipa::OpenApi;

const ASL_URI: &str = "../workflow/statemachine.asl.json";

/// The operations any caller may call without a token (`METHOD`, `/path` with `{}` for a
/// parameter): the template's routes for them declare no authorizer, every other route of the
/// API carries the JWT authorizer. A route authenticated otherwise than by a token (a signed
/// webhook) belongs here too. `open_routes_are_those_the_router_serves_without_a_caller`
/// holds this list to the router.
pub const OPEN_ROUTES: [(&str, &str); 3] = [
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("POST", "/webhooks/payments"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn template_path() -> PathBuf {
    std::env::var_os("ORDERS_TEMPLATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("infra/template.yaml"))
}

fn load(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    yaml::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(METHOD, /path/{})` of every operation the API documents (so, serves).
fn api_routes() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(orders::http::openapi::ApiDoc::openapi()).expect("openapi");
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                let shape = checks::route_shape(path);
                routes.insert((method.to_ascii_uppercase(), shape));
            }
        }
    }
    routes
}

fn code() -> Code {
    let asl_path = root().join("workflow/statemachine.asl.json");
    Code {
        tables: TABLES.to_vec(),
        functions: FUNCTIONS.to_vec(),
        api: API.logical,
        stream_consumer: PROCESSOR.logical,
        task_runner: STEPS.logical,
        queue_worker: WAREHOUSE.logical,
        asl: std::fs::read_to_string(&asl_path).expect("read the ASL"),
        asl_uri: ASL_URI,
        routes: api_routes(),
        open_routes: OPEN_ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect(),
    }
}

fn report(problems: &[String]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

#[test]
fn template_matches_the_code() {
    let path = template_path();
    let problems = check(&load(&path), &code());
    assert!(
        problems.is_empty(),
        "{} disagrees with the code:{}",
        path.display(),
        report(&problems)
    );
}

#[test]
fn definition_uri_names_the_asl_file_the_code_runs() {
    let resolved = root().join("infra").join(ASL_URI);
    let deployed = std::fs::read_to_string(&resolved).expect("the ASL next to the template");
    assert_eq!(deployed, code().asl);
    assert!(!code().routes.is_empty() && code().asl.contains("${"));
}

/// The routes whose handler does not ask for a caller: with identity from API Gateway and no
/// claims in the request (a route without an authorizer), every other operation answers 401
/// with a `Bearer` challenge. So a route the template leaves open is one the code serves to
/// anyone, and a route the code protects is not left to the handler alone.
#[tokio::test]
async fn open_routes_are_those_the_router_serves_without_a_caller() {
    let app = orders_test_support::app_with(ApiSettings {
        identity: Identity::ApiGateway(AdminRules {
            scope: "orders/admin".into(),
            group: "orders-admin".into(),
        }),
        ..ApiSettings::default()
    });
    let mut open = BTreeSet::new();
    for (method, shape) in api_routes() {
        let request = Request::builder()
            .method(method.as_str())
            .uri(shape.replace("{}", "p-1"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(if method == "GET" { "" } else { "{}" }))
            .expect("a request");
        let reply = app.send(request).await;
        let challenged = reply.status == StatusCode::UNAUTHORIZED
            && reply
                .header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer"));
        if !challenged {
            open.insert((method, shape));
        }
    }
    assert_eq!(
        open,
        code().open_routes,
        "the operations served without a caller are not OPEN_ROUTES"
    );
}
