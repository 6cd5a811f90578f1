//! The single writer: one thread owns the only write connection and commits in groups.
//!
//! SQLite allows one writer at a time, so instead of many connections queueing on the write
//! lock, every write is a job sent to this thread. It takes all jobs waiting (up to a bound),
//! runs each inside its own SAVEPOINT in one `BEGIN IMMEDIATE` transaction, and answers each
//! job only after the COMMIT returned: one fsync covers the whole group, and an answered write
//! is a durable write. A job that fails rolls back to its savepoint and leaves the others
//! intact. Other processes on the same file still serialise correctly on the write lock
//! (`BEGIN IMMEDIATE` + busy timeout), which is why no decision is ever made from memory alone.

use super::sqlite_err;
use crate::store::StoreError;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Most jobs committed together: bounds the latency the first job of a group pays.
const MAX_GROUP: usize = 256;

type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A job gets the connection, or the error that kept it from running (so its caller learns
/// why); it returns whether its writes stay, and how to answer once the group's fate is known.
type Job = Box<dyn FnOnce(Result<&Connection, StoreError>) -> (bool, Reply) + Send>;

pub struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn spawn(conn: Connection) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs `f` inside the next group transaction; resolves after that transaction commits.
    /// An `Err` from `f` undoes everything `f` wrote and is returned as is.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: Result<&Connection, StoreError>| {
            let out = conn.and_then(f);
            let keep = out.is_ok();
            let reply: Reply = Box::new(move |commit| {
                let _ = reply_tx.send(commit.and(out));
            });
            (keep, reply)
        });
        let sender = self
            .tx
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))?;
        sender
            .send(job)
            .map_err(|_| StoreError::Backend("the writer has stopped".into()))?;
        reply_rx
            .await
            .map_err(|_| StoreError::Backend("the writer dropped a job".into()))?
    }
}

impl Drop for Writer {
    /// Closing the channel lets the thread finish every queued job, then joins it: nothing
    /// accepted is abandoned on shutdown.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>) {
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&conn, &mut group);
    }
}

/// Runs one of the writer's own control statements from the statement cache: they run several
/// times per job, and `execute_batch` would parse them again every time.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit_group(conn: &Connection, group: &mut Vec<Job>) {
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        let err = sqlite_err(e);
        for job in group.drain(..) {
            let (_, reply) = job(Err(err.clone()));
            reply(Err(err.clone()));
        }
        return;
    }
    let replies: Vec<Reply> = group.drain(..).map(|job| run_job(conn, job)).collect();
    let commit = control(conn, "COMMIT").map_err(sqlite_err);
    if commit.is_err() {
        let _ = control(conn, "ROLLBACK");
    }
    for reply in replies {
        reply(commit.clone());
    }
}

/// Runs one job in a savepoint; a failed or panicking job leaves no trace in the group.
/// Returns how to answer the job once the group's commit is known.
fn run_job(conn: &Connection, job: Job) -> Reply {
    if let Err(e) = control(conn, "SAVEPOINT job") {
        return job(Err(sqlite_err(e))).1;
    }
    match catch_unwind(AssertUnwindSafe(|| job(Ok(conn)))) {
        Ok((true, reply)) => match control(conn, "RELEASE job").map_err(sqlite_err) {
            Ok(()) => reply,
            Err(e) => Box::new(move |_| reply(Err(e))),
        },
        Ok((false, reply)) => {
            let _ = control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"));
            reply
        }
        Err(_) => {
            let _ = control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"));
            tracing::error!("a storage job panicked; its writes were rolled back");
            // The job's reply sender was dropped with the panic: its caller sees "dropped a job".
            Box::new(|_| {})
        }
    }
}
