//! Choice rules: parsing into a closed set of comparisons, and evaluating them.
//!
//! The raw rule is deserialized with every supported field optional and unknown fields denied,
//! then converted into a typed [`Condition`] that has exactly one operator, so a rule with two
//! comparisons or none is a load error rather than a surprise at run time. Comparison semantics
//! follow Step Functions: a type mismatch (comparing a string with `NumericGreaterThan`) is
//! simply false; a `Variable` that selects nothing is a `States.Runtime`, except for
//! `IsPresent`, whose whole point is to ask.

use super::path::{Path, PathError, RuntimeError};
use serde::Deserialize;
use serde_json::{Number, Value};
use std::cmp::Ordering;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct RawRule {
    variable: Option<String>,
    string_equals: Option<String>,
    numeric_equals: Option<Number>,
    numeric_greater_than: Option<Number>,
    numeric_greater_than_equals: Option<Number>,
    numeric_less_than: Option<Number>,
    numeric_less_than_equals: Option<Number>,
    boolean_equals: Option<bool>,
    is_present: Option<bool>,
    is_null: Option<bool>,
    and: Option<Vec<RawRule>>,
    or: Option<Vec<RawRule>>,
    not: Option<Box<RawRule>>,
    pub(crate) next: Option<String>,
    #[allow(dead_code)]
    comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    StringEquals(String),
    NumericEquals(Number),
    NumericGreaterThan(Number),
    NumericGreaterThanEquals(Number),
    NumericLessThan(Number),
    NumericLessThanEquals(Number),
    BooleanEquals(bool),
    IsPresent(bool),
    IsNull(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare {
        variable: Path,
        comparison: Comparison,
    },
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

/// A top-level rule: a condition and where to go when it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
}

/// Why a rule is invalid; the caller adds the state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Variable: {0}")]
    Path(#[from] PathError),
    #[error("a Choice rule needs exactly one comparison, And, Or or Not (found {0})")]
    OperatorCount(usize),
    #[error("a comparison needs a Variable")]
    MissingVariable,
    #[error("And, Or and Not take no Variable")]
    UnexpectedVariable,
    #[error("And and Or need at least one rule")]
    EmptyList,
    #[error("a top-level Choice rule needs a Next")]
    MissingNext,
    #[error("a nested Choice rule cannot have a Next")]
    NestedNext,
}

impl RawRule {
    pub(crate) fn into_rule(self) -> Result<ChoiceRule, RuleError> {
        let next = self.next.clone().ok_or(RuleError::MissingNext)?;
        Ok(ChoiceRule {
            condition: self.into_condition()?,
            next,
        })
    }

    fn into_nested(self) -> Result<Condition, RuleError> {
        if self.next.is_some() {
            return Err(RuleError::NestedNext);
        }
        self.into_condition()
    }

    fn into_condition(self) -> Result<Condition, RuleError> {
        let mut comparisons = Vec::new();
        let mut push = |c: Option<Comparison>| comparisons.extend(c);
        push(self.string_equals.map(Comparison::StringEquals));
        push(self.numeric_equals.map(Comparison::NumericEquals));
        push(
            self.numeric_greater_than
                .map(Comparison::NumericGreaterThan),
        );
        push(
            self.numeric_greater_than_equals
                .map(Comparison::NumericGreaterThanEquals),
        );
        push(self.numeric_less_than.map(Comparison::NumericLessThan));
        push(
            self.numeric_less_than_equals
                .map(Comparison::NumericLessThanEquals),
        );
        push(self.boolean_equals.map(Comparison::BooleanEquals));
        push(self.is_present.map(Comparison::IsPresent));
        push(self.is_null.map(Comparison::IsNull));
        let combinators = usize::from(self.and.is_some())
            + usize::from(self.or.is_some())
            + usize::from(self.not.is_some());
        let count = comparisons.len() + combinators;
        if count != 1 {
            return Err(RuleError::OperatorCount(count));
        }
        if let Some(comparison) = comparisons.pop() {
            let text = self.variable.ok_or(RuleError::MissingVariable)?;
            return Ok(Condition::Compare {
                variable: Path::parse(&text)?,
                comparison,
            });
        }
        if self.variable.is_some() {
            return Err(RuleError::UnexpectedVariable);
        }
        let list = |rules: Vec<RawRule>| -> Result<Vec<Condition>, RuleError> {
            if rules.is_empty() {
                return Err(RuleError::EmptyList);
            }
            rules.into_iter().map(RawRule::into_nested).collect()
        };
        match (self.and, self.or, self.not) {
            (Some(rules), _, _) => Ok(Condition::And(list(rules)?)),
            (_, Some(rules), _) => Ok(Condition::Or(list(rules)?)),
            (_, _, Some(rule)) => Ok(Condition::Not(Box::new(rule.into_nested()?))),
            _ => unreachable!("exactly one operator was counted"),
        }
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64()) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

impl Condition {
    pub fn evaluate(&self, input: &Value, context: &Value) -> Result<bool, RuntimeError> {
        match self {
            Condition::And(all) => {
                for c in all {
                    if !c.evaluate(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(any) => {
                for c in any {
                    if c.evaluate(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(c) => Ok(!c.evaluate(input, context)?),
            Condition::Compare {
                variable,
                comparison: Comparison::IsPresent(expected),
            } => Ok(variable.is_present(input, context) == *expected),
            Condition::Compare {
                variable,
                comparison,
            } => {
                let value = variable.select(input, context)?;
                let number = |want: fn(Ordering) -> bool, bound: &Number| {
                    value
                        .as_number()
                        .and_then(|n| compare_numbers(n, bound))
                        .is_some_and(want)
                };
                Ok(match comparison {
                    Comparison::StringEquals(s) => value.as_str() == Some(s.as_str()),
                    Comparison::NumericEquals(n) => number(Ordering::is_eq, n),
                    Comparison::NumericGreaterThan(n) => number(Ordering::is_gt, n),
                    Comparison::NumericGreaterThanEquals(n) => number(Ordering::is_ge, n),
                    Comparison::NumericLessThan(n) => number(Ordering::is_lt, n),
                    Comparison::NumericLessThanEquals(n) => number(Ordering::is_le, n),
                    Comparison::BooleanEquals(b) => value.as_bool() == Some(*b),
                    Comparison::IsNull(expected) => value.is_null() == *expected,
                    Comparison::IsPresent(_) => unreachable!("handled above"),
                })
            }
        }
    }
}

/// The first rule that holds, in order; `None` means Default (or `States.NoChoiceMatched`).
pub fn choose<'a>(
    rules: &'a [ChoiceRule],
    input: &Value,
    context: &Value,
) -> Result<Option<&'a str>, RuntimeError> {
    for rule in rules {
        if rule.condition.evaluate(input, context)? {
            return Ok(Some(&rule.next));
        }
    }
    Ok(None)
}
