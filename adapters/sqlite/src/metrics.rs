//! What the embedded store tells the metrics exposition: the writer's queue and group sizes,
//! recorded by the writer thread through the `metrics` facade (no-ops unless the process
//! installed a recorder), and the outbox backlog, read when scraped.
//!
//! The backlog is counted, not tracked: the rows are written by this process and by any other
//! on the same file, so only the table knows. The count walks the partial index
//! `outbox_pending` (unpublished, unparked rows only), whose size is the backlog itself: a
//! few entries on a healthy relay, and a scrape every few seconds stays cheap even when the
//! relay has fallen far behind.

use super::{SqliteStore, one, sqlite_err};
use orders_domain::store::StoreError;

/// Gauge: jobs waiting for the writer when its last group committed.
pub const WRITER_QUEUE_DEPTH: &str = "orders_writer_queue_depth";
/// Histogram: jobs committed together in one group transaction (one fsync).
pub const WRITER_COMMIT_JOBS: &str = "orders_writer_commit_jobs";

/// Counted from the partial index alone (the test holds the plan to it).
const BACKLOG: &str = "SELECT count(*) FROM outbox WHERE published_at IS NULL AND dead_at IS NULL";

impl SqliteStore {
    /// Outbox rows the relay still has to act on: unpublished and not parked.
    pub async fn outbox_backlog(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            one(conn, BACKLOG, [], |r| r.get::<_, i64>(0))
                .map(i64::unsigned_abs)
                .map_err(sqlite_err)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_processor::relay::OutboxSource;

    #[tokio::test]
    async fn the_backlog_counts_pending_rows_and_neither_published_nor_parked_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("m.db")).unwrap();
        assert_eq!(store.outbox_backlog().await.unwrap(), 0);
        store
            .write(|conn| {
                for (id, order) in [("e1", "o1"), ("e2", "o2"), ("e3", "o3")] {
                    conn.execute(
                        "INSERT INTO outbox (event_id, order_id, payload, created_at)
                         VALUES (?1, ?2, '{}', '2026-01-01T00:00:00.000Z')",
                        [id, order],
                    )
                    .map_err(sqlite_err)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(store.outbox_backlog().await.unwrap(), 3);
        let pending = store.pending(10).await.unwrap();
        let now = chrono::Utc::now();
        store.mark_published(&[pending[0].seq], now).await.unwrap();
        store.park(pending[1].seq, "poison", now).await.unwrap();
        assert_eq!(store.outbox_backlog().await.unwrap(), 1);
        let plan = store
            .read(|conn| {
                let sql = format!("EXPLAIN QUERY PLAN {BACKLOG}");
                super::super::all(conn, &sql, [], |r| r.get::<_, String>(3)).map_err(sqlite_err)
            })
            .await
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("outbox_pending")),
            "{plan:?}"
        );
    }
}
