//! What the checks ask of a parsed template: resources by id and type, properties (with SAM's
//! `Globals` applied to functions), intrinsic references in one canonical spelling, and the
//! (action, resource) pairs an IAM role grants.
//!
//! A reference is canonicalised to the `${...}` text `Fn::Sub` would use (`Ref X` is
//! `${X}`, `GetAtt X.Arn` is `${X.Arn}`), so a grant on an index (only expressible with
//! `Fn::Sub`) compares with a grant on a table as plain strings. Any other shape, a literal
//! `*` included, stays visible as itself and so never matches what the code expects.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One permission: `("dynamodb:GetItem", "${OrdersTable.Arn}")`.
pub type Grant = (String, String);

pub struct Template<'a>(pub &'a Value);

impl<'a> Template<'a> {
    pub fn resources(&self) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.0
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(Map::iter)
            .map(|(k, v)| (k.as_str(), v))
    }

    pub fn resource(&self, id: &str) -> Option<&'a Value> {
        self.0.get("Resources")?.get(id)
    }

    pub fn of_type(&self, kind: &str) -> Vec<(&'a str, &'a Value)> {
        self.resources()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    pub fn type_of(&self, id: &str) -> Option<&'a str> {
        self.resource(id)?.get("Type")?.as_str()
    }

    /// A function's property, falling back to `Globals.Function` as SAM does.
    pub fn function_prop(&self, function: &'a Value, key: &str) -> Option<&'a Value> {
        prop(function, key).or_else(|| self.0.get("Globals")?.get("Function")?.get(key))
    }

    pub fn output(&self, name: &str) -> Option<&'a Value> {
        self.0.get("Outputs")?.get(name)?.get("Value")
    }

    /// Every (action, resource) the role's inline policies allow, or what is wrong with how
    /// they are written (a managed policy, a Deny, NotAction, a condition: forms the pairwise
    /// comparison cannot account for, so they are refused rather than half-checked).
    pub fn role_grants(&self, role_id: &str) -> Result<BTreeSet<Grant>, Vec<String>> {
        let mut problems = Vec::new();
        let mut grants = BTreeSet::new();
        let Some(role) = self.resource(role_id) else {
            return Err(vec![format!("role {role_id} does not exist")]);
        };
        if role.get("Type").and_then(Value::as_str) != Some("AWS::IAM::Role") {
            problems.push(format!("{role_id} is not an AWS::IAM::Role"));
        }
        for key in ["ManagedPolicyArns", "PermissionsBoundary"] {
            if prop(role, key).is_some() {
                problems.push(format!(
                    "{role_id}: {key} is not allowed (grants must be inline and checked)"
                ));
            }
        }
        let policies = prop(role, "Policies").and_then(Value::as_array);
        for policy in policies.into_iter().flatten() {
            let statements = policy.pointer("/PolicyDocument/Statement");
            for st in one_or_many(statements) {
                if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
                    problems.push(format!("{role_id}: a statement is not Effect: Allow"));
                }
                for key in ["NotAction", "NotResource", "Condition", "Principal"] {
                    if st.get(key).is_some() {
                        problems.push(format!("{role_id}: {key} in a statement is not allowed"));
                    }
                }
                let resources: Vec<String> =
                    one_or_many(st.get("Resource")).map(reference).collect();
                for action in one_or_many(st.get("Action")) {
                    let action = action
                        .as_str()
                        .map_or_else(|| action.to_string(), str::to_owned);
                    for r in &resources {
                        grants.insert((action.clone(), r.clone()));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(grants)
        } else {
            Err(problems)
        }
    }

    /// The AWS service principals allowed to assume the role.
    pub fn trusted_services(&self, role_id: &str) -> BTreeSet<String> {
        let statements = self
            .resource(role_id)
            .and_then(|r| prop(r, "AssumeRolePolicyDocument"))
            .and_then(|d| d.get("Statement"));
        one_or_many(statements)
            .flat_map(|st| one_or_many(st.pointer("/Principal/Service")))
            .map(reference)
            .collect()
    }
}

pub fn prop<'a>(resource: &'a Value, key: &str) -> Option<&'a Value> {
    resource.get("Properties")?.get(key)
}

pub fn str_of(value: Option<&Value>) -> Option<&str> {
    value?.as_str()
}

/// A value that may be one item or a list of them, as IAM and SAM allow.
pub fn one_or_many(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let items: Vec<&Value> = match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    };
    items.into_iter()
}

/// The canonical `${...}` spelling of a reference; anything else as its JSON text.
pub fn reference(value: &Value) -> String {
    if let Some(s) = value.as_str() {
        return s.to_owned();
    }
    if let Some(id) = value.get("Ref").and_then(Value::as_str) {
        return format!("${{{id}}}");
    }
    if let Some(Value::Array(parts)) = value.get("Fn::GetAtt")
        && let [Value::String(res), Value::String(attr)] = parts.as_slice()
    {
        return format!("${{{res}.{attr}}}");
    }
    if let Some(Value::String(text)) = value.get("Fn::Sub") {
        return text.clone();
    }
    value.to_string()
}

/// `${X}` or `${X.Attr}` -> `X`.
pub fn referenced_id(canonical: &str) -> Option<&str> {
    let inner = canonical.strip_prefix("${")?.strip_suffix('}')?;
    Some(inner.split('.').next().unwrap_or(inner))
}
