//! Identity on the embedded runtime (`--auth jwt`): the router over SQLite with a verifier of
//! tokens signed by a key of the test's own (`DevKeys`, ES256, its JWKS in a file), as
//! `orders dev-keys` / `dev-token` make them. [`bad_tokens`]: every refused token is a 401
//! that changes nothing; [`ownership`]: what each caller may do, scope-based admins, and
//! idempotency keys scoped per caller. RS256 tokens of a real issuer (moto's Cognito) and the
//! API Gateway claims of the Lambda are tested in the AWS binary.

mod bad_tokens;
mod ownership;

use axum::body::Body;
use axum::http::Request;
use orders::http::ApiSettings;
use orders::identity::dev::DevKeys;
use orders::identity::{AdminRules, Identity, JwksSource, JwtVerifier};
use orders_test_support::{Reply, TestApp, app_with};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "orders-api";

pub struct IdApp {
    pub app: TestApp,
    pub keys: DevKeys,
    pub jwks: std::path::PathBuf,
    _dir: TempDir,
}

pub fn rules() -> AdminRules {
    AdminRules {
        scope: "orders/admin".into(),
        group: "orders-admin".into(),
    }
}

/// A signing key of the test's own, its JWKS written into `dir`, and the identity that
/// verifies its tokens (issuer [`ISSUER`], audience [`AUDIENCE`], admins by [`rules`]).
pub async fn dev_identity(dir: &std::path::Path) -> (DevKeys, Identity) {
    let keys = DevKeys::generate().unwrap();
    let (_, jwks) = keys.write(dir).unwrap();
    let verifier = JwtVerifier::load(
        JwksSource::File(jwks),
        ISSUER.into(),
        AUDIENCE.into(),
        rules(),
    )
    .await
    .unwrap();
    (keys, Identity::Jwt(Arc::new(verifier)))
}

/// The API with identity on; the key set may be read again after `floor`.
pub async fn id_app_with_floor(floor: Duration) -> IdApp {
    let dir = tempfile::tempdir().unwrap();
    let keys = DevKeys::generate().unwrap();
    let (_, jwks) = keys.write(dir.path()).unwrap();
    let verifier = JwtVerifier::load_with_floor(
        JwksSource::File(jwks.clone()),
        ISSUER.into(),
        AUDIENCE.into(),
        rules(),
        floor,
    )
    .await
    .unwrap();
    let app = app_with(ApiSettings {
        identity: Identity::Jwt(Arc::new(verifier)),
        ..ApiSettings::default()
    });
    IdApp {
        app,
        keys,
        jwks,
        _dir: dir,
    }
}

pub async fn id_app() -> IdApp {
    id_app_with_floor(Duration::from_secs(30)).await
}

impl IdApp {
    pub fn token(&self, sub: &str) -> String {
        self.keys.token(sub, ISSUER, AUDIENCE, None, 3600)
    }

    pub fn admin(&self, sub: &str) -> String {
        self.keys
            .token(sub, ISSUER, AUDIENCE, Some("openid orders/admin"), 3600)
    }

    /// One request: `token` as `Authorization: Bearer`, a JSON `body`, an idempotency `key`.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(k) = key {
            req = req.header("x-idempotency-key", k);
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.app.send(req.body(body).unwrap()).await
    }
}

/// An order of one laptop, for `customer` when given (else the caller's).
pub fn order(customer: Option<&str>) -> Value {
    let mut body =
        serde_json::json!({"items": [{"productId": "laptop", "quantity": 1, "price": 10.0}]});
    if let Some(c) = customer {
        body["customerId"] = c.into();
    }
    body
}
