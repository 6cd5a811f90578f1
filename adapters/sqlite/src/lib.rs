//! The embedded adapters: one SQLite file in WAL mode behind every port of the local stack.
//!
//! # Layout
//!
//! - `orders.rs`: the API's [`OrderStore`](orders_domain::store::OrderStore) (create with
//!   idempotency and outbox event in one transaction, inventory, vouchers); `order_reads.rs`:
//!   the order as GET shows it; `lifecycle.rs`: the payment webhook and the cancellation,
//!   each one transaction with its outbox signal.
//! - `steps.rs`: the steps' [`StepStore`](orders_workflow::steps::StepStore), on the writer's
//!   open transaction; `step_status.rs`: its status changes (with the cancel guard) and the
//!   shipment; `step_jobs.rs`: how a whole step runs as one writer job.
//! - `executions.rs`: the executor's
//!   [`ExecutionStore`](orders_workflow::executor::ExecutionStore) (snapshots and history).
//! - `events.rs`: the public domain events, written with their change and fanned out into
//!   deliveries in the same transaction.
//! - `outbox.rs`: the relay's [`OutboxSource`](orders_processor::relay::OutboxSource).
//! - `admin_reads.rs`: the operations console's
//!   [`OperatorStore`](orders_domain::store::OperatorStore) (every order, counts by status,
//!   parked events and their retry).
//! - `subscriptions.rs`: the [`SubscriptionStore`](orders_domain::subscriptions::SubscriptionStore)
//!   of the subscription API and the delivery dispatcher.
//! - `queue.rs`: the [`TaskQueue`](orders_workflow::executor::TaskQueue) the executor sends
//!   task-token messages on, and its consumer side (receive, delete, visibility).
//! - `metrics.rs`: the writer's metric names and the outbox backlog read at scrape time.
//! - `retention.rs`: what is deleted once older than the retention period, in small jobs.
//! - `writer.rs`, `readers.rs`, `schema.rs`: the one writer thread (group commit), the pool of
//!   read connections, the migrations and the catalogue seed; `tests.rs`: the settings a file
//!   is opened with.
//!
//! Writes go through the writer (one thread, group commit, an answer only after COMMIT);
//! reads use a pool of read-only connections. `synchronous = FULL` makes every committed
//! group survive power loss, not only a process crash: an answered 201 is on disk. The store
//! also signals the local outbox relay after each commit that added an event, and a queue's
//! consumers after each commit that added a message, so they wake on commit instead of
//! polling.
//!
//! What a commit costs is mostly whole pages written to the WAL and, at each checkpoint,
//! copied into the database: hence 2 KiB pages for a new file and a checkpoint every few
//! thousand WAL pages ([`SqliteOptions`]), with the WAL file cut back to twice that interval
//! whenever it outgrew it.

mod admin_reads;
mod backup;
mod events;
mod executions;
mod lifecycle;
pub mod metrics;
mod order_reads;
mod orders;
mod outbox;
mod queue;
mod readers;
mod retention;
mod schema;
mod space;
mod step_jobs;
mod step_status;
mod steps;
mod subscriptions;
mod writer;

pub use backup::{BackupError, BackupReport, backup_to};
pub use outbox::ParkedEvent;
pub use queue::{MAX_BODY_BYTES, QueueDepth, QueueError, Receipt, ReceivedMessage};
pub use retention::{Purged, Retention};
pub use space::WriteRefusals;
pub use step_jobs::StepInOneJob;

use orders_domain::store::StoreError;
use orders_domain::time::format_millis as format_ts;
use readers::Readers;
use rusqlite::{Connection, OpenFlags};
use space::Space;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use writer::{Priority, TxConn, Writer};

/// How long a write waits for another process's write lock before answering 503.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The page size of a new database (SQLite's default is 4 KiB; an existing file keeps its
/// own). Every commit writes each page it changed to the WAL, and much of what one order
/// changes is a single entry on a page of its own: the customer's place in
/// `orders_by_customer`, its idempotency key, its execution's snapshot. Half the page size
/// writes about half the bytes for those. Measured, it pays only together with the rarer
/// checkpoints below (docs/BENCHMARKS.md, "Settings that matter").
const PAGE_SIZE: u32 = 2048;

/// The most a connection maps: SQLite's build caps `mmap_size` at 0x7fff0000 bytes
/// (`SQLITE_MAX_MMAP_SIZE`), just under 2 GiB; this is the whole MiB below it.
pub const MAX_MMAP_BYTES: u64 = 2_047 << 20;

/// Settings of the embedded store that trade one measure against another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// WAL pages committed between automatic checkpoints (SQLite's own default is 1,000).
    /// The pages every group rewrites (the tails of the tables, the inner pages above them)
    /// are copied into the database once per checkpoint however often they were committed,
    /// so rarer checkpoints copy and fsync less per order. But the checkpoint runs on the
    /// writer thread, after the commit that crossed the mark, and the groups behind it wait
    /// for it: more pages, a longer pause. docs/BENCHMARKS.md has the measured trade. The WAL
    /// file is capped at twice this many pages (`limit_wal`).
    pub wal_autocheckpoint: u32,
    /// The most bytes the database may hold (`None`: as much as the disk takes), applied as
    /// `PRAGMA max_page_count` on the writer's connection. At the limit, writes that need
    /// more pages are refused as on a full disk (503, /health failing) while reads go on, so
    /// the disk keeps room for the WAL and for everything else on it. A database already
    /// larger keeps its size and takes only writes that fit into it. The WAL file is not
    /// counted.
    pub max_db_bytes: Option<u64>,
    /// The writer connection's page cache, in KiB (see `open_with`).
    pub writer_cache_kib: u32,
    /// Each read connection's page cache, in KiB. The memory the store holds for pages is at
    /// most `writer_cache_kib + max_readers * reader_cache_kib`, whatever the database's size.
    pub reader_cache_kib: u32,
    /// Read connections open at once (see `readers.rs`): reads beyond it wait for one.
    pub max_readers: usize,
    /// Bytes of the database file each read connection maps into memory (`PRAGMA
    /// mmap_size`; 0: none). A page read from the mapping is the kernel's page cache itself:
    /// no `pread` and no copy into the connection's cache, which is where reads of orders no
    /// cache holds spent most of their time. The mapped pages are shared and reclaimable, not
    /// the process's own memory, but count in its RSS while mapped. Writes never go through
    /// it (the writer maps nothing). At most [`MAX_MMAP_BYTES`]; a larger database has its
    /// first part mapped and the rest read as without.
    pub reader_mmap_bytes: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            wal_autocheckpoint: 3_000,
            max_db_bytes: None,
            writer_cache_kib: 8_192,
            reader_cache_kib: 2_048,
            max_readers: 8,
            reader_mmap_bytes: MAX_MMAP_BYTES,
        }
    }
}

pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Readers,
    outbox_signal: Arc<Notify>,
    events_signal: Arc<Notify>,
    queue_signals: queue::QueueSignals,
    space: Arc<Space>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot prepare the database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot start the writer thread: {0}")]
    Thread(std::io::Error),
}

impl SqliteStore {
    /// Opens (creating if needed) the database, applies migrations and seeds the catalogue on
    /// first start.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with other settings.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self, OpenError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let open_err = |source| OpenError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = open_connection(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        // Before anything is written: only an empty database takes a page size.
        conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE};"))
            .map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(open_err(rusqlite::Error::InvalidParameterName(format!(
                "journal_mode WAL refused (got {mode})"
            ))));
        }
        schema::migrate(&conn, &format_ts(chrono::Utc::now())).map_err(|source| {
            OpenError::Migrate {
                path: path.to_owned(),
                source,
            }
        })?;
        // The writer's own page cache (8 MiB by default) keeps the hot pages (interior pages,
        // inventory, the tails where new orders are appended) in memory instead of re-reading
        // them from the WAL on every job. Not larger: SQLite scans the whole cache's hash table
        // at the end of every transaction that grew the file, which at 64 MiB cost more than it
        // saved.
        conn.execute_batch(&format!(
            "PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = {};",
            options.writer_cache_kib, options.wal_autocheckpoint
        ))
        .map_err(open_err)?;
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(open_err)?;
        limit_wal(&conn, page, options.wal_autocheckpoint).map_err(open_err)?;
        if let Some(bytes) = options.max_db_bytes {
            set_max_db_bytes(&conn, page, bytes).map_err(open_err)?;
        }
        let space = Arc::new(Space::default());
        let writer = Writer::spawn(conn, space.clone()).map_err(OpenError::Thread)?;
        Ok(Self {
            path: path.to_owned(),
            writer,
            readers: Readers::new(
                path.to_owned(),
                options.max_readers,
                options.reader_cache_kib,
                options.reader_mmap_bytes,
            ),
            outbox_signal: Arc::new(Notify::new()),
            events_signal: Arc::new(Notify::new()),
            queue_signals: queue::QueueSignals::default(),
            space,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer has seen of writes refused for want of space (see `space.rs`).
    pub fn write_refusals(&self) -> WriteRefusals {
        self.space.stats()
    }

    /// Runs `write` until it is not refused for want of space, waiting between attempts (see
    /// [`space::Backoff`]) and waking early when an episode ends. For the background writers
    /// that nobody waits on and that would otherwise fail, log and try again at once; each
    /// attempt must be safe to repeat (a refused one changed nothing).
    pub(crate) async fn while_full<T, Fut>(
        &self,
        mut write: impl FnMut() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut backoff = space::Backoff::new();
        loop {
            match write().await {
                Err(StoreError::StorageFull) => self.space.returned(backoff.next()).await,
                out => return out,
            }
        }
    }

    /// Notified after every commit that added an outbox event.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    /// Notified after every commit that may have added a public event (and so deliveries).
    pub fn events_signal(&self) -> Arc<Notify> {
        self.events_signal.clone()
    }

    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// [`SqliteStore::write`] for the relay and the saga: client writes go first.
    pub(crate) async fn write_background<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer
            .write_tx(Priority::Background, move |tx: &TxConn| tx.with(f))
            .await
    }

    /// A write job that needs an owned handle on the transaction (see [`TxConn`]).
    pub(crate) async fn write_tx<T, F>(&self, priority: Priority, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&TxConn) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write_tx(priority, f).await
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.readers.read(f).await
    }
}

/// Caps the WAL file left on disk (`PRAGMA journal_size_limit`) at twice what one checkpoint
/// interval writes. SQLite reuses the WAL from its start once a checkpoint has copied all of it,
/// but never shrinks the file by itself: whatever outgrew the checkpoints (a burst while readers
/// held old snapshots, a migration's one big transaction) stays allocated until the last
/// connection closes. With the limit, the first commit after the log restarts truncates it.
/// Twice the interval, so a log that merely fills to the mark is never cut and grown again.
/// `page` is the file's page size.
fn limit_wal(conn: &Connection, page: i64, autocheckpoint_pages: u32) -> rusqlite::Result<()> {
    let bytes = wal_limit_bytes(page, autocheckpoint_pages);
    conn.query_row(&format!("PRAGMA journal_size_limit = {bytes}"), [], |_| {
        Ok(())
    })
}

/// Twice the WAL of one checkpoint interval: frames of `page` bytes plus a 24-byte header
/// each, after the 32-byte file header.
fn wal_limit_bytes(page: i64, autocheckpoint_pages: u32) -> i64 {
    32 + 2 * i64::from(autocheckpoint_pages) * (page + 24)
}

/// Caps the writer's connection at `bytes` (whole pages of the database's page size `page`,
/// at least one). SQLite never sets the cap below the pages the file already has.
fn set_max_db_bytes(conn: &Connection, page: i64, bytes: u64) -> rusqlite::Result<()> {
    let pages = (bytes / page.max(1).unsigned_abs()).clamp(1, i64::MAX as u64);
    conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
}

pub(crate) fn open_connection(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    // Without the query planner stability guarantee, a statement that joins on a column its
    // WHERE binds (`... JOIN payments p ON p.order_id = o.order_id WHERE o.order_id = ?1`) is
    // compiled again on every run once the value changes: SQLite's constant propagation marks
    // the value as one the plan may depend on. That parse cost more than the query did. Plans
    // here never depend on values: every statement is a key lookup or a keyed range.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Runs a statement from the connection's statement cache: these run for every order, and
/// `Connection::execute` would parse the SQL again each time, on the writer thread.
pub(crate) fn exec(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `Connection::query_row` from the statement cache (see [`exec`]).
pub(crate) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// Every row of a query from the statement cache (see [`exec`]), each mapped by `f`.
pub(crate) fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    conn.prepare_cached(sql)?.query_map(params, f)?.collect()
}

/// Maps SQLite errors onto the store's: lock contention is `Busy` (503, retry later), no room
/// for a write is `StorageFull` (503, retry later; see `space.rs`), everything else is a
/// backend failure whose detail goes to the log, not to the client.
///
/// A full disk reaches SQLite as ENOSPC, which it reports as `SQLITE_FULL`; a write or fsync
/// that fails otherwise (`SQLITE_IOERR_WRITE`, `_FSYNC`: ENOSPC on some file systems, or EIO,
/// which SQLite does not tell apart) is storage refusing writes all the same: the transaction
/// is rolled back, and the answer that fits is "retry later", with /health failing.
pub(crate) fn sqlite_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match (f.code, f.extended_code) {
            (rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked, _) => {
                StoreError::Busy
            }
            (rusqlite::ErrorCode::DiskFull, _)
            | (_, ffi::SQLITE_IOERR_WRITE | ffi::SQLITE_IOERR_FSYNC) => StoreError::StorageFull,
            _ => StoreError::Backend(e.to_string()),
        },
        _ => StoreError::Backend(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
