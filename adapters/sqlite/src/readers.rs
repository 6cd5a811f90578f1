//! Read connections. WAL lets readers run beside the writer without blocking it, so reads
//! use their own connections from a small pool, never the writer thread: a burst of GETs
//! cannot delay a commit. Queries run on the blocking thread pool; the one exception is the
//! idempotency probe in front of every keyed POST (`read_now`), a single lookup in an index
//! whose recent pages are hot, cheaper than the hand-off to another thread.

use super::{open_connection, sqlite_err};
use orders_domain::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Idle connections kept; more are opened under load and closed when returned to a full pool.
const KEEP_IDLE: usize = 8;

#[derive(Clone)]
pub(crate) struct Readers {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path: Arc::new(path),
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || pool.read_now(f))
            .await
            .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    /// Runs `f` on the calling thread. For single index probes only (a few microseconds on
    /// hot pages): handing those to the blocking pool cost more than the probe itself.
    pub(crate) fn read_now<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take()?;
        let out = f(&conn);
        self.give_back(conn);
        out
    }

    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.idle.lock().expect("reader pool").pop() {
            return Ok(c);
        }
        let conn = open_connection(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_err)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().expect("reader pool");
        if idle.len() < KEEP_IDLE {
            idle.push(conn);
        }
    }
}
