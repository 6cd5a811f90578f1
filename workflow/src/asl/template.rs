//! Payload templates: `Parameters`, `ResultSelector` and a Pass state's `Parameters`.
//!
//! A template is parsed once at load time so that every `.$` value is known to be a valid
//! path before any execution starts. Keys ending in `.$` take the value their path selects and
//! lose the suffix; everything else is copied literally, recursing into objects and arrays (the
//! way Step Functions treats `"Value.$"` inside an array of objects). A `.$` value that is an
//! intrinsic function (`States.Format(...)`) is rejected: the local executor would have to
//! re-implement them bit for bit to stay equivalent to Step Functions, and the saga needs none.

use super::path::{Path, PathError, RuntimeError};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    Literal(Value),
    Path(Path),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
}

/// Why a template could not be parsed; the caller adds the state and field names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("unsupported intrinsic function \"{0}\"")]
    Intrinsic(String),
    #[error("the value of \"{0}\" must be a path string")]
    NotAString(String),
    #[error("\"{0}\" appears twice once the `.$` suffix is removed")]
    DuplicateKey(String),
}

/// Whether a `.$` value is an intrinsic function call rather than a path.
pub fn is_intrinsic(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with("States.") && text.contains('(')
}

impl Template {
    pub fn parse(value: &Value) -> Result<Template, TemplateError> {
        match value {
            Value::Object(object) => {
                let mut fields: Vec<(String, Template)> = Vec::with_capacity(object.len());
                for (key, value) in object {
                    let (name, template) = match key.strip_suffix(".$") {
                        Some(name) => {
                            let text = value
                                .as_str()
                                .ok_or_else(|| TemplateError::NotAString(key.clone()))?;
                            if is_intrinsic(text) {
                                return Err(TemplateError::Intrinsic(text.to_owned()));
                            }
                            (name.to_owned(), Template::Path(Path::parse(text)?))
                        }
                        None => (key.clone(), Template::parse(value)?),
                    };
                    if fields.iter().any(|(existing, _)| *existing == name) {
                        return Err(TemplateError::DuplicateKey(name));
                    }
                    fields.push((name, template));
                }
                Ok(Template::Object(fields))
            }
            Value::Array(items) => Ok(Template::Array(
                items
                    .iter()
                    .map(Template::parse)
                    .collect::<Result<_, _>>()?,
            )),
            other => Ok(Template::Literal(other.clone())),
        }
    }

    /// Builds the payload from `input` and the context object; a path that selects nothing
    /// is a `States.Runtime`.
    pub fn render(&self, input: &Value, context: &Value) -> Result<Value, RuntimeError> {
        Ok(match self {
            Template::Literal(value) => value.clone(),
            Template::Path(path) => path.select(input, context)?.clone(),
            Template::Object(fields) => {
                let mut object = Map::with_capacity(fields.len());
                for (name, template) in fields {
                    object.insert(name.clone(), template.render(input, context)?);
                }
                Value::Object(object)
            }
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| t.render(input, context))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Every path in the template, for validation and documentation.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Template::Literal(_) => Vec::new(),
            Template::Path(path) => vec![path],
            Template::Object(fields) => fields.iter().flat_map(|(_, t)| t.paths()).collect(),
            Template::Array(items) => items.iter().flat_map(Template::paths).collect(),
        }
    }
}
