//! Standard Webhooks signatures (symmetric `v1` scheme), as the Orders payment simulator signs
//! its webhooks and the Orders service verifies them: HMAC-SHA256 over `{id}.{timestamp}.{body}`
//! with the secret's key, sent as `webhook-signature: v1,<base64>`. The peer pays the same cost
//! Orders pays: the provider signs every delivery and the receiver verifies it (constant-time
//! comparison, timestamp within five minutes either way) before anything is resumed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a webhook timestamp may be from now, either way, in seconds.
pub const TOLERANCE_SECS: i64 = 300;
const PREFIX: &str = "whsec_";

/// A `whsec_<base64>` secret, decoded.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn parse(s: &str) -> Result<Secret, String> {
        let b64 = s
            .strip_prefix(PREFIX)
            .ok_or("the secret must start with whsec_")?;
        let key = STANDARD
            .decode(b64)
            .map_err(|e| format!("the secret is not base64: {e}"))?;
        if !(24..=64).contains(&key.len()) {
            return Err("the secret's key must be 24 to 64 bytes".into());
        }
        Ok(Secret(key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value for one delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Checks the three headers against `body` at `now` (Unix seconds).
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), &'static str> {
        let id = id.filter(|i| !i.is_empty() && i.len() <= 255 && !i.contains('.'));
        let id = id.ok_or("missing or malformed webhook-id")?;
        let raw = timestamp.ok_or("missing webhook-timestamp")?;
        let ts: i64 = raw.parse().map_err(|_| "malformed webhook-timestamp")?;
        if ts.to_string() != raw {
            return Err("malformed webhook-timestamp");
        }
        if (now - ts).abs() > TOLERANCE_SECS {
            return Err("webhook-timestamp out of tolerance");
        }
        let signature = signature.ok_or("missing webhook-signature")?;
        let valid = signature
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .any(|tag| self.mac(id, ts, body).verify_slice(&tag).is_ok());
        if valid {
            Ok(())
        } else {
            Err("no valid v1 signature")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification.
        let body = br#"{"test": 2432232314}"#;
        let sig = secret().sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verifies_and_refuses() {
        let s = secret();
        let body = b"{}";
        let sig = s.sign("msg_1", 1000, body);
        assert!(
            s.verify(Some("msg_1"), Some("1000"), Some(&sig), body, 1100)
                .is_ok()
        );
        let other = format!("v1,bm9wZQ== {sig}");
        assert!(
            s.verify(Some("msg_1"), Some("1000"), Some(&other), body, 1000)
                .is_ok()
        );
        assert!(
            s.verify(Some("msg_1"), Some("1000"), Some(&sig), b"{ }", 1000)
                .is_err()
        );
        assert!(
            s.verify(Some("msg_2"), Some("1000"), Some(&sig), body, 1000)
                .is_err()
        );
        assert!(
            s.verify(Some("msg_1"), Some("1000"), Some(&sig), body, 1301)
                .is_err()
        );
        assert!(
            s.verify(Some("msg_1"), Some("01000"), Some(&sig), body, 1000)
                .is_err()
        );
        assert!(
            s.verify(None, Some("1000"), Some(&sig), body, 1000)
                .is_err()
        );
        assert!(
            s.verify(Some("msg_1"), Some("1000"), None, body, 1000)
                .is_err()
        );
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(Secret::parse("whsec_!!").is_err());
        assert!(Secret::parse("whsec_YWJj").is_err(), "3 bytes is too short");
    }
}
