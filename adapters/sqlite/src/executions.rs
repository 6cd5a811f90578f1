//! The local executor's durable state: one row per execution holding its snapshot, and its
//! history, one row per write (the events that write appended, as a JSON array). `record`
//! refuses a write that does not continue the stored history, so two runners of one
//! execution (say, two processes resuming after a crash) cannot interleave. A `record` refused
//! for want of space is tried again once space returns (`SqliteStore::while_full`); `create`
//! is not: the relay that calls it backs off itself and must stay free to stop. `redrive` is
//! the one write to a finished row: FAILED back to RUNNING, under the same seq check.

use super::{SqliteStore, sqlite_err};
use async_trait::async_trait;
use orders_domain::time::format_millis as format_ts;
use orders_workflow::executor::{
    ExecutionSnapshot, ExecutionStatus, ExecutionStore, ExecutionStoreError, HistoryEvent,
};
use rusqlite::{Connection, OptionalExtension, params};

fn exec_err(e: orders_domain::store::StoreError) -> ExecutionStoreError {
    ExecutionStoreError::new(e.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, orders_domain::store::StoreError> {
    serde_json::to_string(v).map_err(|e| orders_domain::store::StoreError::Backend(e.to_string()))
}

/// The events of one write as one history row: `(first seq, JSON array)`, serialized before
/// the write job so the writer thread only writes. `None` for no events.
fn encode_events(
    events: &[HistoryEvent],
) -> Result<Option<(i64, String)>, orders_domain::store::StoreError> {
    let Some(first) = events.first() else {
        return Ok(None);
    };
    Ok(Some((first.seq as i64, to_json(&events)?)))
}

fn insert_events(
    conn: &Connection,
    name: &str,
    events: &Option<(i64, String)>,
) -> Result<(), orders_domain::store::StoreError> {
    let Some((seq, events)) = events else {
        return Ok(());
    };
    conn.prepare_cached("INSERT INTO execution_history (name, seq, events) VALUES (?1, ?2, ?3)")
        .and_then(|mut st| st.execute(params![name, seq, events]))
        .map_err(sqlite_err)?;
    Ok(())
}

/// Why `record` changed nothing: the execution is unknown, finished, or elsewhere in its history.
fn refusal(conn: &Connection, name: &str, first: Option<i64>) -> orders_domain::store::StoreError {
    let stored: Result<Option<(String, i64)>, _> = conn
        .prepare_cached("SELECT status, seq FROM executions WHERE name = ?1")
        .and_then(|mut st| {
            st.query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        });
    let message = match stored {
        Err(e) => return sqlite_err(e),
        Ok(None) => format!("execution {name} does not exist"),
        Ok(Some((status, _))) if status != ExecutionStatus::Running.as_str() => {
            format!("execution {name} already finished")
        }
        Ok(Some((_, seq))) => format!(
            "execution {name}: history continues at {} but event {} was written",
            seq + 1,
            first.unwrap_or_default()
        ),
    };
    orders_domain::store::StoreError::Backend(message)
}

/// A transition, serialized: what the writer thread writes for `record`.
#[derive(Clone)]
pub(crate) struct Encoded {
    name: String,
    status: &'static str,
    seq: i64,
    json: String,
    updated: String,
    events: Option<(i64, String)>,
}

impl Encoded {
    pub(crate) fn new(
        snapshot: &ExecutionSnapshot,
        events: &[HistoryEvent],
    ) -> Result<Self, orders_domain::store::StoreError> {
        Ok(Encoded {
            name: snapshot.name.clone(),
            status: snapshot.status.as_str(),
            seq: snapshot.seq as i64,
            json: to_json(snapshot)?,
            updated: format_ts(snapshot.updated_at),
            events: encode_events(events)?,
        })
    }

    fn first(&self) -> Option<i64> {
        self.events.as_ref().map(|(seq, _)| *seq)
    }

    /// Writes the transition if it continues the stored history of a RUNNING execution:
    /// false (nothing written) if not. No events means no continuity to check (status only).
    pub(crate) fn write(
        &self,
        conn: &Connection,
    ) -> Result<bool, orders_domain::store::StoreError> {
        self.update(
            conn,
            "UPDATE executions SET status = ?2, seq = ?3, snapshot = ?4, updated_at = ?5
             WHERE name = ?1 AND status = 'RUNNING' AND (?6 IS NULL OR seq = ?6 - 1)",
        )
    }

    /// One conditional UPDATE (`sql`, whose WHERE is the check) does the check and the
    /// write; the events are appended only if it changed the row.
    fn update(
        &self,
        conn: &Connection,
        sql: &str,
    ) -> Result<bool, orders_domain::store::StoreError> {
        let Encoded {
            name,
            status,
            seq,
            json,
            updated,
            events,
        } = self;
        let changed = conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute(params![name, status, seq, json, updated, self.first()]))
            .map_err(sqlite_err)?;
        if changed != 1 {
            return Ok(false);
        }
        insert_events(conn, name, events)?;
        Ok(true)
    }
}

fn snapshot_of(json: String) -> Result<ExecutionSnapshot, orders_domain::store::StoreError> {
    serde_json::from_str(&json)
        .map_err(|e| orders_domain::store::StoreError::Backend(format!("unreadable snapshot: {e}")))
}

#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn create(
        &self,
        snapshot: &ExecutionSnapshot,
        events: &[HistoryEvent],
    ) -> Result<bool, ExecutionStoreError> {
        let (name, status, seq) = (
            snapshot.name.clone(),
            snapshot.status.as_str(),
            snapshot.seq as i64,
        );
        let (started, updated) = (
            format_ts(snapshot.started_at),
            format_ts(snapshot.updated_at),
        );
        let json = to_json(snapshot).map_err(exec_err)?;
        let events = encode_events(events).map_err(exec_err)?;
        self.write_background(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO executions (name, status, seq, snapshot, started_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING",
                )
                .and_then(|mut st| st.execute(params![name, status, seq, json, started, updated]))
                .map_err(sqlite_err)?;
            if inserted == 0 {
                return Ok(false);
            }
            insert_events(conn, &name, &events)?;
            Ok(true)
        })
        .await
        .map_err(exec_err)
    }

    async fn record(
        &self,
        snapshot: &ExecutionSnapshot,
        events: &[HistoryEvent],
    ) -> Result<(), ExecutionStoreError> {
        let record = Encoded::new(snapshot, events).map_err(exec_err)?;
        // The executor stops an execution whose record fails, and only a later re-drive picks
        // it up: a full disk would turn every running saga into one ERROR line per re-drive.
        // A refused record changed nothing, so it waits for space and is written then.
        self.while_full(|| {
            let record = record.clone();
            self.write_background(move |conn| {
                if record.write(conn)? {
                    return Ok(());
                }
                Err(refusal(conn, &record.name, record.first()))
            })
        })
        .await
        .map_err(exec_err)
    }

    async fn unfinished(&self) -> Result<Vec<ExecutionSnapshot>, ExecutionStoreError> {
        self.read(|conn| {
            let rows: Vec<String> = conn
                .prepare_cached("SELECT snapshot FROM executions WHERE status = 'RUNNING' ORDER BY started_at, name")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                .map_err(sqlite_err)?;
            rows.into_iter().map(snapshot_of).collect()
        })
        .await
        .map_err(exec_err)
    }

    async fn get(&self, name: &str) -> Result<Option<ExecutionSnapshot>, ExecutionStoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT snapshot FROM executions WHERE name = ?1")
                .and_then(|mut st| st.query_row([name], |r| r.get::<_, String>(0)).optional())
                .map_err(sqlite_err)?
                .map(snapshot_of)
                .transpose()
        })
        .await
        .map_err(exec_err)
    }

    async fn redrive(
        &self,
        snapshot: &ExecutionSnapshot,
        events: &[HistoryEvent],
    ) -> Result<bool, ExecutionStoreError> {
        let record = Encoded::new(snapshot, events).map_err(exec_err)?;
        // The same conditional UPDATE as `record`, on a FAILED row: of two redrives that read
        // the same failed snapshot, the second finds it RUNNING (or its seq moved on).
        self.write_background(move |conn| {
            record.update(
                conn,
                "UPDATE executions SET status = ?2, seq = ?3, snapshot = ?4, updated_at = ?5
                 WHERE name = ?1 AND status = 'FAILED' AND seq = ?6 - 1",
            )
        })
        .await
        .map_err(exec_err)
    }

    async fn list(
        &self,
        status: ExecutionStatus,
        limit: usize,
    ) -> Result<Vec<ExecutionSnapshot>, ExecutionStoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let rows: Vec<String> = conn
                .prepare_cached(
                    "SELECT snapshot FROM executions WHERE status = ?1
                     ORDER BY updated_at DESC, name DESC LIMIT ?2",
                )
                .and_then(|mut st| {
                    st.query_map(params![status.as_str(), limit], |r| r.get(0))?
                        .collect()
                })
                .map_err(sqlite_err)?;
            rows.into_iter().map(snapshot_of).collect()
        })
        .await
        .map_err(exec_err)
    }

    async fn history(&self, name: &str) -> Result<Vec<HistoryEvent>, ExecutionStoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            let rows: Vec<String> = conn
                .prepare_cached("SELECT events FROM execution_history WHERE name = ?1 ORDER BY seq")
                .and_then(|mut st| st.query_map([name], |r| r.get(0))?.collect())
                .map_err(sqlite_err)?;
            let mut history = Vec::new();
            for row in rows {
                let events: Vec<HistoryEvent> = serde_json::from_str(&row)
                    .map_err(|e| orders_domain::store::StoreError::Backend(e.to_string()))?;
                history.extend(events);
            }
            Ok(history)
        })
        .await
        .map_err(exec_err)
    }
}
