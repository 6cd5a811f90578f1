//! The token signing keys: a JWKS read from a file or fetched over http(s), decoded once and
//! kept, so a request costs one map lookup and one signature check.
//!
//! Keys rotate: an issuer publishes a new key before signing with it. A token naming a key
//! this set does not hold makes it read the source again, at most once per floor ([`REFRESH_FLOOR`])
//! whatever the traffic, so a flood of tokens with made-up key ids cannot turn into a flood of
//! fetches; concurrent misses wait for one fetch. Only RS256 and ES256 (P-256) keys are kept.

use super::AuthError;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The shortest time between two reads of the source.
pub const REFRESH_FLOOR: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

impl JwksSource {
    /// An `http://` or `https://` URL, else a file path.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("https://") || s.starts_with("http://") {
            JwksSource::Url(s.to_owned())
        } else {
            JwksSource::File(PathBuf::from(s))
        }
    }
}

pub(crate) struct Key {
    pub decoding: DecodingKey,
    pub alg: Algorithm,
}

type Keys = Arc<HashMap<String, Arc<Key>>>;

pub(crate) struct KeySet {
    source: JwksSource,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    floor: Duration,
    /// When the source was last read; held while reading, so misses queue behind one fetch.
    fetched: tokio::sync::Mutex<Instant>,
}

impl KeySet {
    /// Reads the source once; an unreadable source or a set without a usable key is an error.
    pub async fn load(source: JwksSource, floor: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let set = KeySet {
            source,
            http,
            keys: RwLock::new(Arc::default()),
            floor,
            fetched: tokio::sync::Mutex::new(Instant::now()),
        };
        let keys = set.read().await?;
        if keys.is_empty() {
            return Err("the key set holds no RS256 or ES256 key with a kid".into());
        }
        *set.keys.write().expect("keys lock") = Arc::new(keys);
        Ok(set)
    }

    fn lookup(&self, kid: &str) -> Option<Arc<Key>> {
        self.keys.read().expect("keys lock").get(kid).cloned()
    }

    /// The key named `kid`, reading the source again (within the floor) if it is unknown.
    pub async fn get(&self, kid: &str) -> Result<Arc<Key>, AuthError> {
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        let mut fetched = self.fetched.lock().await;
        // Another request may have refreshed the set while this one waited.
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        if fetched.elapsed() >= self.floor {
            *fetched = Instant::now();
            match self.read().await {
                Ok(keys) => *self.keys.write().expect("keys lock") = Arc::new(keys),
                Err(e) => {
                    tracing::warn!(error = %e, "signing keys: refresh failed, keeping the keys held")
                }
            }
        }
        self.lookup(kid)
            .ok_or_else(|| AuthError::UnknownKey(kid.chars().take(64).collect()))
    }

    async fn read(&self) -> Result<HashMap<String, Arc<Key>>, String> {
        let body = match &self.source {
            JwksSource::File(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
            }
            JwksSource::Url(url) => self
                .http
                .get(url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| format!("{url}: {e}"))?
                .text()
                .await
                .map_err(|e| format!("{url}: {e}"))?,
        };
        let set: JwkSet = serde_json::from_str(&body).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                    if ec.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(decoding) => {
                    keys.insert(kid, Arc::new(Key { decoding, alg }));
                }
                Err(e) => tracing::warn!(kid = %kid, error = %e, "signing keys: skipping a key"),
            }
        }
        tracing::info!(keys = keys.len(), "signing keys loaded");
        Ok(keys)
    }
}
