//! Identity on the API Lambda (`Identity::ApiGateway`): API Gateway's JWT authorizer has
//! verified the token and passes its claims in `requestContext.authorizer.jwt.claims`, every
//! one flattened to a string (a scope list space-separated, `cognito:groups` as `"[a b]"`).
//! HTTP API (payload 2.0) events go through `lambda_http`'s adapter to the router on the
//! DynamoDB store on moto, as in `api_lambda`.
//!
//! Proven: an `Authorization` header API Gateway did not vouch for is never trusted (401), the
//! claims decide who owns what and who is admin (by scope and by group, in their flattened
//! forms), and idempotency keys are each caller's own on DynamoDB: the same key from two
//! customers is two orders, and a replay answers only its own caller's response.

use orders_test_support::dynamodb as support_dynamodb;

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use orders::clock::SystemClock;
use orders::http::{ApiSettings, AppState, router};
use orders::identity::dev::DevKeys;
use orders::identity::{AdminRules, Identity};
use orders_aws::moto::MotoSession;
use serde_json::{Value, json};
use std::sync::Arc;

const ALICE: &str = r#"{"sub":"alice"}"#;
const BOB: &str = r#"{"sub":"bob"}"#;
/// An admin by scope: a Cognito resource-server scope beside others, space-separated.
const OPS: &str = r#"{"sub":"ops","scope":"openid orders/admin"}"#;
/// An admin by group: the array claim as API Gateway flattens it.
const OPS2: &str = r#"{"sub":"ops2","cognito:groups":"[orders-admin]"}"#;

const LAPTOP: &str = r#"{"items":[{"productId":"laptop","quantity":1,"price":1299.99}]}"#;

struct Lambda {
    /// Held for the whole test: the emulator's state is global (see `orders_aws::moto`).
    _moto: MotoSession,
    router: axum::Router,
}

/// The API Lambda's router as `IdentityArgs::lambda` builds it with `--auth jwt`.
async fn lambda() -> Lambda {
    let moto = orders_aws::moto::session().await;
    let stack = support_dynamodb::stack(&moto, "idl-", |c| c).await;
    let identity = Identity::ApiGateway(AdminRules {
        scope: "orders/admin".into(),
        group: "orders-admin".into(),
    });
    let router = router(AppState {
        store: stack.store,
        clock: Arc::new(SystemClock),
        settings: Arc::new(ApiSettings {
            identity,
            ..Default::default()
        }),
    });
    Lambda {
        _moto: moto,
        router,
    }
}

/// An HTTP API (v2) event, with the JWT authorizer's claims when the route has one (`claims`
/// is the JSON object of string claims).
fn event(
    method: &str,
    path: &str,
    query: &str,
    claims: Option<&str>,
    headers: Value,
    body: Option<&str>,
) -> Value {
    let claims = claims.map(|c| serde_json::from_str(c).expect("claims are JSON"));
    orders_test_support::apigw::http_api_event(method, path, query, claims, headers, body)
}

impl Lambda {
    async fn call(&self, event: Value) -> Value {
        let request: LambdaRequest =
            serde_json::from_value(event).expect("an API Gateway v2 event");
        let mut adapter = Adapter::from(self.router.clone());
        let response = adapter
            .call(LambdaEvent::new(request, Context::default()))
            .await
            .expect("the router is infallible");
        serde_json::to_value(response).expect("an API Gateway response")
    }

    async fn get(&self, claims: &str, path: &str, query: &str) -> Value {
        self.call(event("GET", path, query, Some(claims), json!({}), None))
            .await
    }

    /// POST /orders as `claims`, with an idempotency key when given.
    async fn post(&self, claims: &str, key: Option<&str>, body: &str) -> Value {
        let mut headers = json!({"content-type": "application/json"});
        if let Some(k) = key {
            headers["x-idempotency-key"] = json!(k);
        }
        self.call(event(
            "POST",
            "/orders",
            "",
            Some(claims),
            headers,
            Some(body),
        ))
        .await
    }

    async fn put_stock(&self, claims: &str, available: i64) -> Value {
        let headers = json!({"content-type": "application/json"});
        let body = json!({ "available": available }).to_string();
        let e = event(
            "PUT",
            "/inventory/laptop",
            "",
            Some(claims),
            headers,
            Some(&body),
        );
        self.call(e).await
    }
}

fn body_json(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().expect("a text body")).expect("JSON body")
}

fn order_id(response: &Value) -> String {
    assert_eq!(response["statusCode"], 201, "{response:#}");
    body_json(response)["orderId"]
        .as_str()
        .expect("an orderId")
        .to_owned()
}

#[tokio::test]
async fn a_bearer_header_without_authorizer_claims_is_not_trusted() {
    let l = lambda().await;
    // Well-formed, signed, unexpired and admin-scoped: what a caller bypassing API Gateway
    // (a function URL, a direct invoke) could send. Nobody verified it, so it counts for nothing.
    let keys = DevKeys::generate().unwrap();
    let token = keys.token(
        "mallory",
        "https://issuer",
        "orders",
        Some("orders/admin"),
        600,
    );
    let headers =
        json!({"content-type": "application/json", "authorization": format!("Bearer {token}")});
    let body =
        r#"{"customerId":"mallory","items":[{"productId":"laptop","quantity":1,"price":1}]}"#;

    let post = l
        .call(event(
            "POST",
            "/orders",
            "",
            None,
            headers.clone(),
            Some(body),
        ))
        .await;
    assert_eq!(post["statusCode"], 401, "{post:#}");
    assert_eq!(post["headers"]["www-authenticate"], "Bearer");
    let list = event(
        "GET",
        "/orders",
        "customerId=mallory",
        None,
        headers.clone(),
        None,
    );
    assert_eq!(l.call(list).await["statusCode"], 401);
    let put = event(
        "PUT",
        "/inventory/laptop",
        "",
        None,
        headers,
        Some(r#"{"available":1}"#),
    );
    assert_eq!(l.call(put).await["statusCode"], 401);

    // Nothing was written on the header's say-so.
    let seen = l.get(OPS, "/orders", "customerId=mallory").await;
    assert_eq!(seen["statusCode"], 200);
    assert_eq!(body_json(&seen)["orders"], json!([]));
}

#[tokio::test]
async fn authorizer_claims_decide_ownership_and_admin() {
    let l = lambda().await;
    let created = l.post(ALICE, None, LAPTOP).await;
    let alice_order = order_id(&created);
    let ops_order = order_id(&l.post(OPS, None, LAPTOP).await);

    let own = l.get(ALICE, &format!("/orders/{alice_order}"), "").await;
    assert_eq!(own["statusCode"], 200, "{own:#}");
    // No customerId in the body: the order is the caller's.
    assert_eq!(body_json(&own)["customerId"], "alice");
    let others = l.get(ALICE, &format!("/orders/{ops_order}"), "").await;
    assert_eq!(others["statusCode"], 404, "{others:#}");

    assert_eq!(
        l.get(ALICE, "/orders", "customerId=ops").await["statusCode"],
        403
    );
    for admin in [OPS, OPS2] {
        let listed = l.get(admin, "/orders", "customerId=alice").await;
        assert_eq!(listed["statusCode"], 200, "{admin}: {listed:#}");
        assert_eq!(
            body_json(&listed)["orders"][0]["orderId"],
            alice_order.as_str()
        );
        let read = l.get(admin, &format!("/orders/{alice_order}"), "").await;
        assert_eq!(read["statusCode"], 200, "{admin}");
    }

    assert_eq!(l.put_stock(ALICE, 5).await["statusCode"], 403);
    for (admin, available) in [(OPS, 6), (OPS2, 7)] {
        let set = l.put_stock(admin, available).await;
        assert_eq!(set["statusCode"], 200, "{admin}: {set:#}");
        assert_eq!(body_json(&set)["available"], available);
    }
    let stock = l.get(ALICE, "/inventory/laptop", "").await;
    assert_eq!(body_json(&stock)["available"], 7);
}

#[tokio::test]
async fn the_same_idempotency_key_is_each_callers_own_on_dynamodb() {
    let l = lambda().await;
    // The same key and the same bytes (no customerId: each order is its caller's).
    let key = Some("checkout-1");
    let alice = l.post(ALICE, key, LAPTOP).await;
    let bob = l.post(BOB, key, LAPTOP).await;
    let (alice_id, bob_id) = (order_id(&alice), order_id(&bob));
    assert_ne!(alice_id, bob_id, "bob was answered with alice's order");
    assert!(
        bob["headers"].get("idempotent-replayed").is_none(),
        "{bob:#}"
    );
    let bobs = l.get(BOB, &format!("/orders/{bob_id}"), "").await;
    assert_eq!(body_json(&bobs)["customerId"], "bob");

    for (claims, first) in [(ALICE, &alice), (BOB, &bob)] {
        let replay = l.post(claims, key, LAPTOP).await;
        assert_eq!(replay["statusCode"], 201, "{replay:#}");
        assert_eq!(replay["headers"]["idempotent-replayed"], "true");
        assert_eq!(
            replay["body"], first["body"],
            "{claims}: its own response, byte for byte"
        );
    }
    // Each customer has one order: no replay crossed over, and none created a second.
    for (claims, id) in [(ALICE, &alice_id), (BOB, &bob_id)] {
        let listed = body_json(&l.get(claims, "/orders", "").await)["orders"].clone();
        assert_eq!(
            listed.as_array().map(Vec::len),
            Some(1),
            "{claims}: {listed}"
        );
        assert_eq!(listed[0]["orderId"], id.as_str());
    }
}
