//! Read connections. WAL lets readers run beside the writer without blocking it, so reads
//! use their own connections from a small pool, never the writer thread: a burst of GETs
//! cannot delay a commit. Scans and aggregates run on the blocking thread pool; bounded key
//! lookups run on the calling thread (`read_now`): the idempotency probe in front of every
//! keyed POST, GET of one order and a page of a customer's list (at most 100 orders, one
//! statement, each row found by key). For those the hand-off to another thread (a futex wake
//! and a context switch each way) cost more than the query.
//!
//! The pool is bounded: at most `max` connections exist, each with a page cache of a set size,
//! so the memory reads hold is fixed by configuration, not by the load. A read beyond the
//! bound waits for a connection; on two cores a few readers already keep both busy, and more
//! connections only meant more caches filled with the same pages. Each connection also maps
//! the database file (`mmap_size`): a page no cache holds is then read from the kernel's page
//! cache in place, instead of by a `pread` that copies it into the connection's cache.

use super::{open_connection, sqlite_err};
use orders_domain::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub(crate) struct Readers {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
    /// One permit per connection that may exist.
    slots: Arc<Semaphore>,
    cache_kib: u32,
    mmap_bytes: u64,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, max: usize, cache_kib: u32, mmap_bytes: u64) -> Self {
        Self {
            path: Arc::new(path),
            idle: Arc::new(Mutex::new(Vec::new())),
            slots: Arc::new(Semaphore::new(max.max(1))),
            cache_kib,
            mmap_bytes,
        }
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self.slots.clone().acquire_owned().await.map_err(closed)?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let out = pool.with_connection(f);
            drop(permit);
            out
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    /// Runs `f` on the calling thread. For bounded key lookups only (microseconds on hot
    /// pages): handing those to the blocking pool cost more than the lookup itself.
    pub(crate) async fn read_now<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _permit = self.slots.acquire().await.map_err(closed)?;
        self.with_connection(f)
    }

    /// Holding a permit: an idle connection, or a new one within the bound.
    fn with_connection<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take()?;
        let out = f(&conn);
        self.idle.lock().expect("reader pool").push(conn);
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
        conn.execute_batch(&format!(
            "PRAGMA cache_size = -{}; PRAGMA mmap_size = {};",
            self.cache_kib, self.mmap_bytes
        ))
        .map_err(sqlite_err)?;
        Ok(conn)
    }
}

fn closed(_: tokio::sync::AcquireError) -> StoreError {
    StoreError::Backend("the reader pool is closed".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pool(max: usize, cache_kib: u32) -> (tempfile::TempDir, Readers) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        (dir, Readers::new(path, max, cache_kib, 0))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_connections_are_in_use_than_the_bound() {
        let (_dir, readers) = pool(2, 512);
        let busy = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let reads = (0..12).map(|_| {
            let (readers, busy, peak) = (readers.clone(), busy.clone(), peak.clone());
            tokio::spawn(async move {
                readers
                    .read(move |_| {
                        let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        busy.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            })
        });
        for r in reads.collect::<Vec<_>>() {
            r.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert!(readers.idle.lock().unwrap().len() <= 2);
    }

    #[tokio::test]
    async fn each_connection_has_the_configured_page_cache() {
        let (_dir, readers) = pool(3, 768);
        let size: i64 = readers
            .read_now(|c| {
                c.query_row("PRAGMA cache_size", [], |r| r.get(0))
                    .map_err(sqlite_err)
            })
            .await
            .unwrap();
        assert_eq!(size, -768);
    }
}
