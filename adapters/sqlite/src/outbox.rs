//! The outbox table as the local relay's queue: `seq` gives commit order, `published_at`
//! marks what has a saga, `dead_at` parks what never can.

use super::{SqliteStore, all, exec, sqlite_err};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::time::format_millis as format_ts;
use orders_processor::relay::{OutboxError, OutboxSource, PendingEvent};
use rusqlite::params;

fn outbox_err(e: orders_domain::store::StoreError) -> OutboxError {
    OutboxError(e.to_string())
}

/// An event the relay parked: kept with its reason, visible to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    pub seq: i64,
    pub event_id: String,
    pub order_id: String,
    pub reason: String,
    pub parked_at: String,
}

impl SqliteStore {
    /// Counts a failed attempt of event `seq` with its error; with `dead_at`, also parks it.
    async fn failed(
        &self,
        seq: i64,
        error: &str,
        dead_at: Option<String>,
    ) -> Result<(), OutboxError> {
        let error = error.to_owned();
        self.write_background(move |conn| {
            exec(
                conn,
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, dead_at = COALESCE(?3, dead_at)
                 WHERE seq = ?1",
                params![seq, error, dead_at],
            )
            .map(|_| ())
            .map_err(sqlite_err)
        })
        .await
        .map_err(outbox_err)
    }

    pub async fn parked_events(
        &self,
    ) -> Result<Vec<ParkedEvent>, orders_domain::store::StoreError> {
        const SQL: &str = "SELECT seq, event_id, order_id, COALESCE(last_error, ''), dead_at
                           FROM outbox WHERE dead_at IS NOT NULL ORDER BY seq";
        let parked = |r: &rusqlite::Row<'_>| {
            Ok(ParkedEvent {
                seq: r.get(0)?,
                event_id: r.get(1)?,
                order_id: r.get(2)?,
                reason: r.get(3)?,
                parked_at: r.get(4)?,
            })
        };
        self.read(move |conn| all(conn, SQL, [], parked).map_err(sqlite_err))
            .await
    }
}

#[async_trait]
impl OutboxSource for SqliteStore {
    /// The oldest pending signals first, then the oldest pending rows of any kind, `limit` in
    /// all: a signal is never stuck behind a backlog of starts (schema V6). Per order nothing
    /// is reordered that matters: a signal exists only once its saga runs, except a
    /// cancellation, which finds no execution if it overtakes the start (stale, done) and is
    /// seen by the saga's first step from the order row.
    async fn pending(&self, limit: usize) -> Result<Vec<PendingEvent>, OutboxError> {
        const SIGNALS: &str = "SELECT seq, payload, attempts FROM outbox
                               WHERE published_at IS NULL AND dead_at IS NULL AND signal = 1
                               ORDER BY seq LIMIT ?1";
        const ALL: &str = "SELECT seq, payload, attempts FROM outbox
                           WHERE published_at IS NULL AND dead_at IS NULL ORDER BY seq LIMIT ?1";
        let pending = |r: &rusqlite::Row<'_>| {
            let (seq, payload, attempts) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(PendingEvent {
                seq,
                payload,
                attempts,
            })
        };
        self.read(move |conn| {
            let mut batch = all(conn, SIGNALS, [limit as i64], pending).map_err(sqlite_err)?;
            if batch.len() < limit {
                let taken: std::collections::HashSet<i64> = batch.iter().map(|e| e.seq).collect();
                let rest = all(conn, ALL, [limit as i64], pending).map_err(sqlite_err)?;
                let room = limit - batch.len();
                batch.extend(
                    rest.into_iter()
                        .filter(|e| !taken.contains(&e.seq))
                        .take(room),
                );
            }
            Ok(batch)
        })
        .await
        .map_err(outbox_err)
    }

    async fn mark_published(&self, seqs: &[i64], now: DateTime<Utc>) -> Result<(), OutboxError> {
        let seqs = seqs.to_vec();
        self.write_background(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "UPDATE outbox SET published_at = ?2 WHERE seq = ?1 AND published_at IS NULL",
                )
                .map_err(sqlite_err)?;
            let now = format_ts(now);
            for seq in seqs {
                st.execute(params![seq, now]).map_err(sqlite_err)?;
            }
            Ok(())
        })
        .await
        .map_err(outbox_err)
    }

    async fn record_failure(&self, seq: i64, error: &str) -> Result<(), OutboxError> {
        self.failed(seq, error, None).await
    }

    async fn park(&self, seq: i64, reason: &str, now: DateTime<Utc>) -> Result<(), OutboxError> {
        self.failed(seq, reason, Some(format_ts(now))).await
    }
}
