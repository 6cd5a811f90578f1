//! Who is calling, and what each route lets them do: the ownership rules of the API, written
//! once for both runtimes.
//!
//! How a caller is established differs (a bearer token verified by the service locally, the
//! claims API Gateway's JWT authorizer verified on AWS, nobody at all with identity off); what
//! a caller may do does not, so the HTTP handlers ask these methods and never decide
//! themselves. Two rules shape the answers: another customer's order is *hidden* (404, so
//! existence is not leaked through guessable ids), while naming another customer in a listing,
//! a voucher query or a new order is *forbidden* (403: the caller named that customer, nothing
//! is leaked by saying no).

use crate::CustomerId;
use crate::idempotency::IdempotencyKey;

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Identity is off (`--auth none`, local development): every caller is the operator, with
    /// admin rights, and all share one idempotency scope (the one keys had before identity).
    Anonymous,
    /// A verified token: its subject is the customer; `admin` from its scope or group claim.
    Customer { id: CustomerId, admin: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// 403: the request names a customer the caller may not act for.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: the resource is another customer's, answered as if it did not exist.
    #[error("not found")]
    Hidden,
    /// 400: with identity off there is no caller to default to.
    #[error("customerId is required")]
    CustomerRequired,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Anonymous => true,
            Caller::Customer { admin, .. } => *admin,
        }
    }

    fn customer(&self) -> Option<&CustomerId> {
        match self {
            Caller::Anonymous => None,
            Caller::Customer { id, .. } => Some(id),
        }
    }

    /// The customer a request acts for: the one it names, which must be the caller unless the
    /// caller is an admin, or the caller when it names none. Used by new orders, listings and
    /// voucher queries.
    pub fn acts_for(&self, named: Option<CustomerId>) -> Result<CustomerId, AccessError> {
        match (named, self.customer()) {
            (Some(named), _) if self.is_admin() => Ok(named),
            (Some(named), Some(me)) if &named == me => Ok(named),
            (Some(_), _) => Err(AccessError::Forbidden(
                "a customer may act only for themselves",
            )),
            (None, Some(me)) => Ok(me.clone()),
            (None, None) => Err(AccessError::CustomerRequired),
        }
    }

    /// Whether the caller sees a resource of `owner` (an order): its owner and admins do.
    pub fn sees(&self, owner: &CustomerId) -> Result<(), AccessError> {
        if self.is_admin() || self.customer() == Some(owner) {
            Ok(())
        } else {
            Err(AccessError::Hidden)
        }
    }

    /// Operator actions (inventory writes): admins only.
    pub fn require_admin(&self) -> Result<(), AccessError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AccessError::Forbidden("this action needs the admin scope"))
        }
    }

    /// The caller's own namespace for idempotency keys: two customers sending the same key
    /// send two keys, so neither can ever be answered with the other's stored response.
    pub fn scope(&self, key: IdempotencyKey) -> IdempotencyKey {
        match self.customer() {
            None => key,
            Some(me) => key.scoped_to(me),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str, admin: bool) -> Caller {
        Caller::Customer {
            id: CustomerId::parse(id).unwrap(),
            admin,
        }
    }
    fn id(s: &str) -> CustomerId {
        CustomerId::parse(s).unwrap()
    }

    #[test]
    fn customers_act_for_themselves_admins_for_anyone() {
        let alice = customer("alice", false);
        assert_eq!(alice.acts_for(None), Ok(id("alice")));
        assert_eq!(alice.acts_for(Some(id("alice"))), Ok(id("alice")));
        assert!(matches!(
            alice.acts_for(Some(id("bob"))),
            Err(AccessError::Forbidden(_))
        ));
        let admin = customer("ops", true);
        assert_eq!(admin.acts_for(Some(id("bob"))), Ok(id("bob")));
        assert_eq!(admin.acts_for(None), Ok(id("ops")));
        assert_eq!(Caller::Anonymous.acts_for(Some(id("bob"))), Ok(id("bob")));
        assert_eq!(
            Caller::Anonymous.acts_for(None),
            Err(AccessError::CustomerRequired)
        );
    }

    #[test]
    fn another_customers_order_is_hidden_and_admin_actions_forbidden() {
        let alice = customer("alice", false);
        assert_eq!(alice.sees(&id("alice")), Ok(()));
        assert_eq!(alice.sees(&id("bob")), Err(AccessError::Hidden));
        assert_eq!(customer("ops", true).sees(&id("bob")), Ok(()));
        assert!(alice.require_admin().is_err());
        assert!(customer("ops", true).require_admin().is_ok());
        assert!(Caller::Anonymous.require_admin().is_ok());
    }

    #[test]
    fn keys_are_scoped_per_customer_and_anonymous_keys_stay_as_they_were() {
        let key = IdempotencyKey::parse("k-1").unwrap();
        assert_eq!(Caller::Anonymous.scope(key.clone()), key);
        let a = customer("alice", false).scope(key.clone());
        let b = customer("bob", false).scope(key.clone());
        assert_ne!(a, b);
        assert_ne!(a, key);
        assert_eq!(a, customer("alice", true).scope(key));
    }
}
