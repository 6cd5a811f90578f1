//! Amazon States Language: the typed, validated form of `statemachine.asl.json`.
//!
//! The same file is deployed unchanged to Step Functions (with DefinitionSubstitutions) and
//! run by the local [`crate::executor`], so loading is deliberately strict: everything the
//! local executor would interpret differently from Step Functions, or not at all, is refused
//! at load time with an error naming the state, instead of surfacing as a divergent run. That
//! is why unknown fields are denied, why Wait/Parallel/Map and intrinsic functions are refused
//! rather than half-supported, and why every Task `Resource` must be a `${Name}` substitution
//! (or one of the two callback integrations, whose target is one): locally the name selects an
//! in-process handler or queue, on AWS it becomes a Lambda ARN or a queue URL.
//!
//! A loaded [`StateMachine`] is a closed graph: StartAt exists, every transition target
//! exists, every state is reachable, every path parses. The executor relies on that and never
//! re-checks it.

pub mod choice;
mod integration;
pub mod path;
mod raw;
mod substitution;
pub mod template;
mod validate;

pub use choice::{ChoiceRule, Comparison, Condition};
pub use integration::{Integration, LAMBDA_CALLBACK, SQS_CALLBACK};
pub use path::{Context, Path, PathError, RuntimeError, STATES_RUNTIME};
pub use substitution::{substitute, substitution_names};
pub use template::Template;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The saga's definition, as deployed.
pub const DEFINITION: &str = include_str!("../../statemachine.asl.json");

/// Matches every error name in `ErrorEquals`.
pub const STATES_ALL: &str = "States.ALL";
/// Matches every error a task reports.
pub const STATES_TASK_FAILED: &str = "States.TaskFailed";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AslError {
    #[error("definition is not valid JSON: {0}")]
    Json(String),
    #[error("definition: {0}")]
    Definition(String),
    #[error("StartAt is missing")]
    MissingStartAt,
    #[error("StartAt \"{0}\" does not exist")]
    UnknownStartAt(String),
    #[error("state \"{state}\": unknown state type \"{state_type}\"")]
    UnknownStateType { state: String, state_type: String },
    #[error(
        "state \"{state}\": unsupported state type \"{state_type}\" (only Task, Choice, Pass, Succeed and Fail are supported)"
    )]
    UnsupportedStateType { state: String, state_type: String },
    #[error("state \"{state}\": {field} \"{target}\" does not exist")]
    DanglingTransition {
        state: String,
        field: String,
        target: String,
    },
    #[error("state \"{state}\": has neither Next nor End")]
    MissingTransition { state: String },
    #[error("state \"{state}\": has both Next and End")]
    ConflictingTransition { state: String },
    #[error("state \"{state}\": is not reachable from StartAt")]
    Unreachable { state: String },
    #[error("state \"{state}\": {field} uses unknown substitution \"${{{name}}}\"")]
    UnknownSubstitution {
        state: String,
        field: &'static str,
        name: String,
    },
    #[error(
        "state \"{state}\": Resource \"{resource}\" is not a ${{Name}} substitution (nor {LAMBDA_CALLBACK} or {SQS_CALLBACK})"
    )]
    ResourceNotSubstitution { state: String, resource: String },
    #[error(
        "state \"{state}\": a .waitForTaskToken Task must pass the task token: reference $$.Task.Token in its Parameters"
    )]
    MissingTaskToken { state: String },
    #[error("state \"{state}\": {field}: States.ALL must appear alone and in the last entry")]
    StatesAllNotLast { state: String, field: &'static str },
    #[error("state \"{state}\": {field}: {source}")]
    Path {
        state: String,
        field: String,
        source: PathError,
    },
    #[error("state \"{state}\": {field}: unsupported intrinsic function \"{expression}\"")]
    IntrinsicFunction {
        state: String,
        field: String,
        expression: String,
    },
    #[error("state \"{state}\": {message}")]
    Invalid { state: String, message: String },
    #[error("no value for substitution \"${{{0}}}\"")]
    MissingSubstitutionValue(String),
}

impl AslError {
    /// The state the error is about, when it is about one.
    pub fn state(&self) -> Option<&str> {
        match self {
            AslError::UnknownStateType { state, .. }
            | AslError::UnsupportedStateType { state, .. }
            | AslError::DanglingTransition { state, .. }
            | AslError::MissingTransition { state }
            | AslError::ConflictingTransition { state }
            | AslError::Unreachable { state }
            | AslError::UnknownSubstitution { state, .. }
            | AslError::ResourceNotSubstitution { state, .. }
            | AslError::MissingTaskToken { state }
            | AslError::StatesAllNotLast { state, .. }
            | AslError::Path { state, .. }
            | AslError::IntrinsicFunction { state, .. }
            | AslError::Invalid { state, .. } => Some(state),
            AslError::Json(_)
            | AslError::Definition(_)
            | AslError::MissingStartAt
            | AslError::UnknownStartAt(_)
            | AslError::MissingSubstitutionValue(_) => None,
        }
    }
}

/// A validated state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachine {
    pub comment: Option<String>,
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Task(TaskState),
    Choice(ChoiceState),
    Pass(PassState),
    Succeed(SucceedState),
    Fail(FailState),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Next(String),
    End,
}

/// For the `Option<Path>` fields below, `None` is an explicit JSON `null` (InputPath and
/// OutputPath: `{}`; ResultPath: discard the result). An absent field is `Some($)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    /// The substitution name (`ReserveInventoryFunctionArn` for `${ReserveInventoryFunctionArn}`):
    /// of the handler (`Resource`, or a callback's `FunctionName`) or of the queue (`QueueUrl`).
    pub resource: String,
    pub integration: Integration,
    pub input_path: Option<Path>,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: Option<Path>,
    pub output_path: Option<Path>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// Bounds a handler call, or a callback wait from the start of the attempt (`States.Timeout`).
    pub timeout_seconds: Option<u64>,
    /// A callback wait fails with `States.HeartbeatTimeout` this long after its start or its last
    /// heartbeat.
    pub heartbeat_seconds: Option<u64>,
    pub transition: Transition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceState {
    pub input_path: Option<Path>,
    pub output_path: Option<Path>,
    pub choices: Vec<ChoiceRule>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PassState {
    pub input_path: Option<Path>,
    pub parameters: Option<Template>,
    pub result: Option<Value>,
    pub result_path: Option<Path>,
    pub output_path: Option<Path>,
    pub transition: Transition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SucceedState {
    pub input_path: Option<Path>,
    pub output_path: Option<Path>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailState {
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JitterStrategy {
    Full,
    #[default]
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Retrier {
    pub error_equals: Vec<String>,
    #[serde(default = "default_interval")]
    pub interval_seconds: u32,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff")]
    pub backoff_rate: f64,
    #[serde(default)]
    pub max_delay_seconds: Option<u32>,
    #[serde(default)]
    pub jitter_strategy: JitterStrategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

fn default_interval() -> u32 {
    1
}
fn default_max_attempts() -> u32 {
    3
}
fn default_backoff() -> f64 {
    2.0
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: Option<Path>,
}

/// Whether an `ErrorEquals` list matches an error a task reported.
pub fn error_matches(error_equals: &[String], error: &str) -> bool {
    error_equals
        .iter()
        .any(|e| e == STATES_ALL || e == STATES_TASK_FAILED || e == error)
}

impl State {
    /// Every state this one can transition to, with the field that names it.
    pub fn transitions(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        match self {
            State::Task(t) => {
                if let Transition::Next(n) = &t.transition {
                    out.push(("Next".to_owned(), n.as_str()));
                }
                for (i, c) in t.catch.iter().enumerate() {
                    out.push((format!("Catch[{i}].Next"), c.next.as_str()));
                }
            }
            State::Pass(p) => {
                if let Transition::Next(n) = &p.transition {
                    out.push(("Next".to_owned(), n.as_str()));
                }
            }
            State::Choice(c) => {
                for (i, r) in c.choices.iter().enumerate() {
                    out.push((format!("Choices[{i}].Next"), r.next.as_str()));
                }
                if let Some(d) = &c.default {
                    out.push(("Default".to_owned(), d.as_str()));
                }
            }
            State::Succeed(_) | State::Fail(_) => {}
        }
        out
    }
}

impl StateMachine {
    /// Parses and validates a definition whose Task resources are `${Name}` substitutions
    /// drawn from `substitutions`.
    pub fn load(
        definition: &str,
        substitutions: &BTreeSet<String>,
    ) -> Result<StateMachine, AslError> {
        let machine = raw::parse(definition, substitutions)?;
        validate::graph(&machine)?;
        Ok(machine)
    }

    /// The saga's own definition ([`DEFINITION`]), with the substitutions it uses.
    pub fn saga() -> Result<StateMachine, AslError> {
        StateMachine::load(DEFINITION, &substitution_names(DEFINITION))
    }

    /// The substitution names of every Task that calls a handler: the handlers an executor
    /// needs (a `${Name}` Resource, a lambda callback's FunctionName).
    pub fn task_resources(&self) -> BTreeSet<&str> {
        self.tasks(|i| i != Integration::SqsCallback)
    }

    /// The queue names of every sqs callback Task (its QueueUrl substitution).
    pub fn task_queues(&self) -> BTreeSet<&str> {
        self.tasks(|i| i == Integration::SqsCallback)
    }

    fn tasks(&self, integration: impl Fn(Integration) -> bool) -> BTreeSet<&str> {
        self.states
            .values()
            .filter_map(|s| match s {
                State::Task(t) if integration(t.integration) => Some(t.resource.as_str()),
                _ => None,
            })
            .collect()
    }
}
