//! Every kind of bad token gets 401 problem+json with a `WWW-Authenticate: Bearer` challenge
//! and changes nothing: expired, not yet valid, another issuer, another audience, `alg: none`,
//! HS256 "signed" with the public key, a key the issuer never published, a tampered payload,
//! garbage, none at all. Then a rotated key: a token naming a key published after start is
//! accepted once the key set is read again.

use super::*;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(overrides: Value) -> Value {
    let mut c =
        json!({"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600});
    for (k, v) in overrides.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn unsigned(header: Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

#[tokio::test]
async fn each_bad_token_is_401_and_changes_nothing() {
    let id = id_app().await;
    let kid = id.keys.kid();
    let good = id.token("mallory");
    let [head, _, sig] = good.split('.').collect::<Vec<_>>()[..] else {
        panic!("three parts")
    };
    let public_key = id.keys.jwks().to_string();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    let other_key = DevKeys::generate().unwrap();

    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "Bearer"),
        (
            "expired",
            Some(id.keys.sign(&claims(json!({"exp": now() - 120})))),
            "invalid_token",
        ),
        (
            "not yet valid",
            Some(id.keys.sign(&claims(json!({"nbf": now() + 600})))),
            "invalid_token",
        ),
        (
            "other issuer",
            Some(id.keys.sign(&claims(json!({"iss": "https://evil.test"})))),
            "invalid_token",
        ),
        (
            "other audience",
            Some(id.keys.sign(&claims(json!({"aud": "another-api"})))),
            "invalid_token",
        ),
        (
            "no audience",
            Some(id.keys.sign(&claims(json!({"aud": null})))),
            "invalid_token",
        ),
        (
            "no exp",
            Some(
                id.keys
                    .sign(&json!({"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE})),
            ),
            "invalid_token",
        ),
        (
            "alg none",
            Some(unsigned(
                json!({"alg": "none", "typ": "JWT", "kid": kid}),
                &claims(json!({})),
            )),
            "invalid_token",
        ),
        (
            "HS256 with the public key",
            Some(
                encode(
                    &hs,
                    &claims(json!({})),
                    &EncodingKey::from_secret(public_key.as_bytes()).unwrap(),
                )
                .unwrap(),
            ),
            "invalid_token",
        ),
        (
            "unknown kid",
            Some(other_key.sign(&claims(json!({})))),
            "invalid_token",
        ),
        (
            "tampered payload",
            Some(format!(
                "{head}.{}.{sig}",
                B64.encode(claims(json!({"sub": "admin"})).to_string())
            )),
            "invalid_token",
        ),
        ("garbage", Some("not-a-jwt".into()), "invalid_token"),
        (
            "empty subject",
            Some(id.keys.sign(&claims(json!({"sub": ""})))),
            "invalid_token",
        ),
    ];
    for (name, token, challenge) in &cases {
        for (method, uri, body) in [
            ("POST", "/orders", Some(order(Some("mallory")))),
            ("GET", "/orders?customerId=mallory", None),
            ("PUT", "/inventory/laptop", Some(json!({"available": 1}))),
        ] {
            let r = id
                .call(method, uri, token.as_deref(), body.as_ref(), Some("k-1"))
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {method} {uri}");
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            let expected = match *challenge {
                "Bearer" => "Bearer",
                _ => r#"Bearer error="invalid_token""#,
            };
            assert_eq!(r.header("www-authenticate"), Some(expected), "{name}");
            assert_eq!(r.json()["status"], 401);
        }
    }
    assert_eq!(id.app.count("orders"), 0);
    assert_eq!(id.app.count("idempotency"), 0);
    let stock = id
        .call("GET", "/inventory/laptop", Some(&good), None, None)
        .await;
    assert_ne!(
        stock.json()["available"],
        1,
        "no refused PUT changed the stock"
    );

    // The good token itself passes, so each case above failed for its own reason; once it is
    // remembered as verified, a token that differs from it in one part still fails.
    let r = id
        .call("POST", "/orders", Some(&good), Some(&order(None)), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let tampered = cases
        .iter()
        .find(|c| c.0 == "tampered payload")
        .and_then(|c| c.1.clone());
    let r = id
        .call("GET", "/orders", tampered.as_deref(), None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_remembered_token_expires_when_it_would_have() {
    let id = id_app().await;
    // Expired 28 s ago: valid for 2 s more within the 30 s leeway.
    let token = id.keys.sign(&claims(json!({"exp": now() - 28})));
    let r = id.call("GET", "/orders", Some(&token), None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = id.call("GET", "/orders", Some(&token), None, None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "remembered past its expiry"
    );
}

#[tokio::test]
async fn open_routes_need_no_token_and_the_document_says_which_need_one() {
    let id = id_app().await;
    for uri in ["/health", "/openapi.json"] {
        let r = id.call("GET", uri, None, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
    }
    let doc = id
        .call("GET", "/openapi.json", None, None, None)
        .await
        .json();
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([{}]));
    // The webhook is signed, not token-authenticated, with identity on or off.
    let signed = json!([{"webhookId": [], "webhookTimestamp": [], "webhookSignature": []}]);
    assert_eq!(
        doc["paths"]["/webhooks/payments"]["post"]["security"],
        signed
    );
    let post = &doc["paths"]["/orders"]["post"];
    assert_eq!(post["security"], json!([{"bearer": []}]));
    assert!(post["responses"]["401"].is_object() && post["responses"]["403"].is_object());
    let get = &doc["paths"]["/orders/{id}"]["get"];
    assert!(get["responses"]["401"].is_object(), "{get}");
    assert!(
        get["responses"]["403"].is_null(),
        "another customer's order is a 404"
    );
    let required = &doc["components"]["schemas"]["CreateOrderRequest"]["required"];
    assert!(
        !required.as_array().unwrap().contains(&json!("customerId")),
        "it defaults to the caller"
    );
    let customer = &doc["components"]["schemas"]["CreateOrderRequest"]["properties"]["customerId"];
    assert_eq!(
        customer["oneOf"][1],
        json!({"type": "null"}),
        "null is the caller too, and the handler accepts it: {customer}"
    );

    // Identity off: the document claims no token and no 401, and customerId is required.
    let off = orders_test_support::app().get("/openapi.json").await.json();
    assert!(
        off["components"]["securitySchemes"]["bearer"].is_null(),
        "{}",
        off["components"]["securitySchemes"]
    );
    let post = &off["paths"]["/orders"]["post"];
    assert!(
        post["security"].is_null() && post["responses"]["401"].is_null(),
        "{post}"
    );
    assert_eq!(
        off["paths"]["/webhooks/payments"]["post"]["security"],
        signed
    );
    let required = &off["components"]["schemas"]["CreateOrderRequest"]["required"];
    assert!(required.as_array().unwrap().contains(&json!("customerId")));
    let customer = &off["components"]["schemas"]["CreateOrderRequest"]["properties"]["customerId"];
    assert!(customer["oneOf"].is_null(), "{customer}");
}

#[tokio::test]
async fn a_key_published_after_start_is_picked_up_on_first_use() {
    let id = id_app_with_floor(Duration::ZERO).await;
    let rotated = DevKeys::generate().unwrap();
    let token = rotated.token("carol", ISSUER, AUDIENCE, None, 600);
    let r = id
        .call("GET", "/orders?customerId=carol", Some(&token), None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "not published yet");

    let mut set = id.keys.jwks();
    let new = rotated.jwks()["keys"][0].clone();
    set["keys"].as_array_mut().unwrap().push(new);
    std::fs::write(&id.jwks, set.to_string()).unwrap();
    let r = id
        .call("GET", "/orders?customerId=carol", Some(&token), None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "read again on the unknown kid");
    // The old key still verifies.
    let r = id
        .call(
            "GET",
            "/orders?customerId=x",
            Some(&id.token("x")),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
