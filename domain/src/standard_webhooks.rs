//! Standard Webhooks signatures (spec 1.0.0, symmetric scheme): signing what the service sends
//! and verifying what it receives, with no I/O and no HTTP types (header values come in and go
//! out as strings), so the webhook route, the provider simulator and the subscriber
//! deliveries share one implementation.
//!
//! The signed content is `{id}.{timestamp}.{body}` under HMAC-SHA256 with the secret's key;
//! the `webhook-signature` header is a space-separated list of `version,base64` entries and
//! one valid `v1` entry is enough (several are sent while a secret is rotated). Entries of
//! other versions (`v1a`, say) and entries that do not parse are skipped, not errors, so a
//! sender may add schemes without breaking us. The comparison is constant-time (`hmac`'s
//! `verify_slice`). A timestamp more than [`TOLERANCE`] away from `now`, in either
//! direction, is refused to bound replays; exactly [`TOLERANCE`] away passes, as in the
//! reference library. The timestamp must be canonical integer seconds, since the signature
//! covers its text. An id must be non-empty, at most [`MAX_ID_LEN`] bytes and contain no
//! `.`, which the spec forbids because it would make the signed content ambiguous.

mod secret;
#[cfg(test)]
mod tests;

pub use secret::{
    GENERATED_KEY_LEN, MAX_KEY_LEN, MIN_KEY_LEN, SECRET_PREFIX, SecretError, WebhookSecret,
};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use thiserror::Error;

/// How far a timestamp may be from now, either way.
pub const TOLERANCE: TimeDelta = TimeDelta::minutes(5);
/// The longest `webhook-id` accepted or produced, in bytes.
pub const MAX_ID_LEN: usize = 255;
/// The signature version of the symmetric scheme.
const VERSION: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// One of the three Standard Webhooks headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    Id,
    Timestamp,
    Signature,
}

impl Header {
    /// The header's name, lower case.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Id => "webhook-id",
            Self::Timestamp => "webhook-timestamp",
            Self::Signature => "webhook-signature",
        }
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a webhook id is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("webhook-id is empty")]
    Empty,
    #[error("webhook-id is {len} bytes, more than {MAX_ID_LEN}")]
    TooLong { len: usize },
    #[error("webhook-id contains '.', which makes the signed content ambiguous")]
    ContainsDot,
}

/// Which side of now a refused timestamp lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skew {
    Past,
    Future,
}

impl fmt::Display for Skew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Past => "past",
            Self::Future => "future",
        })
    }
}

/// Why a received webhook is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// The header is absent or empty.
    #[error("missing {0} header")]
    MissingHeader(Header),
    #[error(transparent)]
    InvalidId(#[from] IdError),
    #[error("malformed webhook-timestamp: expected integer Unix seconds")]
    MalformedTimestamp,
    /// `by` is the whole distance from now, not just the part beyond the tolerance.
    #[error(
        "webhook-timestamp is {}s in the {skew}, beyond the {}s tolerance",
        by.num_seconds(),
        TOLERANCE.num_seconds()
    )]
    TimestampOutOfTolerance { skew: Skew, by: TimeDelta },
    #[error("no valid v1 signature in webhook-signature")]
    NoValidSignature,
}

/// The authenticated metadata of a verified webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// The sender's message id: the same on every retry, so the receiver's idempotency key.
    pub id: String,
    pub timestamp: DateTime<Utc>,
}

/// The three header values of a signed webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
}

impl Signed {
    /// Signs `body` under `id` at `timestamp` (Unix seconds), refusing an id that [`verify`]
    /// would refuse.
    pub fn new(
        secret: &WebhookSecret,
        id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<Self, IdError> {
        check_id(id)?;
        Ok(Self {
            id: id.to_owned(),
            timestamp: timestamp.to_string(),
            signature: sign(secret, id, timestamp, body),
        })
    }

    /// `(name, value)` of each header, in the spec's order.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            (Header::Id.name(), &self.id),
            (Header::Timestamp.name(), &self.timestamp),
            (Header::Signature.name(), &self.signature),
        ]
    }
}

/// The `webhook-signature` value (`v1,<base64>`) of `body` under `id` at `timestamp`.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = signer(secret, id, timestamp, body).finalize().into_bytes();
    format!("{VERSION},{}", STANDARD.encode(tag))
}

/// Checks a received webhook's headers and body against `secret` at `now`.
pub fn verify(
    secret: &WebhookSecret,
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<VerifiedWebhook, VerifyError> {
    // All three are looked for before any is judged, so the error names the first missing one.
    let id = present(id, Header::Id)?;
    let timestamp = present(timestamp, Header::Timestamp)?;
    let signatures = present(signature, Header::Signature)?;
    check_id(id)?;
    let seconds = parse_timestamp(timestamp)?;
    let at = DateTime::from_timestamp(seconds, 0).ok_or(VerifyError::MalformedTimestamp)?;
    check_tolerance(at, now)?;

    let expected = signer(secret, id, seconds, body);
    let valid = signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if !valid {
        return Err(VerifyError::NoValidSignature);
    }
    Ok(VerifiedWebhook {
        id: id.to_owned(),
        timestamp: at,
    })
}

fn signer(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.key()).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn present(value: Option<&str>, header: Header) -> Result<&str, VerifyError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or(VerifyError::MissingHeader(header))
}

pub(crate) fn check_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        Err(IdError::Empty)
    } else if id.len() > MAX_ID_LEN {
        Err(IdError::TooLong { len: id.len() })
    } else if id.contains('.') {
        Err(IdError::ContainsDot)
    } else {
        Ok(())
    }
}

/// Only the canonical decimal form: the signature covers the header's text, and `+1`, `01`
/// or `1.0` would be verified against a text the sender did not sign.
fn parse_timestamp(raw: &str) -> Result<i64, VerifyError> {
    raw.parse::<i64>()
        .ok()
        .filter(|seconds| seconds.to_string() == raw)
        .ok_or(VerifyError::MalformedTimestamp)
}

fn check_tolerance(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), VerifyError> {
    if at < now - TOLERANCE {
        Err(VerifyError::TimestampOutOfTolerance {
            skew: Skew::Past,
            by: now - at,
        })
    } else if at > now + TOLERANCE {
        Err(VerifyError::TimestampOutOfTolerance {
            skew: Skew::Future,
            by: at - now,
        })
    } else {
        Ok(())
    }
}
