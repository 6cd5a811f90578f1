//! W3C Trace Context (`traceparent`): the trace a request belongs to, stored with the events
//! it causes so the relay, the saga's steps and the deliveries continue it.
//!
//! Only the version `00` form is accepted; an invalid header starts a new trace instead of
//! failing the request (the W3C rule for receivers).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>, ids not all zero)")]
pub struct TraceparentError;

/// `00-<trace id>-<parent span id>-<flags>`, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Traceparent(String);

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_hex(len: usize) -> String {
    // v4 UUIDs carry 122 random bits from the OS generator; the fixed version and variant
    // digits are dropped so every digit kept is random.
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let u = Uuid::new_v4().simple().to_string();
        out.extend(
            u[..12]
                .chars()
                .chain(u[13..16].chars())
                .chain(u[17..].chars()),
        );
    }
    out.truncate(len);
    out
}

impl Traceparent {
    pub fn parse(s: &str) -> Result<Self, TraceparentError> {
        let parts: Vec<&str> = s.trim().split('-').collect();
        let [version, trace, span, flags] = parts[..] else {
            return Err(TraceparentError);
        };
        let ok = version == "00"
            && is_hex(trace, 32)
            && is_hex(span, 16)
            && is_hex(flags, 2)
            && trace.bytes().any(|b| b != b'0')
            && span.bytes().any(|b| b != b'0');
        if ok {
            Ok(Traceparent(s.trim().to_owned()))
        } else {
            Err(TraceparentError)
        }
    }

    /// A new trace, sampled.
    pub fn new_root() -> Self {
        Traceparent(format!("00-{}-{}-01", random_hex(32), random_hex(16)))
    }

    /// The same trace, with a new span as the parent: what a hop (the relay, a step, a
    /// delivery) sends on.
    pub fn child(&self) -> Self {
        Traceparent(format!(
            "00-{}-{}-{}",
            self.trace_id(),
            random_hex(16),
            &self.0[53..55]
        ))
    }

    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }

    pub fn span_id(&self) -> &str {
        &self.0[36..52]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Traceparent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Traceparent {
    type Error = TraceparentError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Traceparent::parse(&s)
    }
}

impl From<Traceparent> for String {
    fn from(t: Traceparent) -> String {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_w3c_example_and_keeps_its_trace_in_children() {
        let t =
            Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id(), "00f067aa0ba902b7");
        let c = t.child();
        assert_eq!(c.trace_id(), t.trace_id());
        assert_ne!(c.span_id(), t.span_id());
        assert!(c.as_str().ends_with("-01"));
        assert_eq!(Traceparent::parse(c.as_str()).unwrap(), c);
    }

    #[test]
    fn refuses_what_is_not_version_00_hex() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(Traceparent::parse(bad).is_err(), "{bad:?}");
        }
        let root = Traceparent::new_root();
        assert_eq!(Traceparent::parse(root.as_str()).unwrap(), root);
        assert_ne!(Traceparent::new_root().trace_id(), root.trace_id());
    }
}
