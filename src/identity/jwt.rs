//! Bearer token verification, by `jsonwebtoken`: the algorithm is RS256 or ES256 and must be
//! the one of the key the token names (so `alg: none`, or an HS256 token "signed" with a
//! public key, never verifies), then the signature, `exp` and `nbf` with [`LEEWAY_SECS`] of
//! clock skew, `iss`, and the audience in `aud` or `client_id`: API Gateway's JWT authorizer
//! accepts either, and a Cognito access token carries only `client_id`.
//!
//! A client sends the same token on every request until it expires (an access token lives up
//! to an hour), so a verified token is remembered by its SHA-256 for what is left of its life
//! (with the same leeway), at most [`REMEMBER_SECS`]: the signature check, most of the cost,
//! is then paid once per token rather than once per request. Only tokens that verified are
//! remembered, the same bytes give the same answer, and the cap bounds how long a token whose
//! key was withdrawn from the JWKS still passes. The set is bounded: when full it is emptied.

use super::jwks::{JwksSource, KeySet, REFRESH_FLOOR};
use super::{AdminRules, AuthError, Claims};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use orders_domain::access::Caller;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// The longest a verified token is remembered.
pub const REMEMBER_SECS: u64 = 300;
const REMEMBERED_MAX: usize = 10_000;

pub struct JwtVerifier {
    keys: KeySet,
    issuer: String,
    audience: String,
    rules: AdminRules,
    /// SHA-256 of a verified token -> its caller and the unix second it stops being valid.
    verified: Mutex<HashMap<[u8; 32], (Caller, u64)>>,
}

/// The claims read from a token; the spec claims `exp`, `nbf`, `iss` are checked by
/// `jsonwebtoken` itself.
#[derive(Deserialize)]
struct TokenClaims {
    sub: String,
    exp: u64,
    #[serde(default)]
    aud: Audience,
    client_id: Option<String>,
    scope: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl JwtVerifier {
    pub async fn load(
        source: JwksSource,
        issuer: String,
        audience: String,
        rules: AdminRules,
    ) -> Result<Self, String> {
        Self::load_with_floor(source, issuer, audience, rules, REFRESH_FLOOR).await
    }

    /// As [`JwtVerifier::load`], with another shortest time between two reads of the keys.
    pub async fn load_with_floor(
        source: JwksSource,
        issuer: String,
        audience: String,
        rules: AdminRules,
        floor: Duration,
    ) -> Result<Self, String> {
        Ok(JwtVerifier {
            keys: KeySet::load(source, floor).await?,
            issuer,
            audience,
            rules,
            verified: Mutex::default(),
        })
    }

    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = jsonwebtoken::get_current_timestamp();
        if let Some((caller, until)) = self.verified.lock().expect("lock").get(&digest)
            && now < *until
        {
            return Ok(caller.clone());
        }
        let (caller, exp) = self.verify_signed(token).await?;
        let until = (exp + LEEWAY_SECS).min(now + REMEMBER_SECS);
        let mut verified = self.verified.lock().expect("lock");
        if verified.len() >= REMEMBERED_MAX {
            verified.clear();
        }
        verified.insert(digest, (caller.clone(), until));
        Ok(caller)
    }

    /// The full check: header, key, signature, claims. Returns the caller and `exp`.
    async fn verify_signed(&self, token: &str) -> Result<(Caller, u64), AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(AuthError::NoKeyId)?;
        let key = self.keys.get(&kid).await?;
        if key.alg != header.alg {
            return Err(AuthError::Algorithm(format!(
                "{:?} with a {:?} key",
                header.alg, key.alg
            )));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = decode::<TokenClaims>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AuthError::Signature,
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::Issuer,
                ErrorKind::InvalidAlgorithm => AuthError::Algorithm(format!("{:?}", key.alg)),
                ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
                _ => AuthError::Malformed,
            })?
            .claims;
        let audience_ok = match &claims.aud {
            Audience::None => false,
            Audience::One(a) => *a == self.audience,
            Audience::Many(all) => all.contains(&self.audience),
        } || claims.client_id.as_deref() == Some(self.audience.as_str());
        if !audience_ok {
            return Err(AuthError::Audience);
        }
        let caller = Claims {
            sub: claims.sub,
            scopes: claims
                .scope
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            groups: claims.groups,
        }
        .caller(&self.rules)?;
        Ok((caller, claims.exp))
    }
}
