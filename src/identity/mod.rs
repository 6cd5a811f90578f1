//! Identity: turning a request into an [`orders_domain::access::Caller`].
//!
//! Three ways, one per deployment:
//! - `none` (`--auth none`): nobody is checked; every caller is anonymous with admin rights.
//!   For local development only: refused at start on a non-loopback address unless
//!   `ORDERS_ALLOW_UNAUTHENTICATED=true`.
//! - `jwt` locally: `Authorization: Bearer` tokens verified here ([`jwt`]) against a JWKS
//!   ([`jwks`]), an issuer and an audience.
//! - `jwt` on AWS: API Gateway's JWT authorizer has verified the token; the API Lambda reads
//!   the claims it passes in the request context and never looks at an `Authorization`
//!   header itself (an unverified header must not be trusted).
//!
//! Either way the claims become a caller by the same [`claims`] rules, and what the caller may
//! do is decided by `orders_domain::access`. [`dev`] makes a key pair and tokens for local use.

mod claims;
pub mod dev;
mod jwks;
mod jwt;

pub use claims::{AdminRules, Claims};
pub use jwks::JwksSource;
pub use jwt::JwtVerifier;

use clap::{Args, ValueEnum};
use orders_aws::functions;
use std::net::SocketAddr;
use std::sync::Arc;

/// How this process establishes callers (part of `ApiSettings`).
#[derive(Clone, Default)]
pub enum Identity {
    #[default]
    None,
    /// Bearer tokens verified by this process.
    Jwt(Arc<JwtVerifier>),
    /// Claims verified by API Gateway, from the Lambda request context.
    ApiGateway(AdminRules),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Identity::None => "Identity::None",
            Identity::Jwt(_) => "Identity::Jwt",
            Identity::ApiGateway(_) => "Identity::ApiGateway",
        })
    }
}

/// Why a request's token was refused: each is a 401, logged by name, never with the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("algorithm {0} is not accepted (RS256 and ES256 are)")]
    Algorithm(String),
    #[error("the token names no signing key (kid)")]
    NoKeyId,
    #[error("unknown signing key {0:?}")]
    UnknownKey(String),
    #[error("the signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token is from another issuer")]
    Issuer,
    #[error("the token is for another audience")]
    Audience,
    #[error("the token's subject is not a customer id: {0}")]
    Subject(&'static str),
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// No authentication: every caller is anonymous with admin rights.
    None,
    /// JWT bearer tokens (RS256, ES256).
    Jwt,
}

/// The identity settings (flattened into the service's configuration).
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// `jwt`: every route but /health and /openapi.json needs `Authorization: Bearer <JWT>`.
    /// `none`: no authentication, every caller anonymous with admin rights; allowed only on a
    /// loopback address unless ORDERS_ALLOW_UNAUTHENTICATED=true.
    #[arg(long = "auth", env = functions::AUTH_ENV, value_enum, default_value_t = AuthMode::None)]
    pub mode: AuthMode,

    /// The token signing keys (`jwt`): a JWKS file path or an http(s) URL, read at start and
    /// again when a token names an unknown key (at most every 30 s).
    #[arg(long, env = "ORDERS_JWKS")]
    pub jwks: Option<String>,

    /// The `iss` tokens must carry (`jwt`).
    #[arg(long, env = "ORDERS_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// The audience tokens must carry in `aud` or `client_id` (`jwt`), as API Gateway's JWT
    /// authorizer matches it, so Cognito access tokens work.
    #[arg(long, env = "ORDERS_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// A token whose `scope` holds this is an admin.
    #[arg(long, env = functions::ADMIN_SCOPE_ENV, default_value = "orders/admin")]
    pub admin_scope: String,

    /// A token whose `cognito:groups` holds this is an admin.
    #[arg(long, env = functions::ADMIN_GROUP_ENV, default_value = "orders-admin")]
    pub admin_group: String,

    /// Allow `--auth none` on a non-loopback address.
    #[arg(long, env = functions::ALLOW_UNAUTHENTICATED_ENV, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_unauthenticated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "refusing to serve {0} without authentication: --auth none is for loopback addresses; \
         set ORDERS_AUTH=jwt (with ORDERS_JWKS, ORDERS_JWT_ISSUER, ORDERS_JWT_AUDIENCE), or \
         ORDERS_ALLOW_UNAUTHENTICATED=true to accept anonymous callers anyway"
    )]
    Unauthenticated(String),
    #[error("--auth jwt needs {0}")]
    Missing(&'static str),
    #[error("the signing keys (ORDERS_JWKS) could not be loaded: {0}")]
    Keys(String),
}

impl IdentityArgs {
    pub fn admin_rules(&self) -> AdminRules {
        AdminRules {
            scope: self.admin_scope.clone(),
            group: self.admin_group.clone(),
        }
    }

    /// The identity of the local service listening on `listen`: keys loaded now, so a bad
    /// JWKS stops the start instead of refusing every request.
    pub async fn local(&self, listen: SocketAddr) -> Result<Identity, IdentityError> {
        match self.mode {
            AuthMode::None => {
                self.check_unauthenticated(listen.ip().is_loopback(), &listen.to_string())?;
                Ok(Identity::None)
            }
            AuthMode::Jwt => {
                let need = |v: &Option<String>, name| v.clone().ok_or(IdentityError::Missing(name));
                let source = JwksSource::parse(&need(&self.jwks, "ORDERS_JWKS")?);
                let verifier = JwtVerifier::load(
                    source,
                    need(&self.jwt_issuer, "ORDERS_JWT_ISSUER")?,
                    need(&self.jwt_audience, "ORDERS_JWT_AUDIENCE")?,
                    self.admin_rules(),
                )
                .await
                .map_err(IdentityError::Keys)?;
                Ok(Identity::Jwt(Arc::new(verifier)))
            }
        }
    }

    /// The identity of the API Lambda: API Gateway verifies tokens, or nobody does, which a
    /// Lambda (never on loopback) accepts only when told to.
    pub fn lambda(&self) -> Result<Identity, IdentityError> {
        match self.mode {
            AuthMode::Jwt => Ok(Identity::ApiGateway(self.admin_rules())),
            AuthMode::None => {
                self.check_unauthenticated(false, "the API function")?;
                Ok(Identity::None)
            }
        }
    }

    fn check_unauthenticated(&self, loopback: bool, what: &str) -> Result<(), IdentityError> {
        if !loopback && !self.allow_unauthenticated {
            return Err(IdentityError::Unauthenticated(what.to_owned()));
        }
        tracing::warn!(
            "identity is off (--auth none): every caller is anonymous with admin rights; use --auth jwt beyond local development"
        );
        Ok(())
    }
}
