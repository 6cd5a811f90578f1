//! Verified claims to a caller, by one rule for both runtimes: `sub` is the customer, and an
//! admin is a token whose `scope` holds the admin scope (a Cognito resource-server scope such
//! as `orders/admin`) or whose `cognito:groups` holds the admin group.
//!
//! Locally the claims come out of a token this process verified; on AWS out of the request
//! context, where API Gateway flattens every claim to a string: a scope list stays
//! space-separated and an array such as `cognito:groups` arrives as `"[a b]"`.

use super::AuthError;
use orders_domain::CustomerId;
use orders_domain::access::Caller;
use std::collections::HashMap;

/// Who is an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRules {
    pub scope: String,
    pub group: String,
}

/// The claims that decide who a caller is, from a token already verified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims {
    pub sub: String,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
}

impl Claims {
    pub fn caller(self, rules: &AdminRules) -> Result<Caller, AuthError> {
        let id = CustomerId::parse(&self.sub).map_err(AuthError::Subject)?;
        let admin = self.scopes.contains(&rules.scope) || self.groups.contains(&rules.group);
        Ok(Caller::Customer { id, admin })
    }

    /// The claims API Gateway's JWT authorizer passes (`requestContext.authorizer.jwt.claims`).
    pub fn from_api_gateway(claims: &HashMap<String, String>) -> Result<Self, AuthError> {
        let sub = claims
            .get("sub")
            .cloned()
            .ok_or_else(|| AuthError::MissingClaim("sub".into()))?;
        let words = |name: &str| -> Vec<String> {
            let raw = claims.get(name).map(String::as_str).unwrap_or("");
            let raw = raw.trim();
            let raw = raw
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .unwrap_or(raw);
            raw.split([' ', ','])
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Ok(Claims {
            sub,
            scopes: words("scope"),
            groups: words("cognito:groups"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AdminRules {
        AdminRules {
            scope: "orders/admin".into(),
            group: "orders-admin".into(),
        }
    }

    fn gateway(pairs: &[(&str, &str)]) -> Result<Caller, AuthError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Claims::from_api_gateway(&map)?.caller(&rules())
    }

    fn admin(c: Result<Caller, AuthError>) -> bool {
        matches!(c, Ok(Caller::Customer { admin: true, .. }))
    }

    #[test]
    fn api_gateway_claims_as_flattened_strings() {
        assert!(!admin(gateway(&[
            ("sub", "c-1"),
            ("scope", "openid profile")
        ])));
        assert!(admin(gateway(&[
            ("sub", "c-1"),
            ("scope", "openid orders/admin")
        ])));
        assert!(admin(gateway(&[
            ("sub", "c-1"),
            ("cognito:groups", "[staff orders-admin]")
        ])));
        assert!(!admin(gateway(&[
            ("sub", "c-1"),
            ("cognito:groups", "[orders-admins]")
        ])));
        assert_eq!(
            gateway(&[("scope", "orders/admin")]),
            Err(AuthError::MissingClaim("sub".into()))
        );
        assert!(matches!(
            gateway(&[("sub", "")]),
            Err(AuthError::Subject(_))
        ));
    }
}
