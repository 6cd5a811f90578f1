//! Task resources: which integration a Task uses, and Step Functions' rules for the fields that
//! come with it (the callback pattern's Parameters, TimeoutSeconds, HeartbeatSeconds).
//!
//! Besides `${Name}` (a handler locally, a Lambda ARN on AWS) two callback integrations are
//! supported, the ones the saga's design calls for: `lambda:invoke.waitForTaskToken` and
//! `sqs:sendMessage.waitForTaskToken`. Their target (FunctionName, QueueUrl) must be a literal
//! `${Name}` substitution, so the same name selects the local handler or queue and becomes the
//! ARN or URL on deploy; any other Parameters field is refused rather than ignored. As Step
//! Functions does, a callback Task must pass `$$.Task.Token` somewhere, or nobody could ever
//! answer it; and the token exists nowhere else, so a reference to it elsewhere is refused too.

use super::path::{Path, Root, Segment};
use super::template::Template;
use super::{AslError, substitution};
use serde_json::Value;
use std::collections::BTreeSet;

pub const LAMBDA_CALLBACK: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";
pub const SQS_CALLBACK: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";
/// Step Functions' largest TimeoutSeconds / HeartbeatSeconds.
const MAX_SECONDS: u64 = 99_999_999;

/// How a Task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integration {
    /// `"Resource": "${Name}"`: the handler's return value is the task's result.
    Invoke,
    /// The handler `resource` gets the rendered `Parameters.Payload` (its return value is
    /// ignored); the task's result is what arrives with the token.
    LambdaCallback,
    /// The rendered `Parameters.MessageBody` goes on the queue `resource`; the task's result is
    /// what arrives with the token.
    SqsCallback,
}

impl Integration {
    pub fn waits_for_token(self) -> bool {
        self != Integration::Invoke
    }

    /// The Parameters field holding what is submitted, and the one naming the target.
    fn fields(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Integration::Invoke => None,
            Integration::LambdaCallback => Some(("lambda:invoke", "FunctionName", "Payload")),
            Integration::SqsCallback => Some(("sqs:sendMessage", "QueueUrl", "MessageBody")),
        }
    }

    /// The field of the rendered Parameters that is submitted (`Payload`, `MessageBody`).
    pub fn body_field(self) -> Option<&'static str> {
        self.fields().map(|(_, _, body)| body)
    }
}

fn invalid(state: &str, message: String) -> AslError {
    AslError::Invalid {
        state: state.to_owned(),
        message,
    }
}

/// `${Name}` with Name among `substitutions`, or why not.
fn substitution_name(
    state: &str,
    field: &'static str,
    text: &str,
    substitutions: &BTreeSet<String>,
) -> Result<Option<String>, AslError> {
    match text
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .filter(|n| substitution::is_name(n))
    {
        Some(name) if substitutions.contains(name) => Ok(Some(name.to_owned())),
        Some(name) => Err(AslError::UnknownSubstitution {
            state: state.to_owned(),
            field,
            name: name.to_owned(),
        }),
        None => Ok(None),
    }
}

/// The Task's integration and substitution name (handler or queue), checking its Parameters.
pub(super) fn resource(
    state: &str,
    resource: &str,
    parameters: Option<&Value>,
    substitutions: &BTreeSet<String>,
) -> Result<(String, Integration), AslError> {
    let integration = match resource {
        LAMBDA_CALLBACK => Integration::LambdaCallback,
        SQS_CALLBACK => Integration::SqsCallback,
        _ => {
            return match substitution_name(state, "Resource", resource, substitutions)? {
                Some(name) => Ok((name, Integration::Invoke)),
                None => Err(AslError::ResourceNotSubstitution {
                    state: state.to_owned(),
                    resource: resource.to_owned(),
                }),
            };
        }
    };
    let Some((service, target, body)) = integration.fields() else {
        unreachable!("a callback integration has fields")
    };
    let Some(Value::Object(parameters)) = parameters else {
        return Err(invalid(
            state,
            format!("{service}.waitForTaskToken needs Parameters with {target} and {body}"),
        ));
    };
    let body_path = format!("{body}.$");
    if let Some(extra) = parameters
        .keys()
        .find(|k| *k != target && *k != body && **k != body_path)
    {
        return Err(invalid(
            state,
            format!(
                "Parameters: field \"{extra}\" is not supported for {service}.waitForTaskToken (only {target} and {body})"
            ),
        ));
    }
    if !parameters.contains_key(body) && !parameters.contains_key(&body_path) {
        return Err(invalid(state, format!("Parameters.{body} is missing")));
    }
    let text = parameters.get(target).and_then(Value::as_str).unwrap_or("");
    let field = match integration {
        Integration::SqsCallback => "Parameters.QueueUrl",
        _ => "Parameters.FunctionName",
    };
    match substitution_name(state, field, text, substitutions)? {
        Some(name) => Ok((name, integration)),
        None => Err(invalid(
            state,
            format!("{field} must be a literal ${{Name}} substitution"),
        )),
    }
}

/// `$$.Task.Token` exactly.
fn is_token(path: &Path) -> bool {
    path.root == Root::Context
        && matches!(path.segments.as_slice(), [Segment::Field(t), Segment::Field(k)] if t == "Task" && k == "Token")
}

/// Anything under `$$.Task`, which only a callback Task's Parameters can read.
pub(super) fn reads_task_context(path: &Path) -> bool {
    path.root == Root::Context
        && matches!(path.segments.first(), Some(Segment::Field(t)) if t == "Task")
}

/// A callback Task's Parameters must pass the token on; other fields must not read it.
pub(super) fn check_token_use(
    state: &str,
    integration: Integration,
    parameters: Option<&Template>,
    elsewhere: &[(&str, Vec<&Path>)],
) -> Result<(), AslError> {
    if integration.waits_for_token()
        && !parameters.is_some_and(|p| p.paths().into_iter().any(is_token))
    {
        return Err(AslError::MissingTaskToken {
            state: state.to_owned(),
        });
    }
    let parameters_too = (!integration.waits_for_token()).then(|| {
        (
            "Parameters",
            parameters.map(Template::paths).unwrap_or_default(),
        )
    });
    for (field, paths) in elsewhere.iter().cloned().chain(parameters_too) {
        if paths.into_iter().any(reads_task_context) {
            return Err(invalid(
                state,
                format!(
                    "{field}: $$.Task exists only in the Parameters of a .waitForTaskToken Task"
                ),
            ));
        }
    }
    Ok(())
}

/// TimeoutSeconds and HeartbeatSeconds: positive, heartbeat below timeout, paths refused.
///
/// HeartbeatSeconds is refused on a `${Name}` Task: its handler holds no token, so it could never
/// send a heartbeat and the field would act as a second, shorter TimeoutSeconds.
pub(super) fn timeouts(
    state: &str,
    integration: Integration,
    timeout: Option<u64>,
    heartbeat: Option<u64>,
    paths: [(&str, bool); 2],
) -> Result<(), AslError> {
    if let Some((field, _)) = paths.iter().find(|(_, given)| *given) {
        return Err(invalid(
            state,
            format!("{field} is not supported: give the number of seconds in the definition"),
        ));
    }
    for (field, value) in [("TimeoutSeconds", timeout), ("HeartbeatSeconds", heartbeat)] {
        if value.is_some_and(|s| s == 0 || s > MAX_SECONDS) {
            return Err(invalid(
                state,
                format!("{field} must be from 1 to {MAX_SECONDS}"),
            ));
        }
    }
    if heartbeat.is_some() && !integration.waits_for_token() {
        return Err(invalid(
            state,
            "HeartbeatSeconds needs a .waitForTaskToken Resource: a ${Name} handler cannot send heartbeats".to_owned(),
        ));
    }
    if let (Some(t), Some(h)) = (timeout, heartbeat)
        && h >= t
    {
        return Err(invalid(
            state,
            format!("HeartbeatSeconds ({h}) must be less than TimeoutSeconds ({t})"),
        ));
    }
    Ok(())
}
