//! The JsonPath subset of the Amazon States Language, and the input/output pipeline built on it.
//!
//! Only *reference paths* are supported: `$`, `$.a.b`, `$.a[0].b`, `$['a']`, and the same
//! rooted at `$$` for the context object. Wildcards, filters, slices and recursive descent
//! would make a path select many nodes; ASL only allows those in a few fields, the saga needs
//! none of them, and rejecting them when the file is loaded is better than evaluating them
//! differently from Step Functions. Every path is parsed once at load time, so a malformed
//! path is a load error and evaluation can only fail because the *data* does not match — which
//! is `States.Runtime` in the execution (never a panic), exactly as on Step Functions.
//!
//! The pipeline order is the spec's: InputPath -> Parameters -> task -> ResultSelector ->
//! ResultPath -> OutputPath. ResultPath always writes into the state's *raw* input (before
//! InputPath), which is what lets a Task add its result next to the data it was given.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::fmt;

/// The error name Step Functions uses for data that does not fit the definition. It is not
/// retriable and `States.ALL` does not catch it: the execution fails.
pub const STATES_RUNTIME: &str = "States.Runtime";

/// A path that cannot be parsed (a load-time error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("malformed JsonPath \"{path}\": {reason}")]
    Malformed { path: String, reason: &'static str },
    #[error("unsupported JsonPath \"{path}\": {reason}")]
    Unsupported { path: String, reason: &'static str },
}

/// A path that does not match the data it is applied to (a run-time `States.Runtime`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `$`: the data flowing through the state.
    Input,
    /// `$$`: the context object.
    Context,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// A parsed reference path. Keeps its source text for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub root: Root,
    pub segments: Vec<Segment>,
    text: String,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Path {
    /// `$` itself.
    pub fn root() -> Path {
        Path {
            root: Root::Input,
            segments: Vec::new(),
            text: "$".to_owned(),
        }
    }

    /// Parses a path rooted at `$` or `$$`.
    pub fn parse(text: &str) -> Result<Path, PathError> {
        let malformed = |reason| PathError::Malformed {
            path: text.to_owned(),
            reason,
        };
        let unsupported = |reason| PathError::Unsupported {
            path: text.to_owned(),
            reason,
        };
        let (root, mut rest) = if let Some(r) = text.strip_prefix("$$") {
            (Root::Context, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (Root::Input, r)
        } else {
            return Err(malformed("a path must start with `$` or `$$`"));
        };
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if rest.starts_with("..") {
                return Err(unsupported("recursive descent `..` is not supported"));
            } else if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() {
                    return Err(malformed("empty field name"));
                }
                if name == "*" {
                    return Err(unsupported("wildcards are not supported"));
                }
                if name.chars().any(|c| {
                    c.is_whitespace()
                        || matches!(c, ']' | '\'' | '"' | '(' | ')' | '@' | '?' | '*' | '$')
                }) {
                    return Err(malformed("invalid character in a field name"));
                }
                segments.push(Segment::Field(name.to_owned()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let close = r.find(']').ok_or_else(|| malformed("unclosed `[`"))?;
                let inner = &r[..close];
                rest = &r[close + 1..];
                let quoted = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
                if let Some(name) = quoted {
                    if name.is_empty() || name.contains(['\'', '"']) {
                        return Err(malformed("invalid quoted field name"));
                    }
                    segments.push(Segment::Field(name.to_owned()));
                } else if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
                    let index = inner.parse().map_err(|_| malformed("index out of range"))?;
                    segments.push(Segment::Index(index));
                } else if inner == "*" {
                    return Err(unsupported("wildcards are not supported"));
                } else if inner.starts_with('?') || inner.starts_with('(') {
                    return Err(unsupported(
                        "filter and script expressions are not supported",
                    ));
                } else if inner.contains([':', ',']) || inner.starts_with('-') {
                    return Err(unsupported(
                        "slices, unions and negative indexes are not supported",
                    ));
                } else {
                    return Err(malformed(
                        "expected an index or a quoted field name in `[...]`",
                    ));
                }
            } else {
                return Err(malformed("expected `.` or `[` after the root or a segment"));
            }
        }
        Ok(Path {
            root,
            segments,
            text: text.to_owned(),
        })
    }

    /// Parses a path that must be rooted at `$` (ResultPath, OutputPath).
    pub fn parse_reference(text: &str) -> Result<Path, PathError> {
        let path = Path::parse(text)?;
        if path.root == Root::Context {
            return Err(PathError::Unsupported {
                path: text.to_owned(),
                reason: "the context object `$$` cannot be used here",
            });
        }
        Ok(path)
    }

    /// The node this path selects, or `States.Runtime` if there is none.
    pub fn select<'a>(
        &self,
        input: &'a Value,
        context: &'a Value,
    ) -> Result<&'a Value, RuntimeError> {
        let mut node = match self.root {
            Root::Input => input,
            Root::Context => context,
        };
        for segment in &self.segments {
            let next = match segment {
                Segment::Field(name) => node.as_object().and_then(|o| o.get(name)),
                Segment::Index(i) => node.as_array().and_then(|a| a.get(*i)),
            };
            node = next.ok_or_else(|| {
                RuntimeError(format!(
                    "the JsonPath {} could not be found in the input",
                    self.text
                ))
            })?;
        }
        Ok(node)
    }

    /// Whether the path selects a node (Choice `IsPresent`).
    pub fn is_present(&self, input: &Value, context: &Value) -> bool {
        self.select(input, context).is_ok()
    }

    /// Writes `value` at this path inside `target` (ResultPath). `$` replaces the whole
    /// document; missing objects along the way are created; anything else in the way (a
    /// string, a missing array element) is a `States.Runtime`.
    pub fn set(&self, target: Value, value: Value) -> Result<Value, RuntimeError> {
        if self.segments.is_empty() {
            return Ok(value);
        }
        let mut target = target;
        let fail = || {
            RuntimeError(format!(
                "unable to apply ResultPath {} to the state's input",
                self.text
            ))
        };
        let mut node = &mut target;
        let last = self.segments.len() - 1;
        for (i, segment) in self.segments.iter().enumerate() {
            let child = match segment {
                Segment::Field(name) => {
                    let object = node.as_object_mut().ok_or_else(fail)?;
                    if i == last {
                        object.insert(name.clone(), value);
                        return Ok(target);
                    }
                    object
                        .entry(name.clone())
                        .or_insert_with(|| Value::Object(Map::new()))
                }
                Segment::Index(index) => {
                    let slot = node
                        .as_array_mut()
                        .and_then(|a| a.get_mut(*index))
                        .ok_or_else(fail)?;
                    if i == last {
                        *slot = value;
                        return Ok(target);
                    }
                    slot
                }
            };
            node = child;
        }
        unreachable!("the loop returns at the last segment")
    }
}

/// What `$$` resolves to. Built fresh for every attempt, so `RetryCount` is always current.
#[derive(Debug, Clone)]
pub struct Context {
    pub execution_name: String,
    pub execution_input: Value,
    pub execution_start_time: DateTime<Utc>,
    pub state_name: String,
    pub state_entered_time: DateTime<Utc>,
    /// Retries so far in this visit of the state (0 on the first attempt).
    pub retry_count: u32,
    /// `$$.Task.Token`: only a `.waitForTaskToken` Task's attempt has one.
    pub task_token: Option<String>,
}

impl Context {
    pub fn to_value(&self) -> Value {
        let mut value = json!({
            "Execution": {
                "Id": self.execution_name,
                "Name": self.execution_name,
                "Input": self.execution_input,
                "StartTime": self.execution_start_time.to_rfc3339_opts(SecondsFormat::Millis, true),
            },
            "State": {
                "Name": self.state_name,
                "EnteredTime": self.state_entered_time.to_rfc3339_opts(SecondsFormat::Millis, true),
                "RetryCount": self.retry_count,
            },
        });
        if let (Some(token), Value::Object(fields)) = (&self.task_token, &mut value) {
            fields.insert("Task".to_owned(), json!({ "Token": token }));
        }
        value
    }
}

/// InputPath: `None` is `"InputPath": null`, which hands the state `{}`.
pub fn apply_input_path(
    path: Option<&Path>,
    raw: &Value,
    context: &Value,
) -> Result<Value, RuntimeError> {
    match path {
        Some(path) => path.select(raw, context).cloned(),
        None => Ok(Value::Object(Map::new())),
    }
}

/// OutputPath: `None` is `"OutputPath": null`, which passes `{}` on.
pub fn apply_output_path(path: Option<&Path>, output: Value) -> Result<Value, RuntimeError> {
    match path {
        Some(path) if path.segments.is_empty() => Ok(output),
        Some(path) => path.select(&output, &Value::Null).cloned(),
        None => Ok(Value::Object(Map::new())),
    }
}

/// ResultPath: `None` is `"ResultPath": null`, which discards the result and keeps the raw input.
pub fn apply_result_path(
    path: Option<&Path>,
    raw: Value,
    result: Value,
) -> Result<Value, RuntimeError> {
    match path {
        Some(path) => path.set(raw, result),
        None => Ok(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_forms() {
        let p = Path::parse("$.a[0]['b c'].d").unwrap();
        assert_eq!(p.root, Root::Input);
        assert_eq!(
            p.segments,
            [
                Segment::Field("a".into()),
                Segment::Index(0),
                Segment::Field("b c".into()),
                Segment::Field("d".into())
            ]
        );
        assert_eq!(
            Path::parse("$$.State.RetryCount").unwrap().root,
            Root::Context
        );
        assert!(Path::parse("$").unwrap().segments.is_empty());
        for bad in ["", "a", "$.", "$a", "$.a[", "$.a[x]", "$.a b", "$[]"] {
            assert!(
                matches!(Path::parse(bad), Err(PathError::Malformed { .. })),
                "{bad}"
            );
        }
        for unsupported in [
            "$..a",
            "$.a[*]",
            "$.*",
            "$.a[1:2]",
            "$.a[-1]",
            "$.a[?(@.b)]",
        ] {
            assert!(
                matches!(Path::parse(unsupported), Err(PathError::Unsupported { .. })),
                "{unsupported}"
            );
        }
        assert!(Path::parse_reference("$$.Execution").is_err());
    }

    #[test]
    fn selects_and_sets() {
        let doc = json!({"a": [{"b": 1}], "s": "x"});
        let ctx = json!({"State": {"Name": "S"}});
        let get = |p: &str| Path::parse(p).unwrap().select(&doc, &ctx).cloned();
        assert_eq!(get("$.a[0].b"), Ok(json!(1)));
        assert_eq!(get("$$.State.Name"), Ok(json!("S")));
        assert!(get("$.a[1]").is_err() && get("$.s.t").is_err());

        let set = |p: &str, v| Path::parse(p).unwrap().set(doc.clone(), v);
        assert_eq!(set("$", json!(2)), Ok(json!(2)));
        assert_eq!(set("$.a[0].b", json!(2)).unwrap()["a"], json!([{"b": 2}]));
        assert_eq!(set("$.n.m", json!(3)).unwrap()["n"], json!({"m": 3}));
        assert!(set("$.s.t", json!(0)).is_err());
        assert!(set("$.a[5]", json!(0)).is_err());
    }
}
