//! Retention: what the embedded store deletes once it is older than the retention period,
//! and what it keeps for good, so that the file stops growing under a steady load.
//!
//! # What goes, what stays
//!
//! History goes, once older than the cutoff (`now - keep`):
//! - a finished execution (SUCCEEDED or FAILED, by its last change) with its history, and
//!   with it the order's `saga_steps` (the per-step log `GET /orders/{id}` shows as
//!   `history`, a summary of the execution's) and `notifications` (the messages sent, which
//!   only made the notification step idempotent while the execution could still run it);
//! - a processed outbox event (published, and not parked: a parked one waits for an
//!   operator) with its deliveries, once none of them is still owed (PENDING) or finished
//!   within the period: listings and due deliveries join `outbox`, so an event a subscriber
//!   is still owed keeps its row;
//! - an expired idempotency record (expired at `now`, not at the cutoff: it is already
//!   absent at read);
//! - a queue tombstone (`queue.rs`) deleted before the cutoff and sent before the oldest
//!   RUNNING execution started: a token is sent again only by its own execution while it
//!   waits, and every execution that could still be waiting started after the message was
//!   sent, so no Task can send it again (a redrive waits with a new token);
//! - a payment webhook's record (the provider's notice, kept to make a second delivery a
//!   no-op) whose payment is no longer REQUESTED: a late copy of it finds the payment settled
//!   and changes nothing.
//!
//! The business records stay: orders, payments, reservations, vouchers, shipments, the
//! inventory and the subscriptions. An old order still answers `GET /orders/{id}`, with its
//! payment, shipment and voucher, and an empty step history.
//!
//! # How
//!
//! A pass walks each table from its oldest row (row id order, which is insertion order and so
//! time order) in windows of at most [`Retention::batch`] rows, one background writer job
//! per window and a pause between jobs: a client write queued behind the purge waits for one
//! small job, never for the pass. A window ends at the first row written after the cutoff,
//! since nothing after it can be due. A row a window keeps (a running execution, an event
//! still owed, a parked one) is looked at again by the next pass, which starts over from the
//! oldest row; there are few of them. Every decision is made inside the job, on the
//! writer's connection, so no row changes between being judged and being deleted. Freed
//! pages are reused by SQLite for new rows: the file stops growing, without a VACUUM.

use super::{SqliteStore, all, exec, one, sqlite_err};
use chrono::{DateTime, Utc};
use orders_domain::store::StoreError;
use orders_domain::time::{format_millis as format_ts, parse_ts};
use orders_workflow::executor::ExecutionStatus;
use rusqlite::{Connection, params};
use std::time::Duration;

/// What an execution costs a window: its history rows, steps and notification go with it.
const EXECUTION_WEIGHT: usize = 16;

/// How long history is kept, and how a purge paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// History older than this is deleted.
    pub keep: Duration,
    /// Rows of a table one write job looks at; an execution counts for 16, since its
    /// history, steps and notification are deleted with it.
    pub batch: usize,
    /// The pause between two jobs of a pass, which leaves the writer to the others.
    pub pause: Duration,
}

impl Retention {
    /// Keeps `keep`, in jobs of a few hundred rows with a short pause between them.
    pub fn new(keep: Duration) -> Self {
        Retention {
            keep,
            batch: 256,
            pause: Duration::from_millis(2),
        }
    }
}

/// The rows one purge deleted, by table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub executions: u64,
    pub history_rows: u64,
    pub saga_steps: u64,
    pub notifications: u64,
    pub outbox_events: u64,
    pub deliveries: u64,
    pub idempotency: u64,
    pub queue_tombstones: u64,
    pub payment_webhooks: u64,
    /// The writer jobs it took.
    pub jobs: u64,
}

impl Purged {
    /// Rows deleted, all tables together.
    pub fn rows(&self) -> u64 {
        self.executions
            + self.history_rows
            + self.saga_steps
            + self.notifications
            + self.outbox_events
            + self.deliveries
            + self.idempotency
            + self.queue_tombstones
            + self.payment_webhooks
    }

    fn add(&mut self, o: Purged) {
        self.executions += o.executions;
        self.history_rows += o.history_rows;
        self.saga_steps += o.saga_steps;
        self.notifications += o.notifications;
        self.outbox_events += o.outbox_events;
        self.deliveries += o.deliveries;
        self.idempotency += o.idempotency;
        self.queue_tombstones += o.queue_tombstones;
        self.payment_webhooks += o.payment_webhooks;
        self.jobs += o.jobs;
    }
}

/// What one job did: what it deleted, the last row id it judged, and whether rows after it
/// may still be due.
struct Window {
    purged: Purged,
    cursor: i64,
    more: bool,
}

impl Window {
    fn at(cursor: i64) -> Self {
        Window {
            purged: Purged {
                jobs: 1,
                ..Purged::default()
            },
            cursor,
            more: false,
        }
    }

    /// The walk every table's pass makes over `rows` (at most `limit` after `cursor`, oldest
    /// first): `place` gives a row's key and whether it was written at or after the bound,
    /// which ends the pass there; every row before it moves the cursor and is handed to
    /// `visit`, which deletes what may go.
    fn walk<R>(
        cursor: i64,
        limit: i64,
        rows: Vec<R>,
        place: impl Fn(&R) -> (i64, bool),
        mut visit: impl FnMut(R, &mut Purged) -> Result<(), StoreError>,
    ) -> Result<Window, StoreError> {
        let mut w = Window::at(cursor);
        w.more = rows.len() as i64 == limit;
        for row in rows {
            let (key, past) = place(&row);
            if past {
                w.more = false;
                break;
            }
            w.cursor = key;
            visit(row, &mut w.purged)?;
        }
        Ok(w)
    }
}

/// The times a pass compares rows with, as stored (fixed-width RFC 3339 ms, whose string
/// order is time order) and in epoch milliseconds.
#[derive(Debug, Clone)]
struct Cutoff {
    text: String,
    ms: i64,
    now_ms: i64,
}

fn count(n: usize) -> u64 {
    n as u64
}

impl SqliteStore {
    /// One pass of retention at `now`: deletes, in small jobs, everything the module
    /// documentation lists as history that is older than `now - retention.keep`. Stops
    /// between two jobs once `stop` answers true (what is left waits for the next pass).
    pub async fn purge(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
        stop: impl Fn() -> bool + Send + Sync,
    ) -> Result<Purged, StoreError> {
        let keep = chrono::Duration::from_std(retention.keep).unwrap_or(chrono::Duration::MAX);
        let at = now
            .checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let cutoff = Cutoff {
            text: format_ts(at),
            ms: at.timestamp_millis(),
            now_ms: now.timestamp_millis(),
        };
        let rows = retention.batch.max(1);
        let executions = (rows / EXECUTION_WEIGHT).max(1);
        let mut total = Purged::default();
        let kinds: [(usize, Judge); 5] = [
            (executions, executions_window),
            (rows, outbox_window),
            (rows, idempotency_window),
            (rows, tombstones_window),
            (rows, webhooks_window),
        ];
        for (limit, judge) in kinds {
            let mut cursor = 0;
            loop {
                if stop() {
                    return Ok(total);
                }
                let c = cutoff.clone();
                let window = self
                    .write_background(move |conn| judge(conn, cursor, limit as i64, &c))
                    .await?;
                total.add(window.purged);
                if !window.more {
                    break;
                }
                cursor = window.cursor;
                tokio::time::sleep(retention.pause).await;
            }
        }
        Ok(total)
    }
}

/// One job of a pass over one table: the rows after `cursor`, at most `limit`.
type Judge = fn(&Connection, i64, i64, &Cutoff) -> Result<Window, StoreError>;

/// Finished executions, with their history and the order's step log and notifications.
fn executions_window(
    conn: &Connection,
    cursor: i64,
    limit: i64,
    cutoff: &Cutoff,
) -> Result<Window, StoreError> {
    let rows: Vec<(i64, String, String, String, String)> = all(
        conn,
        "SELECT rowid, name, status, started_at, updated_at FROM executions
         WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        params![cursor, limit],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .map_err(sqlite_err)?;
    let place = |r: &(i64, String, String, String, String)| (r.0, r.3 >= cutoff.text);
    Window::walk(
        cursor,
        limit,
        rows,
        place,
        |(rowid, name, status, _, updated), p| {
            let finished = matches!(
                status.parse(),
                Ok(ExecutionStatus::Succeeded | ExecutionStatus::Failed)
            );
            if !finished || updated >= cutoff.text {
                return Ok(());
            }
            let order: Option<String> = one(
                conn,
                "SELECT json_extract(snapshot, '$.input.orderId') FROM executions WHERE rowid = ?1",
                [rowid],
                |r| r.get(0),
            )
            .map_err(sqlite_err)?;
            p.history_rows += count(
                exec(
                    conn,
                    "DELETE FROM execution_history WHERE name = ?1",
                    [&name],
                )
                .map_err(sqlite_err)?,
            );
            p.executions += count(
                exec(conn, "DELETE FROM executions WHERE rowid = ?1", [rowid])
                    .map_err(sqlite_err)?,
            );
            if let Some(order) = order {
                p.saga_steps += count(
                    exec(conn, "DELETE FROM saga_steps WHERE order_id = ?1", [&order])
                        .map_err(sqlite_err)?,
                );
                p.notifications += count(
                    exec(
                        conn,
                        "DELETE FROM notifications WHERE order_id = ?1",
                        [&order],
                    )
                    .map_err(sqlite_err)?,
                );
            }
            Ok(())
        },
    )
}

/// Processed outbox events whose deliveries are all finished before the cutoff, with them.
fn outbox_window(
    conn: &Connection,
    cursor: i64,
    limit: i64,
    cutoff: &Cutoff,
) -> Result<Window, StoreError> {
    let rows: Vec<(i64, String, bool)> = all(
        conn,
        "SELECT seq, created_at,
                published_at IS NOT NULL AND published_at < ?3 AND dead_at IS NULL
                AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = outbox.seq
                                AND (d.state = 'PENDING' OR NOT d.finished_at < ?3))
         FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        params![cursor, limit, cutoff.text],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(sqlite_err)?;
    let place = |r: &(i64, String, bool)| (r.0, r.1 >= cutoff.text);
    Window::walk(cursor, limit, rows, place, |(seq, _, done), p| {
        if done {
            p.deliveries += count(
                exec(conn, "DELETE FROM deliveries WHERE event_seq = ?1", [seq])
                    .map_err(sqlite_err)?,
            );
            p.outbox_events +=
                count(exec(conn, "DELETE FROM outbox WHERE seq = ?1", [seq]).map_err(sqlite_err)?);
        }
        Ok(())
    })
}

/// Idempotency records expired at `now`, found by `idempotency_expiry`.
fn idempotency_window(
    conn: &Connection,
    _cursor: i64,
    limit: i64,
    cutoff: &Cutoff,
) -> Result<Window, StoreError> {
    let deleted = exec(
        conn,
        "DELETE FROM idempotency WHERE key IN
             (SELECT key FROM idempotency WHERE expires_at_ms <= ?1 LIMIT ?2)",
        params![cutoff.now_ms, limit],
    )
    .map_err(sqlite_err)?;
    let mut w = Window::at(0);
    w.purged.idempotency = count(deleted);
    w.more = deleted as i64 == limit;
    Ok(w)
}

/// Queue tombstones no Task can send again (see the module documentation).
fn tombstones_window(
    conn: &Connection,
    cursor: i64,
    limit: i64,
    cutoff: &Cutoff,
) -> Result<Window, StoreError> {
    let oldest_running: Option<String> = one(
        conn,
        "SELECT min(started_at) FROM executions WHERE status = 'RUNNING'",
        [],
        |r| r.get(0),
    )
    .map_err(sqlite_err)?;
    let bound = match oldest_running {
        None => cutoff.ms,
        // An unreadable start keeps every tombstone: the safe side.
        Some(text) => parse_ts(&text).map_or(i64::MIN, |t| t.timestamp_millis().min(cutoff.ms)),
    };
    let rows: Vec<(i64, i64, Option<i64>)> = all(
        conn,
        "SELECT seq, sent_at_ms, deleted_at_ms FROM queue_messages
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        params![cursor, limit],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(sqlite_err)?;
    let place = |r: &(i64, i64, Option<i64>)| (r.0, r.1 >= bound);
    Window::walk(cursor, limit, rows, place, |(seq, _, deleted), p| {
        if deleted.is_some_and(|at| at < cutoff.ms) {
            p.queue_tombstones += count(
                exec(conn, "DELETE FROM queue_messages WHERE seq = ?1", [seq])
                    .map_err(sqlite_err)?,
            );
        }
        Ok(())
    })
}

/// Payment webhook records whose payment is settled.
fn webhooks_window(
    conn: &Connection,
    cursor: i64,
    limit: i64,
    cutoff: &Cutoff,
) -> Result<Window, StoreError> {
    let rows: Vec<(i64, String, bool)> = all(
        conn,
        "SELECT w.rowid, w.received_at,
                NOT EXISTS (SELECT 1 FROM payments p
                            WHERE p.order_id = w.order_id AND p.status = 'REQUESTED')
         FROM payment_webhooks w WHERE w.rowid > ?1 ORDER BY w.rowid LIMIT ?2",
        params![cursor, limit],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(sqlite_err)?;
    let place = |r: &(i64, String, bool)| (r.0, r.1 >= cutoff.text);
    Window::walk(cursor, limit, rows, place, |(rowid, _, settled), p| {
        if settled {
            p.payment_webhooks += count(
                exec(
                    conn,
                    "DELETE FROM payment_webhooks WHERE rowid = ?1",
                    [rowid],
                )
                .map_err(sqlite_err)?,
            );
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
