//! The wire form of a definition and its conversion into the typed [`StateMachine`].
//!
//! States are deserialized one by one from their JSON objects (rather than through a serde
//! tagged enum) so that every error can name the state and an unknown `Type` can be told apart
//! from a known-but-unsupported one. Each wire struct denies unknown fields: a field the local
//! executor does not understand would silently behave differently from Step Functions.
//! Checks that need only one state (paths, templates, Retry/Catch shape, Resource) live here;
//! checks across states (transitions, reachability) live in `validate`.

use super::choice::RawRule;
use super::integration::{self, Integration};
use super::path::Path;
use super::template::{Template, TemplateError};
use super::{
    AslError, Catcher, ChoiceState, FailState, PassState, Retrier, State, StateMachine,
    SucceedState, TaskState, Transition, validate,
};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Absent -> `None`; `null` -> `Some(None)`; a string -> `Some(Some(s))`.
type Nullable = Option<Option<String>>;

fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Nullable, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawMachine {
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    start_at: Option<String>,
    #[serde(default)]
    states: Option<Map<String, Value>>,
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawTask {
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
    resource: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    end: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    input_path: Nullable,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    result_selector: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    result_path: Nullable,
    #[serde(default, deserialize_with = "nullable")]
    output_path: Nullable,
    #[serde(default)]
    retry: Vec<Retrier>,
    #[serde(default)]
    catch: Vec<RawCatcher>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
    #[serde(default)]
    heartbeat_seconds: Option<u64>,
    #[serde(default)]
    timeout_seconds_path: Option<Value>,
    #[serde(default)]
    heartbeat_seconds_path: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawCatcher {
    error_equals: Vec<String>,
    next: String,
    #[serde(default, deserialize_with = "nullable")]
    result_path: Nullable,
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawChoice {
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    input_path: Nullable,
    #[serde(default, deserialize_with = "nullable")]
    output_path: Nullable,
    choices: Vec<RawRule>,
    #[serde(default)]
    default: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawPass {
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    end: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    input_path: Nullable,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    result_path: Nullable,
    #[serde(default, deserialize_with = "nullable")]
    output_path: Nullable,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawSucceed {
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    input_path: Nullable,
    #[serde(default, deserialize_with = "nullable")]
    output_path: Nullable,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawFail {
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

pub(super) fn parse(
    definition: &str,
    substitutions: &BTreeSet<String>,
) -> Result<StateMachine, AslError> {
    let raw: Value = serde_json::from_str(definition).map_err(|e| AslError::Json(e.to_string()))?;
    let raw: RawMachine =
        serde_json::from_value(raw).map_err(|e| AslError::Definition(e.to_string()))?;
    let start_at = raw.start_at.ok_or(AslError::MissingStartAt)?;
    let raw_states = raw
        .states
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AslError::Definition("States is missing or empty".to_owned()))?;
    let mut states = BTreeMap::new();
    for (name, value) in raw_states {
        let state = StateParser { name: &name }.state(value, substitutions)?;
        states.insert(name, state);
    }
    Ok(StateMachine {
        comment: raw.comment,
        start_at,
        states,
    })
}

/// Converts one state, attaching its name to every error.
struct StateParser<'a> {
    name: &'a str,
}

impl StateParser<'_> {
    fn invalid(&self, message: impl Into<String>) -> AslError {
        AslError::Invalid {
            state: self.name.to_owned(),
            message: message.into(),
        }
    }

    fn fields<T: for<'de> Deserialize<'de>>(
        &self,
        object: Map<String, Value>,
    ) -> Result<T, AslError> {
        serde_json::from_value(Value::Object(object)).map_err(|e| self.invalid(e.to_string()))
    }

    fn state(&self, value: Value, substitutions: &BTreeSet<String>) -> Result<State, AslError> {
        let Value::Object(mut object) = value else {
            return Err(self.invalid("a state must be a JSON object"));
        };
        let state_type = match object.remove("Type") {
            Some(Value::String(t)) => t,
            Some(_) => return Err(self.invalid("Type must be a string")),
            None => return Err(self.invalid("Type is missing")),
        };
        match state_type.as_str() {
            "Task" => self
                .task(self.fields(object)?, substitutions)
                .map(State::Task),
            "Choice" => self.choice(self.fields(object)?).map(State::Choice),
            "Pass" => self.pass(self.fields(object)?).map(State::Pass),
            "Succeed" => {
                let raw: RawSucceed = self.fields(object)?;
                Ok(State::Succeed(SucceedState {
                    input_path: self.path(raw.input_path, "InputPath")?,
                    output_path: self.reference(raw.output_path, "OutputPath")?,
                }))
            }
            "Fail" => {
                let raw: RawFail = self.fields(object)?;
                Ok(State::Fail(FailState {
                    error: raw.error,
                    cause: raw.cause,
                }))
            }
            "Wait" | "Parallel" | "Map" => Err(AslError::UnsupportedStateType {
                state: self.name.to_owned(),
                state_type,
            }),
            _ => Err(AslError::UnknownStateType {
                state: self.name.to_owned(),
                state_type,
            }),
        }
    }

    fn task(&self, raw: RawTask, substitutions: &BTreeSet<String>) -> Result<TaskState, AslError> {
        let (resource, integration) = integration::resource(
            self.name,
            &raw.resource,
            raw.parameters.as_ref(),
            substitutions,
        )?;
        integration::timeouts(
            self.name,
            integration,
            raw.timeout_seconds,
            raw.heartbeat_seconds,
            [
                ("TimeoutSecondsPath", raw.timeout_seconds_path.is_some()),
                ("HeartbeatSecondsPath", raw.heartbeat_seconds_path.is_some()),
            ],
        )?;
        validate::retry(self.name, &raw.retry)?;
        let catch = raw
            .catch
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                Ok(Catcher {
                    error_equals: c.error_equals,
                    next: c.next,
                    result_path: self
                        .reference(c.result_path, &format!("Catch[{i}].ResultPath"))?,
                })
            })
            .collect::<Result<Vec<_>, AslError>>()?;
        validate::catch(self.name, &catch)?;
        let input_path = self.path(raw.input_path, "InputPath")?;
        let parameters = self.template(raw.parameters, "Parameters")?;
        let result_selector = self.template(raw.result_selector, "ResultSelector")?;
        integration::check_token_use(
            self.name,
            integration,
            parameters.as_ref(),
            &[
                ("InputPath", input_path.iter().collect()),
                (
                    "ResultSelector",
                    result_selector
                        .as_ref()
                        .map(Template::paths)
                        .unwrap_or_default(),
                ),
            ],
        )?;
        Ok(TaskState {
            resource,
            integration,
            input_path,
            parameters,
            result_selector,
            result_path: self.reference(raw.result_path, "ResultPath")?,
            output_path: self.reference(raw.output_path, "OutputPath")?,
            retry: raw.retry,
            catch,
            timeout_seconds: raw.timeout_seconds,
            heartbeat_seconds: raw.heartbeat_seconds,
            transition: self.transition(raw.next, raw.end)?,
        })
    }

    fn choice(&self, raw: RawChoice) -> Result<ChoiceState, AslError> {
        if raw.choices.is_empty() {
            return Err(self.invalid("Choices must not be empty"));
        }
        let choices = raw
            .choices
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                rule.into_rule()
                    .map_err(|e| self.invalid(format!("Choices[{i}]: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(ChoiceState {
            input_path: self.path(raw.input_path, "InputPath")?,
            output_path: self.reference(raw.output_path, "OutputPath")?,
            choices,
            default: raw.default,
        })
    }

    fn pass(&self, raw: RawPass) -> Result<PassState, AslError> {
        let input_path = self.path(raw.input_path, "InputPath")?;
        let parameters = self.template(raw.parameters, "Parameters")?;
        integration::check_token_use(
            self.name,
            Integration::Invoke,
            parameters.as_ref(),
            &[("InputPath", input_path.iter().collect())],
        )?;
        Ok(PassState {
            input_path,
            parameters,
            result: raw.result,
            result_path: self.reference(raw.result_path, "ResultPath")?,
            output_path: self.reference(raw.output_path, "OutputPath")?,
            transition: self.transition(raw.next, raw.end)?,
        })
    }

    fn transition(&self, next: Option<String>, end: Option<bool>) -> Result<Transition, AslError> {
        let state = self.name.to_owned();
        match (next, end.unwrap_or(false)) {
            (Some(_), true) => Err(AslError::ConflictingTransition { state }),
            (Some(next), false) => Ok(Transition::Next(next)),
            (None, true) => Ok(Transition::End),
            (None, false) => Err(AslError::MissingTransition { state }),
        }
    }

    /// A path that may read the context object (InputPath).
    fn path(&self, value: Nullable, field: &str) -> Result<Option<Path>, AslError> {
        self.parse_path(value, field, Path::parse)
    }

    /// A path into the state's own data (ResultPath, OutputPath).
    fn reference(&self, value: Nullable, field: &str) -> Result<Option<Path>, AslError> {
        self.parse_path(value, field, Path::parse_reference)
    }

    fn parse_path(
        &self,
        value: Nullable,
        field: &str,
        parse: fn(&str) -> Result<Path, super::PathError>,
    ) -> Result<Option<Path>, AslError> {
        match value {
            None => Ok(Some(Path::root())),
            Some(None) => Ok(None),
            Some(Some(text)) if super::template::is_intrinsic(&text) => {
                Err(AslError::IntrinsicFunction {
                    state: self.name.to_owned(),
                    field: field.to_owned(),
                    expression: text,
                })
            }
            Some(Some(text)) => parse(&text).map(Some).map_err(|source| AslError::Path {
                state: self.name.to_owned(),
                field: field.to_owned(),
                source,
            }),
        }
    }

    fn template(&self, value: Option<Value>, field: &str) -> Result<Option<Template>, AslError> {
        let Some(value) = value else { return Ok(None) };
        let state = self.name.to_owned();
        let field = field.to_owned();
        Template::parse(&value).map(Some).map_err(|e| match e {
            TemplateError::Path(source) => AslError::Path {
                state,
                field,
                source,
            },
            TemplateError::Intrinsic(expression) => AslError::IntrinsicFunction {
                state,
                field,
                expression,
            },
            other => AslError::Invalid {
                state,
                message: format!("{field}: {other}"),
            },
        })
    }
}
