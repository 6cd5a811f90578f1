//! A small client of moto's Cognito user pools (the `AWSCognitoIdentityProviderService` JSON
//! API), enough to make a pool, an app client, groups and users, and to sign a user in for the
//! tokens the service must verify.
//!
//! Plain JSON over reqwest rather than the SDK's Cognito crate: the tests need seven
//! operations, and another SDK crate would add minutes to every cold build. moto checks no
//! signature; the `Authorization` header only has the SigV4 shape so moto reads the region
//! (and the service) from its credential scope, as it does for a real SDK request.
//!
//! What moto 5.2.5 does (and does not) issue: RS256 tokens signed by one fixed key (`kid`
//! `"dummy"`) for every pool, with `iss` = `https://cognito-idp.us-east-1.amazonaws.com/<pool>`;
//! the access token carries `client_id` (no `aud`), `scope` `aws.cognito.signin.user.admin`
//! and `cognito:groups`; the ID token carries `aud` = the client id. Its client-credentials
//! grant (`/oauth2/token`) answers 500, so no token with a resource-server scope can be had;
//! every token is valid for one hour, with no setting to shorten it, so none can be had expired
//! either (the private key moto ships lacks the CRT parameters aws-lc-rs needs to sign with it).

use serde_json::{Value, json};

const REGION: &str = "us-east-1";
/// A password every pool's default policy accepts (upper, lower, digit, symbol, 8+).
pub const PASSWORD: &str = "Orders-test-1";

pub struct Cognito {
    http: reqwest::Client,
    endpoint: String,
}

/// A user pool and what a verifier of its tokens needs.
pub struct Pool {
    pub id: String,
    pub issuer: String,
    pub jwks_url: String,
}

/// The tokens of one sign-in.
pub struct Tokens {
    pub access: String,
    pub id: String,
}

impl Cognito {
    /// A client of the emulator at `endpoint` (`http://127.0.0.1:<port>`).
    pub fn new(endpoint: &str) -> Self {
        Cognito {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        }
    }

    /// One operation; panics with moto's answer unless it is a 2xx.
    pub async fn call(&self, op: &str, body: Value) -> Value {
        let res = self
            .http
            .post(format!("{}/", self.endpoint))
            .header(
                "X-Amz-Target",
                format!("AWSCognitoIdentityProviderService.{op}"),
            )
            .header("Content-Type", "application/x-amz-json-1.1")
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/cognito-idp/aws4_request, \
                     SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("Cognito {op}: {e}"));
        let status = res.status();
        let text = res.text().await.expect("a Cognito answer");
        assert!(status.is_success(), "Cognito {op}: {status}: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("Cognito {op}: not JSON ({e}): {text}"))
    }

    pub async fn create_pool(&self, name: &str) -> Pool {
        let out = self.call("CreateUserPool", json!({"PoolName": name})).await;
        let id = out["UserPool"]["Id"]
            .as_str()
            .expect("a pool id")
            .to_owned();
        Pool {
            issuer: format!("https://cognito-idp.{REGION}.amazonaws.com/{id}"),
            jwks_url: format!("{}/{id}/.well-known/jwks.json", self.endpoint),
            id,
        }
    }

    /// An app client allowed the admin password flow; returns its client id (the audience).
    pub async fn create_client(&self, pool: &Pool, name: &str) -> String {
        let out = self
            .call(
                "CreateUserPoolClient",
                json!({"UserPoolId": pool.id, "ClientName": name,
                       "ExplicitAuthFlows": ["ADMIN_USER_PASSWORD_AUTH"]}),
            )
            .await;
        out["UserPoolClient"]["ClientId"]
            .as_str()
            .expect("a client id")
            .to_owned()
    }

    pub async fn create_group(&self, pool: &Pool, group: &str) {
        self.call(
            "CreateGroup",
            json!({"UserPoolId": pool.id, "GroupName": group}),
        )
        .await;
    }

    /// A confirmed user with [`PASSWORD`]; returns its `sub` (what tokens name it by).
    pub async fn create_user(&self, pool: &Pool, username: &str) -> String {
        let out = self
            .call(
                "AdminCreateUser",
                json!({"UserPoolId": pool.id, "Username": username, "MessageAction": "SUPPRESS"}),
            )
            .await;
        // A permanent password confirms the user, so sign-in asks for no new password.
        self.call(
            "AdminSetUserPassword",
            json!({"UserPoolId": pool.id, "Username": username,
                   "Password": PASSWORD, "Permanent": true}),
        )
        .await;
        out["User"]["Attributes"]
            .as_array()
            .and_then(|attrs| attrs.iter().find(|a| a["Name"] == "sub"))
            .and_then(|a| a["Value"].as_str())
            .expect("the user's sub")
            .to_owned()
    }

    pub async fn add_to_group(&self, pool: &Pool, username: &str, group: &str) {
        self.call(
            "AdminAddUserToGroup",
            json!({"UserPoolId": pool.id, "Username": username, "GroupName": group}),
        )
        .await;
    }

    /// Signs `username` in with `ADMIN_USER_PASSWORD_AUTH`.
    pub async fn sign_in(&self, pool: &Pool, client_id: &str, username: &str) -> Tokens {
        let out = self
            .call(
                "AdminInitiateAuth",
                json!({"UserPoolId": pool.id, "ClientId": client_id,
                       "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                       "AuthParameters": {"USERNAME": username, "PASSWORD": PASSWORD}}),
            )
            .await;
        let result = &out["AuthenticationResult"];
        let token = |name: &str| {
            result[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {out}"))
                .to_owned()
        };
        Tokens {
            access: token("AccessToken"),
            id: token("IdToken"),
        }
    }
}
