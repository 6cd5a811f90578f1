//! Reading and writing DynamoDB attribute maps without panics: a missing or mistyped
//! attribute is an error naming it, never a default that hides corrupt data.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute {name}: {problem}")]
pub struct AttrError {
    pub name: String,
    pub problem: &'static str,
}

fn err(name: &str, problem: &'static str) -> AttrError {
    AttrError {
        name: name.to_owned(),
        problem,
    }
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, AttrError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(err(name, "is not a string")),
        None => Err(err(name, "is missing")),
    }
}

pub fn opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, AttrError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(AttributeValue::Null(_)) | None => Ok(None),
        Some(_) => Err(err(name, "is not a string")),
    }
}

pub fn get_n(item: &Item, name: &str) -> Result<i64, AttrError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| err(name, "is not an integer")),
        Some(_) => Err(err(name, "is not a number")),
        None => Err(err(name, "is missing")),
    }
}

pub fn opt_n(item: &Item, name: &str) -> Result<Option<i64>, AttrError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => get_n(item, name).map(Some),
    }
}

pub fn get_bool(item: &Item, name: &str) -> Result<bool, AttrError> {
    match item.get(name) {
        Some(AttributeValue::Bool(v)) => Ok(*v),
        Some(_) => Err(err(name, "is not a boolean")),
        None => Err(err(name, "is missing")),
    }
}

pub fn get_map<'a>(item: &'a Item, name: &str) -> Result<Option<&'a Item>, AttrError> {
    match item.get(name) {
        Some(AttributeValue::M(m)) => Ok(Some(m)),
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => Err(err(name, "is not a map")),
    }
}
