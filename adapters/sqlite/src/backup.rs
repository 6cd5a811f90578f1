//! Online backups: a consistent copy of the database while the service runs.
//!
//! `VACUUM INTO` reads the database inside one read transaction, so the copy is the state of a
//! single commit (WAL readers never block the writer, and the writer never blocks them), and it
//! writes the copy compacted, without the free pages retention leaves behind. The copy is a
//! complete database of its own: no WAL beside it, the same schema version, ready for
//! `--database`. It holds customers' orders, so it is created owner-only, and an existing file is
//! never overwritten.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database at {0}")]
    NoDatabase(PathBuf),
    #[error("{0} already exists: a backup never overwrites a file")]
    TargetExists(PathBuf),
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("backup of {path} failed: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    pub bytes: u64,
    pub orders: u64,
}

/// Copies the database at `database` into the new file `to`.
pub fn backup_to(database: &Path, to: &Path) -> Result<BackupReport, BackupError> {
    if !database.is_file() {
        return Err(BackupError::NoDatabase(database.to_owned()));
    }
    create_owner_only(to)?;
    let sqlite = |source| BackupError::Sqlite {
        path: database.to_owned(),
        source,
    };
    let copied = (|| {
        let conn = Connection::open_with_flags(
            database,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let target = to
            .to_str()
            .ok_or(rusqlite::Error::InvalidPath(to.to_owned()))?;
        conn.execute("VACUUM INTO ?1", [target])?;
        let copy = Connection::open_with_flags(to, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        copy.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get::<_, i64>(0))
    })();
    match copied {
        Ok(orders) => Ok(BackupReport {
            bytes: std::fs::metadata(to).map(|m| m.len()).unwrap_or(0),
            orders: orders as u64,
        }),
        Err(e) => {
            // Never leave a half-written copy that looks like a backup.
            let _ = std::fs::remove_file(to);
            Err(sqlite(e))
        }
    }
}

/// An empty file readable by its owner only: `VACUUM INTO` writes into an empty file, and
/// `create_new` refuses one that exists.
fn create_owner_only(to: &Path) -> Result<(), BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(to) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(BackupError::TargetExists(to.to_owned()))
        }
        Err(source) => Err(BackupError::Create {
            path: to.to_owned(),
            source,
        }),
    }
}
