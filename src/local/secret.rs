//! The payment webhook secret of the local stack: the configured one, or one kept beside the
//! database so a local start needs no setting and later starts (and the simulator) keep
//! signing and verifying with the same key.
//!
//! The file `<database>.webhook-secret` holds the `whsec_...` text, owner-only (0600) from
//! the moment it exists: it is created with that mode and never rewritten. Two processes
//! starting at once on one database cannot end up with different secrets: the file is
//! created exclusively, and the loser reads the winner's.

use orders_domain::standard_webhooks::{SecretError, WebhookSecret};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The variable that sets the secret.
pub const WEBHOOK_SECRET_ENV: &str = "ORDERS_PAYMENT_WEBHOOK_SECRET";

/// Where the secret in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    /// Read from the file an earlier start wrote.
    File(PathBuf),
    /// Made now and written to this file.
    Generated(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read the webhook secret file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the webhook secret file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the webhook secret file {path} is not a webhook secret: {source}")]
    Invalid { path: PathBuf, source: SecretError },
    #[error("cannot make a webhook secret: {0}")]
    Generate(SecretError),
}

/// The file beside `database` that keeps its generated secret.
pub fn secret_file(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".webhook-secret");
    PathBuf::from(name)
}

/// `configured`, or the secret of `database`'s file, made and saved if there is none yet.
pub fn resolve(
    configured: Option<&WebhookSecret>,
    database: &Path,
) -> Result<(WebhookSecret, SecretSource), SecretFileError> {
    if let Some(secret) = configured {
        return Ok((secret.clone(), SecretSource::Configured));
    }
    let path = secret_file(database);
    if let Some(secret) = read(&path)? {
        return Ok((secret, SecretSource::File(path)));
    }
    let secret = WebhookSecret::generate().map_err(SecretFileError::Generate)?;
    match create(&path, &secret) {
        Ok(()) => Ok((secret, SecretSource::Generated(path))),
        // Another start made it first: theirs is the one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read(&path)? {
            Some(secret) => Ok((secret, SecretSource::File(path))),
            None => Err(SecretFileError::Read { path, source: e }),
        },
        Err(source) => Err(SecretFileError::Write { path, source }),
    }
}

/// What is printed once, when a secret was generated.
pub fn generated_notice(path: &Path, secret: &WebhookSecret) -> String {
    format!(
        "Generated a payment webhook secret and saved it to {} (owner-only); the payment \
         simulator signs with it and later starts read it again:\n  {secret}\n\
         To use another (a real provider's), set {WEBHOOK_SECRET_ENV}=whsec_...",
        path.display()
    )
}

fn read(path: &Path) -> Result<Option<WebhookSecret>, SecretFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => WebhookSecret::parse(text.trim())
            .map(Some)
            .map_err(|source| SecretFileError::Invalid {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretFileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn create(path: &Path, secret: &WebhookSecret) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_read_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub").join("orders.db");
        let (first, source) = resolve(None, &db).unwrap();
        let path = dir.path().join("sub").join("orders.db.webhook-secret");
        assert_eq!(source, SecretSource::Generated(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, source) = resolve(None, &db).unwrap();
        assert_eq!(source, SecretSource::File(path.clone()));
        assert_eq!(again.to_string(), first.to_string());
        let configured = WebhookSecret::generate().unwrap();
        let (used, source) = resolve(Some(&configured), &db).unwrap();
        assert_eq!(source, SecretSource::Configured);
        assert_eq!(used.to_string(), configured.to_string());
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("orders.db");
        std::fs::write(secret_file(&db), "not a secret").unwrap();
        assert!(matches!(
            resolve(None, &db),
            Err(SecretFileError::Invalid { .. })
        ));
    }
}
