//! The symmetric signing secret of Standard Webhooks: `whsec_` followed by the base64 of a
//! random key of 24 to 64 bytes (the spec's 192 to 512 bits).
//!
//! The key never leaves this type except through `Display`, which is the serialization shown to
//! the other party; `Debug` prints only its length, so a secret inside a logged config or error
//! does not leak. Parsing is strict about the prefix (a bare base64 string is more likely a
//! secret of another scheme than a Standard Webhooks one) but, like the reference library,
//! accepts the base64 with or without its padding.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// What every serialized secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// The spec's minimum key size (192 bits).
pub const MIN_KEY_LEN: usize = 24;
/// The spec's maximum key size (512 bits).
pub const MAX_KEY_LEN: usize = 64;
/// The size of a key made by [`WebhookSecret::generate`].
pub const GENERATED_KEY_LEN: usize = 32;

/// Why a secret could not be parsed or made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    #[error("a webhook secret starts with \"{SECRET_PREFIX}\"")]
    MissingPrefix,
    #[error("the webhook secret after \"{SECRET_PREFIX}\" is not base64: {0}")]
    Base64(#[source] base64::DecodeError),
    #[error("the webhook secret's key is {len} bytes; at least {MIN_KEY_LEN} are required")]
    TooShort { len: usize },
    #[error("the webhook secret's key is {len} bytes; at most {MAX_KEY_LEN} are allowed")]
    TooLong { len: usize },
    #[error("the system's random source failed: {0}")]
    Random(#[source] getrandom::Error),
}

/// An HMAC-SHA256 key for Standard Webhooks signatures, 24 to 64 bytes.
///
/// No `PartialEq`: comparing keys is not something callers need, and a derived comparison
/// would not be constant-time.
#[derive(Clone)]
pub struct WebhookSecret(Box<[u8]>);

impl WebhookSecret {
    /// Parses `whsec_<base64 key>`.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let encoded = s
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD_PAD_INDIFFERENT
            .decode(encoded)
            .map_err(SecretError::Base64)?;
        Self::from_key(key)
    }

    /// A new secret of [`GENERATED_KEY_LEN`] bytes from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = vec![0u8; GENERATED_KEY_LEN];
        getrandom::fill(&mut key).map_err(SecretError::Random)?;
        Self::from_key(key)
    }

    fn from_key(key: Vec<u8>) -> Result<Self, SecretError> {
        match key.len() {
            len if len < MIN_KEY_LEN => Err(SecretError::TooShort { len }),
            len if len > MAX_KEY_LEN => Err(SecretError::TooLong { len }),
            _ => Ok(Self(key.into_boxed_slice())),
        }
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The serialized form, `whsec_<padded base64>`, as given to the other party.
impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecret(<{} bytes, redacted>)", self.0.len())
    }
}
