//! The context object (`$$`) a state's paths and templates may read, built only for the states
//! that read it: building it deep-copies the execution input, and the saga's definition reads
//! it nowhere, so building it for every visit was pure allocation.

use super::store::ExecutionSnapshot;
use crate::asl::State;
use crate::asl::path::{Context, Path, Root};
use crate::asl::template::Template;
use serde_json::Value;

/// Whether visiting `state` can read the context object (`$$`). Only then is it built: building
/// it deep-copies the execution input, on every state of every execution.
pub(super) fn reads_context(state: &State) -> bool {
    fn path(p: &Option<Path>) -> bool {
        p.as_ref().is_some_and(|p| p.root == Root::Context)
    }
    fn template(t: &Template) -> bool {
        match t {
            Template::Literal(_) => false,
            Template::Path(p) => p.root == Root::Context,
            Template::Object(fields) => fields.iter().any(|(_, t)| template(t)),
            Template::Array(items) => items.iter().any(template),
        }
    }
    match state {
        State::Task(t) => {
            path(&t.input_path)
                || t.parameters.as_ref().is_some_and(template)
                || t.result_selector.as_ref().is_some_and(template)
        }
        State::Pass(p) => path(&p.input_path) || p.parameters.as_ref().is_some_and(template),
        State::Succeed(s) => path(&s.input_path),
        // Choice rules are not walked: one context per Choice visit costs little.
        State::Choice(_) => true,
        State::Fail(_) => false,
    }
}

/// `token` is the attempt's `$$.Task.Token` (a callback Task's Parameters only).
pub(super) fn context(snapshot: &ExecutionSnapshot, token: Option<&str>) -> Value {
    Context {
        execution_name: snapshot.name.clone(),
        execution_input: snapshot.input.clone(),
        execution_start_time: snapshot.started_at,
        state_name: snapshot.state.clone(),
        state_entered_time: snapshot.state_entered_at,
        retry_count: snapshot.attempt() - 1,
        task_token: token.map(str::to_owned),
    }
    .to_value()
}
