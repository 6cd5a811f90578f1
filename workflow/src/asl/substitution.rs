//! `${Name}` placeholders, as Step Functions' DefinitionSubstitutions understands them.
//!
//! The definition file keeps its placeholders so that one file serves both runtimes: locally a
//! name selects an in-process handler, for deployment [`substitute`] turns it into an ARN. A
//! placeholder without a value is an error rather than being left in place, because Step
//! Functions would otherwise reject the definition long after the deploy script ran.

use super::AslError;
use std::collections::{BTreeMap, BTreeSet};

/// Substitution names are identifiers: ASCII letters, digits and `_`.
pub(super) fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Every `${Name}` in the text, start and end byte offsets included.
fn placeholders(definition: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        loop {
            let start = from + definition[from..].find("${")?;
            let rest = &definition[start + 2..];
            let Some(len) = rest.find('}') else {
                from = definition.len();
                return None;
            };
            let name = &rest[..len];
            from = start + 2;
            if is_name(name) {
                let end = start + 2 + len + 1;
                from = end;
                return Some((start, end, name));
            }
        }
    })
}

/// The names of every `${Name}` placeholder in the definition.
pub fn substitution_names(definition: &str) -> BTreeSet<String> {
    placeholders(definition)
        .map(|(_, _, n)| n.to_owned())
        .collect()
}

/// Replaces every `${Name}` with its value, JSON-string-escaped (placeholders live inside
/// JSON strings; an ARN needs no escaping, so this is the same text Step Functions produces).
pub fn substitute(definition: &str, values: &BTreeMap<String, String>) -> Result<String, AslError> {
    let mut out = String::with_capacity(definition.len());
    let mut copied = 0;
    for (start, end, name) in placeholders(definition) {
        let value = values
            .get(name)
            .ok_or_else(|| AslError::MissingSubstitutionValue(name.to_owned()))?;
        let escaped = serde_json::to_string(value).expect("a string always serializes");
        out.push_str(&definition[copied..start]);
        out.push_str(&escaped[1..escaped.len() - 1]);
        copied = end;
    }
    out.push_str(&definition[copied..]);
    Ok(out)
}
