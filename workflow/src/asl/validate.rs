//! Checks that make a loaded machine a closed, well-formed graph.
//!
//! Order matters for useful errors: per-state problems are reported while parsing, then
//! StartAt, then dangling transitions, and unreachable states last, because a dangling `Next`
//! usually also strands the states after it and the dangling edge is the real mistake.

use super::{AslError, Catcher, Retrier, STATES_ALL, StateMachine};
use std::collections::{BTreeSet, VecDeque};

pub(super) fn graph(machine: &StateMachine) -> Result<(), AslError> {
    if !machine.states.contains_key(&machine.start_at) {
        return Err(AslError::UnknownStartAt(machine.start_at.clone()));
    }
    for (name, state) in &machine.states {
        for (field, target) in state.transitions() {
            if !machine.states.contains_key(target) {
                return Err(AslError::DanglingTransition {
                    state: name.clone(),
                    field,
                    target: target.to_owned(),
                });
            }
        }
    }
    let mut seen = BTreeSet::from([machine.start_at.as_str()]);
    let mut queue = VecDeque::from([machine.start_at.as_str()]);
    while let Some(name) = queue.pop_front() {
        for (_, target) in machine.states[name].transitions() {
            if seen.insert(target) {
                queue.push_back(target);
            }
        }
    }
    if let Some(name) = machine.states.keys().find(|n| !seen.contains(n.as_str())) {
        return Err(AslError::Unreachable {
            state: name.clone(),
        });
    }
    Ok(())
}

/// `States.ALL` must be the only name in its list and that list must be the last one:
/// anything after it could never match, which is always a mistake.
fn states_all_last<'a>(
    state: &str,
    field: &'static str,
    lists: impl ExactSizeIterator<Item = &'a Vec<String>>,
) -> Result<(), AslError> {
    let count = lists.len();
    for (i, list) in lists.enumerate() {
        if list.iter().any(|e| e == STATES_ALL) && (list.len() != 1 || i + 1 != count) {
            return Err(AslError::StatesAllNotLast {
                state: state.to_owned(),
                field,
            });
        }
    }
    Ok(())
}

pub(super) fn retry(state: &str, retry: &[Retrier]) -> Result<(), AslError> {
    let invalid = |message: String| AslError::Invalid {
        state: state.to_owned(),
        message,
    };
    for (i, r) in retry.iter().enumerate() {
        if r.error_equals.is_empty() {
            return Err(invalid(format!(
                "Retry[{i}]: ErrorEquals must not be empty"
            )));
        }
        if r.interval_seconds == 0 {
            return Err(invalid(format!(
                "Retry[{i}]: IntervalSeconds must be at least 1"
            )));
        }
        if !(r.backoff_rate >= 1.0 && r.backoff_rate.is_finite()) {
            return Err(invalid(format!(
                "Retry[{i}]: BackoffRate must be at least 1.0"
            )));
        }
        if r.max_delay_seconds == Some(0) {
            return Err(invalid(format!(
                "Retry[{i}]: MaxDelaySeconds must be at least 1"
            )));
        }
    }
    states_all_last(state, "Retry", retry.iter().map(|r| &r.error_equals))
}

pub(super) fn catch(state: &str, catch: &[Catcher]) -> Result<(), AslError> {
    if let Some(i) = catch.iter().position(|c| c.error_equals.is_empty()) {
        return Err(AslError::Invalid {
            state: state.to_owned(),
            message: format!("Catch[{i}]: ErrorEquals must not be empty"),
        });
    }
    states_all_last(state, "Catch", catch.iter().map(|c| &c.error_equals))
}
