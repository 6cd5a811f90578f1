//! Identity against a real issuer's tokens: moto's Cognito user pool signs RS256 tokens, the
//! service fetches the pool's JWKS over HTTP and verifies them (`Identity::Jwt`) on the
//! embedded runtime (the router over a temp SQLite store).
//!
//! Why on top of the embedded DevKeys tests: those sign ES256 tokens shaped by us. These are
//! shaped by Cognito: RS256, the JWKS at the pool's well-known URL, an access token with
//! `client_id` and no `aud`, an ID token with `aud`, groups in `cognito:groups`, and a `sub`
//! that is a UUID. Proven: both token kinds authenticate, a user owns their orders, the
//! `orders-admin` group is admin, and a tampered token or one of another pool is a 401.
//!
//! What moto cannot do: its client-credentials grant (`/oauth2/token`) answers 500, so no
//! token carrying a resource-server scope (`orders/admin`) can be had from it; scope-based
//! admins are covered with the test's own key (`DevKeys`) in `tests/embedded/identity`. Nor
//! can it issue an expired token (every token lives one hour); expiry is covered there too.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use orders::http::ApiSettings;
use orders::identity::{AdminRules, Identity, JwksSource, JwtVerifier};
use orders_aws::moto::MotoSession;
use orders_test_support::cognito::{Cognito, Pool, Tokens};
use orders_test_support::{Reply, TestApp, app_with};
use serde_json::{Value, json};
use std::sync::Arc;

const ADMIN_GROUP: &str = "orders-admin";

/// A pool with three users (alice, bob, and ops in the admin group), signed in, and the
/// service verifying that pool's tokens.
struct World {
    /// Held for the whole test: the emulator's state is global (see `orders_aws::moto`).
    _moto: MotoSession,
    cognito: Cognito,
    pool: Pool,
    app: TestApp,
    alice: Tokens,
    alice_sub: String,
    bob: Tokens,
    ops: Tokens,
}

async fn world() -> World {
    let moto = orders_aws::moto::session().await;
    let cognito = Cognito::new(&moto.endpoint);
    let pool = cognito.create_pool("orders").await;
    let client = cognito.create_client(&pool, "orders-api").await;
    cognito.create_group(&pool, ADMIN_GROUP).await;
    let alice_sub = cognito.create_user(&pool, "alice").await;
    cognito.create_user(&pool, "bob").await;
    cognito.create_user(&pool, "ops").await;
    // Before signing in: groups are written into the tokens at sign-in.
    cognito.add_to_group(&pool, "ops", ADMIN_GROUP).await;
    let app = verifying(&pool.jwks_url, &pool.issuer, &client).await;
    World {
        alice: cognito.sign_in(&pool, &client, "alice").await,
        bob: cognito.sign_in(&pool, &client, "bob").await,
        ops: cognito.sign_in(&pool, &client, "ops").await,
        alice_sub,
        cognito,
        pool,
        app,
        _moto: moto,
    }
}

/// The embedded service verifying tokens of `issuer` for `audience`, keys from `jwks_url`.
async fn verifying(jwks_url: &str, issuer: &str, audience: &str) -> TestApp {
    let verifier = JwtVerifier::load(
        JwksSource::Url(jwks_url.to_owned()),
        issuer.to_owned(),
        audience.to_owned(),
        AdminRules {
            scope: "orders/admin".into(),
            group: ADMIN_GROUP.into(),
        },
    )
    .await
    .expect("the pool's JWKS loads from moto");
    app_with(ApiSettings {
        identity: Identity::Jwt(Arc::new(verifier)),
        ..Default::default()
    })
}

/// One request through the router, with `token` as the bearer token when given.
async fn call(
    app: &TestApp,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
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
    app.send(req.body(body).unwrap()).await
}

fn laptop() -> Value {
    json!({"items": [{"productId": "laptop", "quantity": 1, "price": 1299.99}]})
}

/// The claims of a token, unverified (to show what moto put in it).
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&B64.decode(part).expect("base64url")).expect("JSON claims")
}

fn assert_refused(r: &Reply, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#),
        "{what}"
    );
}

#[tokio::test]
async fn moto_access_and_id_tokens_both_authenticate() {
    let w = world().await;
    // The two audiences the verifier must accept: Cognito puts the client id in `client_id` on
    // an access token and in `aud` on an ID token.
    let (access, id) = (payload(&w.alice.access), payload(&w.alice.id));
    assert!(access.get("aud").is_none(), "{access}");
    assert_eq!(access["token_use"], "access");
    assert_eq!(id["aud"], access["client_id"]);

    let created = call(
        &w.app,
        "POST",
        "/orders",
        Some(&w.alice.access),
        Some(laptop()),
    )
    .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let uri = format!("/orders/{}", created.json()["orderId"].as_str().unwrap());

    for (kind, token) in [("access", &w.alice.access), ("ID", &w.alice.id)] {
        let got = call(&w.app, "GET", &uri, Some(token), None).await;
        assert_eq!(got.status, StatusCode::OK, "{kind} token");
        // No customerId in the body: the order is the caller's, named by the token's sub.
        assert_eq!(
            got.json()["customerId"],
            w.alice_sub.as_str(),
            "{kind} token"
        );
    }
    let by_id = call(&w.app, "POST", "/orders", Some(&w.alice.id), Some(laptop())).await;
    assert_eq!(by_id.status, StatusCode::CREATED);
    let uri = format!("/orders/{}", by_id.json()["orderId"].as_str().unwrap());
    let got = call(&w.app, "GET", &uri, Some(&w.alice.access), None).await;
    assert_eq!(got.json()["customerId"], w.alice_sub.as_str());

    let anonymous = call(&w.app, "GET", &uri, None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn cognito_users_own_their_orders_and_the_admin_group_is_admin() {
    let w = world().await;
    let created = call(
        &w.app,
        "POST",
        "/orders",
        Some(&w.alice.access),
        Some(laptop()),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let order_id = created.json()["orderId"].as_str().unwrap().to_owned();
    let uri = format!("/orders/{order_id}");
    let listing = format!("/orders?customerId={}", w.alice_sub);

    assert_eq!(
        call(&w.app, "GET", &uri, Some(&w.alice.access), None)
            .await
            .status,
        StatusCode::OK
    );
    // Another customer's order is hidden, not forbidden: its id leaks nothing.
    assert_eq!(
        call(&w.app, "GET", &uri, Some(&w.bob.access), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&w.app, "GET", &listing, Some(&w.bob.access), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let mut for_alice = laptop();
    for_alice["customerId"] = json!(w.alice_sub);
    let on_behalf = call(
        &w.app,
        "POST",
        "/orders",
        Some(&w.bob.access),
        Some(for_alice),
    )
    .await;
    assert_eq!(on_behalf.status, StatusCode::FORBIDDEN);

    // ops is admin only by the group moto wrote into its token.
    assert_eq!(
        payload(&w.ops.access)["cognito:groups"],
        json!([ADMIN_GROUP])
    );
    let listed = call(&w.app, "GET", &listing, Some(&w.ops.access), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let orders = listed.json()["orders"].clone();
    assert_eq!(orders.as_array().map(Vec::len), Some(1), "{orders}");
    assert_eq!(orders[0]["orderId"], order_id.as_str());
    assert_eq!(
        call(&w.app, "GET", &uri, Some(&w.ops.id), None)
            .await
            .status,
        StatusCode::OK
    );

    let stock = json!({"available": 7});
    let refused = call(
        &w.app,
        "PUT",
        "/inventory/laptop",
        Some(&w.alice.access),
        Some(stock.clone()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let set = call(
        &w.app,
        "PUT",
        "/inventory/laptop",
        Some(&w.ops.access),
        Some(stock),
    )
    .await;
    assert_eq!(
        set.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&set.body)
    );
    assert_eq!(set.json()["available"], 7);
}

#[tokio::test]
async fn tampered_tokens_and_tokens_of_another_pool_are_401() {
    let w = world().await;
    let uri = "/orders";
    // The control: the untouched token is accepted on the same request.
    assert_eq!(
        call(&w.app, "GET", uri, Some(&w.alice.access), None)
            .await
            .status,
        StatusCode::OK
    );

    // alice writes herself into the admin group and keeps moto's signature.
    let parts: Vec<&str> = w.alice.access.split('.').collect();
    let mut claims = payload(&w.alice.access);
    claims["cognito:groups"] = json!([ADMIN_GROUP]);
    let promoted = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    );
    assert_refused(
        &call(&w.app, "GET", uri, Some(&promoted), None).await,
        "tampered claims",
    );

    // The claims intact, one bit of the signature flipped.
    let mut signature = B64.decode(parts[2]).unwrap();
    signature[0] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], B64.encode(signature));
    assert_refused(
        &call(&w.app, "GET", uri, Some(&flipped), None).await,
        "flipped signature",
    );

    // Another app of the same pool: the issuer and the signature are right, the audience
    // (the client id, in `client_id` or `aud`) is not.
    let other_app = w.cognito.create_client(&w.pool, "another-app").await;
    let sibling = w.cognito.sign_in(&w.pool, &other_app, "alice").await;
    for (kind, token) in [("access", &sibling.access), ("ID", &sibling.id)] {
        let r = call(&w.app, "GET", uri, Some(token), None).await;
        assert_refused(&r, &format!("another app's {kind} token"));
    }

    // moto signs every pool's tokens with one key, so a token of another pool verifies under
    // this pool's JWKS: only its issuer (and its client id) tells it apart.
    let other: Pool = w.cognito.create_pool("elsewhere").await;
    let other_client = w.cognito.create_client(&other, "elsewhere-app").await;
    w.cognito.create_user(&other, "alice").await;
    let foreign = w.cognito.sign_in(&other, &other_client, "alice").await;
    assert_eq!(payload(&foreign.access)["iss"], other.issuer.as_str());
    assert_ne!(other.issuer, w.pool.issuer);
    // And a service told to expect that client id, but this pool's issuer: the issuer alone
    // must refuse it.
    let same_audience = verifying(&w.pool.jwks_url, &w.pool.issuer, &other_client).await;
    for (service, app) in [("this pool's", &w.app), ("its audience's", &same_audience)] {
        for (kind, token) in [("access", &foreign.access), ("ID", &foreign.id)] {
            let r = call(app, "GET", uri, Some(token), None).await;
            assert_refused(
                &r,
                &format!("another pool's {kind} token, {service} service"),
            );
        }
    }
    // The control: the token itself is sound, a service of its own pool takes it.
    let its_own = verifying(&other.jwks_url, &other.issuer, &other_client).await;
    let r = call(&its_own, "GET", uri, Some(&foreign.access), None).await;
    assert_eq!(r.status, StatusCode::OK);
}
