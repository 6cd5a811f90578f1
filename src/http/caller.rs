//! The caller of a request, as an extractor every protected handler takes: `Authenticated`.
//!
//! Which way the caller is established is the process's `Identity` (see `crate::identity`):
//! nobody with identity off, a bearer token verified here, or the claims API Gateway's JWT
//! authorizer put in the Lambda request context. A refused token is a 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750); the log names the reason and
//! never holds the token. `/health` and `/openapi.json` do not take this extractor.

use super::AppState;
use super::problem::ApiError;
use crate::identity::{AuthError, Claims, Identity};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use orders_domain::access::Caller;

/// The verified caller of this request.
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let caller = match &s.settings.identity {
            Identity::None => Ok(Caller::Anonymous),
            Identity::Jwt(verifier) => match bearer(parts) {
                Ok(token) => verifier.verify(token).await,
                Err(e) => Err(e),
            },
            Identity::ApiGateway(rules) => {
                gateway_claims(parts).and_then(|claims| claims.caller(rules))
            }
        };
        caller.map(Authenticated).map_err(|e| {
            tracing::info!(reason = %e, "request refused: 401");
            ApiError::Unauthorized(e)
        })
    }
}

/// The token of the one `Authorization: Bearer` header (the scheme is case-insensitive).
fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(AuthError::Missing);
    };
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AuthError::Missing),
    }
}

/// The claims API Gateway verified; none means the route has no authorizer, or the request
/// did not come through API Gateway, and either way nobody vouches for the caller.
fn gateway_claims(parts: &Parts) -> Result<Claims, AuthError> {
    let jwt = match parts.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref())
        }
        _ => None,
    };
    let jwt = jwt.ok_or(AuthError::Missing)?;
    Claims::from_api_gateway(&jwt.claims)
}
