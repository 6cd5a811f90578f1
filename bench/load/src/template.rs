//! Per-request templates: the URL path, header values and body with `{seq}` and `{uuid}` in them.
//!
//! Only those two exact tokens are placeholders; every other brace is literal, so a JSON body
//! needs no escaping. A template is parsed once at start and rendered once per request; one
//! request renders all of its templates with the same sequence number and the same UUID, which
//! is what lets a harness find the request again on the server's side.

use std::fmt::Write as _;

use uuid::Uuid;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Seq,
    Uuid,
}

/// A string with `{seq}` and `{uuid}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

const SEQ: &str = "{seq}";
const UUID: &str = "{uuid}";

impl Template {
    pub fn parse(source: &str) -> Self {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while !rest.is_empty() {
            let token = if rest.starts_with(SEQ) {
                Some((Part::Seq, SEQ.len()))
            } else if rest.starts_with(UUID) {
                Some((Part::Uuid, UUID.len()))
            } else {
                None
            };
            match token {
                Some((part, len)) => {
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                    rest = &rest[len..];
                }
                None => {
                    // Advance by one whole character: `rest` stays on a char boundary.
                    let c = rest.chars().next().unwrap_or_default();
                    text.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Self { parts }
    }

    /// Whether rendering depends on the request (so a constant can be built once instead).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    pub fn render(&self, seq: u64, uuid: &Uuid) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                // Writing into a String cannot fail.
                Part::Seq => {
                    let _ = write!(out, "{seq}");
                }
                Part::Uuid => {
                    let _ = write!(out, "{}", uuid.hyphenated());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_and_other_braces_stay() {
        let t = Template::parse(r#"{"n":{seq},"id":"{uuid}","x":"{uuid}{seq}{other}é"}"#);
        let u = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            t.render(7, &u),
            r#"{"n":7,"id":"01234567-89ab-cdef-0123-456789abcdef","x":"01234567-89ab-cdef-0123-456789abcdef7{other}é"}"#
        );
        assert!(!t.is_constant());
        assert!(Template::parse("/orders{").is_constant());
        assert_eq!(Template::parse("").render(1, &u), "");
    }
}
