//! A signing key and tokens for local use (`orders dev-keys`, `orders dev-token`) and tests:
//! an ES256 (P-256) key pair made with aws-lc-rs, the private key as a PKCS#8 PEM file
//! (mode 0600), the public key as a JWKS the service reads with `ORDERS_JWKS`. The key id is
//! derived from the public key, so a token names the key that signed it without any state.
//! Not for production: there the issuer (Cognito, or any OIDC provider) holds the keys.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const DEV_ISSUER: &str = "orders-dev";
pub const DEV_AUDIENCE: &str = "orders";
pub const PRIVATE_KEY_FILE: &str = "private.pem";
pub const JWKS_FILE: &str = "jwks.json";

pub struct DevKeys {
    pkcs8: Vec<u8>,
    /// The uncompressed point: 0x04, x (32 bytes), y (32 bytes).
    public: Vec<u8>,
}

impl DevKeys {
    pub fn generate() -> Result<Self, String> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "could not generate a P-256 key".to_owned())?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| "could not encode the key".to_owned())?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|e| format!("not a P-256 PKCS#8 private key: {e}"))?;
        Ok(DevKeys {
            pkcs8: der.to_vec(),
            public: pair.public_key().as_ref().to_vec(),
        })
    }

    /// Reads a `private.pem` this module wrote.
    pub fn read(path: &Path) -> Result<Self, String> {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("{}: not a PEM file: {e}", path.display()))?;
        Self::from_pkcs8(&der)
    }

    pub fn kid(&self) -> String {
        let digest = Sha256::digest(&self.public);
        format!("dev-{}", URL_SAFE_NO_PAD.encode(&digest[..12]))
    }

    pub fn private_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.pkcs8);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    pub fn jwks(&self) -> Value {
        let (x, y) = self.public[1..].split_at(32);
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid(),
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]})
    }

    /// Writes `private.pem` (owner-only) and `jwks.json` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
        let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
        let private = dir.join(PRIVATE_KEY_FILE);
        let jwks = dir.join(JWKS_FILE);
        write_private(&private, self.private_pem().as_bytes()).map_err(|e| err(&private, e))?;
        let set = serde_json::to_string_pretty(&self.jwks()).expect("serializable");
        std::fs::write(&jwks, set + "\n").map_err(|e| err(&jwks, e))?;
        Ok((private, jwks))
    }

    /// Signs `claims` as they are (tests use this for tokens that must be refused).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid());
        let key = EncodingKey::from_ec_der(&self.pkcs8);
        encode(&header, claims, &key).expect("an ES256 key signs")
    }

    /// A token for `sub` valid for `ttl_secs`, with the admin scope when `admin_scope` is set.
    pub fn token(
        &self,
        sub: &str,
        issuer: &str,
        audience: &str,
        admin_scope: Option<&str>,
        ttl_secs: u64,
    ) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = json!({
            "sub": sub, "iss": issuer, "aud": audience,
            "iat": now, "nbf": now, "exp": now + ttl_secs,
        });
        if let Some(scope) = admin_scope {
            claims["scope"] = json!(scope);
        }
        self.sign(&claims)
    }
}

/// `orders dev-keys`: writes the pair and prints how to run the service with it.
pub fn dev_keys(dir: &Path) -> Result<(), String> {
    let keys = DevKeys::generate()?;
    let (private, jwks) = keys.write(dir)?;
    println!(
        "wrote {} (keep it private) and {}",
        private.display(),
        jwks.display()
    );
    println!("serve with identity on:");
    println!(
        "  ORDERS_AUTH=jwt ORDERS_JWKS={} ORDERS_JWT_ISSUER={DEV_ISSUER} ORDERS_JWT_AUDIENCE={DEV_AUDIENCE} cargo run",
        jwks.display()
    );
    println!("a token: cargo run -- dev-token --sub customer-123 [--admin]");
    Ok(())
}

/// `orders dev-token`: prints one token signed with the key `dev-keys` wrote.
pub fn dev_token(
    t: &crate::config::DevToken,
    identity: &super::IdentityArgs,
) -> Result<(), String> {
    let keys = DevKeys::read(&t.dir.join(PRIVATE_KEY_FILE))
        .map_err(|e| format!("{e} (run `orders dev-keys` first)"))?;
    let scope = t.admin.then_some(identity.admin_scope.as_str());
    println!(
        "{}",
        keys.token(&t.sub, &t.issuer, &t.audience, scope, t.ttl_secs)
    );
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_with_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DevKeys::generate().unwrap();
        let (private, jwks) = keys.write(dir.path()).unwrap();
        let again = DevKeys::read(&private).unwrap();
        assert_eq!(again.kid(), keys.kid());
        let set: Value = serde_json::from_str(&std::fs::read_to_string(jwks).unwrap()).unwrap();
        assert_eq!(set["keys"][0]["kid"], keys.kid());
        assert_ne!(DevKeys::generate().unwrap().kid(), keys.kid());
    }
}
