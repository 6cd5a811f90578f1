//! The page parameters every listing takes: `limit` (1-100) and the opaque `cursor` the
//! previous page handed out. One reading of both, so every listing refuses the same bad values
//! with the same problem.

use super::problem::ApiError;
use base64::Engine;
use orders_domain::store::ListCursor;

/// Cursors are URL-safe base64 of the store's JSON cursor: opaque to clients, checked on the
/// way back in.
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The most items one page holds.
pub(crate) const MAX_PAGE: u32 = 100;

/// `limit` as sent, or `default` when absent.
pub(crate) fn limit(raw: Option<&str>, default: u32) -> Result<u32, ApiError> {
    match raw {
        None => Ok(default),
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "must be an integer from 1 to 100")),
    }
}

/// The position a `cursor` names, if one was sent.
pub(crate) fn cursor(raw: Option<&str>) -> Result<Option<ListCursor>, ApiError> {
    raw.map(|c| {
        B64.decode(c.as_bytes())
            .ok()
            .and_then(|raw| serde_json::from_slice::<ListCursor>(&raw).ok())
            .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this service issued"))
    })
    .transpose()
}

/// The cursor of the next page, for the answer.
pub(crate) fn next_cursor(next: Option<ListCursor>) -> Option<String> {
    next.map(|c| B64.encode(serde_json::to_vec(&c).expect("a cursor serializes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused() {
        assert_eq!(limit(None, 20).unwrap(), 20);
        assert_eq!(limit(Some("100"), 20).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            assert!(limit(Some(bad), 20).is_err(), "{bad}");
        }
        assert!(cursor(Some("not-a-cursor")).is_err());
        assert_eq!(cursor(None).unwrap(), None);
    }
}
