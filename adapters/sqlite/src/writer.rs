//! The single writer: one thread owns the only write connection and commits in groups.
//!
//! SQLite allows one writer at a time, so instead of many connections queueing on the write
//! lock, every write is a job sent to this thread. It takes all jobs waiting (up to a bound),
//! runs each inside its own SAVEPOINT in one `BEGIN IMMEDIATE` transaction, and answers each
//! job only after the COMMIT returned: one fsync covers the whole group, and an answered write
//! is a durable write. A job that fails rolls back to its savepoint and leaves the others
//! intact. Other processes on the same file still serialise correctly on the write lock
//! (`BEGIN IMMEDIATE` + busy timeout), which is why no decision is ever made from memory alone.
//!
//! The connection sits behind a [`TxConn`] handle so a job can hand it to code that needs an
//! owned, `Send + Sync` store for the length of the job: a whole saga step runs that way, all
//! its writes in one job. Only this thread ever locks it, so the lock is never contended.
//!
//! Jobs a client waits for (an HTTP request) go first: while clients wait, a group takes all
//! their jobs and only a few background jobs (relay, saga); the rest of the time, background
//! jobs fill it. A group takes its jobs one at a time, so a client job that arrives while a
//! background group runs joins that group and ends it soon, rather than waiting for all of it
//! and its commit. A burst of orders is accepted at full speed, and the sagas catch up after
//! it, but never stop.
//!
//! A write refused for want of space (`StoreError::StorageFull`: a full disk, or the size
//! limit) is rolled back like any failed job, and counted: after each group the writer tells
//! [`Space`] how many of its jobs were refused and whether it committed, which is how the store
//! knows, without a read, that writes are being refused and when they are accepted again.

use super::metrics::{WRITER_COMMIT_JOBS, WRITER_QUEUE_DEPTH};
use super::space::{Space, pages_in_use};
use super::sqlite_err;
use orders_domain::store::StoreError;
use rusqlite::Connection;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Most jobs committed together: bounds the latency the first job of a group pays.
const MAX_GROUP: usize = 256;
/// Background jobs a group takes while client jobs wait.
const MIN_BACKGROUND: usize = 8;

/// Who waits for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// A client, on the other end of a request.
    Client,
    /// The relay or the saga: nobody is on the line.
    Background,
}

type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A job gets the connection, or the error that kept it from running (so its caller learns
/// why); it returns what becomes of its writes, and how to answer once the group's fate is
/// known.
type Job = Box<dyn FnOnce(Result<&TxConn, StoreError>) -> (Fate, Reply) + Send>;

/// What becomes of a job's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    /// Rolled back: the job failed.
    Undo,
    /// Rolled back: storage had no room for it ([`StoreError::StorageFull`]).
    Refused,
}

impl Fate {
    fn of<T>(out: &Result<T, StoreError>) -> Self {
        match out {
            Ok(_) => Fate::Keep,
            Err(StoreError::StorageFull) => Fate::Refused,
            Err(_) => Fate::Undo,
        }
    }
}

/// The writer's connection, lent to a job while its group transaction is open. Cloning it
/// does not extend that: whatever a job builds on it must be finished when the job returns.
#[derive(Clone)]
pub(crate) struct TxConn(Arc<Mutex<Connection>>);

impl TxConn {
    /// Runs `f` on the connection. Calls nest only by mistake (it would deadlock), so the
    /// callers are the writer itself and stores built for one job, one statement group each.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        // A panicking job is rolled back to its savepoint; the connection itself stays usable.
        f(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

pub(crate) struct Writer {
    tx: Option<mpsc::Sender<(Priority, Job)>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it reports every group to `space`.
    pub(crate) fn spawn(conn: Connection, space: Arc<Space>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<(Priority, Job)>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&TxConn(Arc::new(Mutex::new(conn))), rx, &space))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs `f` inside the next group transaction; resolves after that transaction commits.
    /// An `Err` from `f` undoes everything `f` wrote and is returned as is.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_tx(Priority::Client, move |tx: &TxConn| tx.with(f))
            .await
    }

    /// [`Writer::write`] for a job that passes the connection on (see [`TxConn`]).
    pub(crate) async fn write_tx<T, F>(&self, priority: Priority, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&TxConn) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: Result<&TxConn, StoreError>| {
            let out = conn.and_then(f);
            let fate = Fate::of(&out);
            let reply: Reply = Box::new(move |commit| {
                let _ = reply_tx.send(commit.and(out));
            });
            (fate, reply)
        });
        let sender = self
            .tx
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))?;
        sender
            .send((priority, job))
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

#[derive(Default)]
struct Queues {
    client: VecDeque<Job>,
    background: VecDeque<Job>,
}

/// What the open group may still take.
struct Budget {
    taken: usize,
    background: usize,
}

impl Budget {
    fn new() -> Self {
        Budget {
            taken: 0,
            background: MAX_GROUP,
        }
    }
}

impl Queues {
    fn push(&mut self, (priority, job): (Priority, Job)) {
        match priority {
            Priority::Client => self.client.push_back(job),
            Priority::Background => self.background.push_back(job),
        }
    }

    fn is_empty(&self) -> bool {
        self.client.is_empty() && self.background.is_empty()
    }

    /// The next job for the open group, or `None` when the group should commit. A waiting
    /// client goes first and leaves the background at most `MIN_BACKGROUND` more places: one
    /// that arrives while a long background group runs joins it instead of waiting behind it.
    fn next_job(&mut self, budget: &mut Budget) -> Option<Job> {
        if budget.taken == MAX_GROUP {
            return None;
        }
        // The last places stay the background's, so sagas progress under any client load.
        let job = if budget.taken < MAX_GROUP - MIN_BACKGROUND
            && let Some(job) = self.client.pop_front()
        {
            budget.background = budget.background.min(MIN_BACKGROUND);
            job
        } else if budget.background > 0 {
            budget.background -= 1;
            self.background.pop_front()?
        } else {
            return None;
        };
        budget.taken += 1;
        Some(job)
    }
}

fn run(conn: &TxConn, rx: mpsc::Receiver<(Priority, Job)>, space: &Space) {
    let mut queues = Queues::default();
    loop {
        if queues.is_empty() {
            // Closed and drained: every accepted job has been answered.
            let Ok(next) = rx.recv() else { return };
            queues.push(next);
        }
        let (refused, committed) = commit_group(conn, &mut queues, &rx);
        space.after_group(refused, committed, || conn.with(pages_in_use));
        // Those still in the channel are few: a group drains it after each job it runs.
        let waiting = queues.client.len() + queues.background.len();
        metrics::gauge!(WRITER_QUEUE_DEPTH).set(waiting as f64);
    }
}

/// Runs one of the writer's own control statements from the statement cache: they run several
/// times per job, and `execute_batch` would parse them again every time.
fn control(conn: &TxConn, sql: &str) -> rusqlite::Result<()> {
    conn.with(|c| c.prepare_cached(sql)?.execute([]).map(|_| ()))
}

/// Runs one group transaction: jobs are taken one at a time, so those that arrive meanwhile
/// can still join; every job is answered once the COMMIT is known. Returns how many jobs were
/// refused for want of space and whether the group committed any write.
fn commit_group(
    conn: &TxConn,
    queues: &mut Queues,
    rx: &mpsc::Receiver<(Priority, Job)>,
) -> (u64, bool) {
    rx.try_iter().for_each(|job| queues.push(job));
    let mut budget = Budget::new();
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        let err = sqlite_err(e);
        let mut refused = 0;
        while let Some(job) = queues.next_job(&mut budget) {
            let (_, reply) = job(Err(err.clone()));
            reply(Err(err.clone()));
            refused += u64::from(err == StoreError::StorageFull);
        }
        return (refused, false);
    }
    let mut replies: Vec<Reply> = Vec::new();
    let (mut refused, mut kept) = (0, 0);
    while let Some(job) = queues.next_job(&mut budget) {
        let (fate, reply) = run_job(conn, job);
        refused += u64::from(fate == Fate::Refused);
        kept += u64::from(fate == Fate::Keep);
        replies.push(reply);
        if conn.with(Connection::is_autocommit) {
            return lost_group(fate, replies);
        }
        rx.try_iter().for_each(|job| queues.push(job));
    }
    metrics::histogram!(WRITER_COMMIT_JOBS).record(replies.len() as f64);
    let commit = control(conn, "COMMIT").map_err(sqlite_err);
    if commit.is_err() {
        let _ = control(conn, "ROLLBACK");
    }
    if commit == Err(StoreError::StorageFull) {
        // The COMMIT (writing the WAL) found no room: every write of the group is refused.
        refused += kept;
    }
    let committed = commit.is_ok() && kept > 0;
    for reply in replies {
        reply(commit.clone());
    }
    (refused, committed)
}

/// SQLite rolled the whole group back on its own, as it may on `SQLITE_FULL` or an I/O
/// error: no job taken so far has its writes, and the next would run outside any transaction
/// (each statement committing by itself), so the group ends here and the jobs still queued
/// wait for the next one. Answers every job taken; returns what [`commit_group`] does.
fn lost_group(last: Fate, replies: Vec<Reply>) -> (u64, bool) {
    let err = match last {
        Fate::Refused => StoreError::StorageFull,
        _ => StoreError::Backend("the write transaction was rolled back by SQLite".into()),
    };
    let refused = if last == Fate::Refused {
        replies.len() as u64
    } else {
        0
    };
    for reply in replies {
        reply(Err(err.clone()));
    }
    (refused, false)
}

/// Runs one job in a savepoint; a failed or panicking job leaves no trace in the group.
/// Returns what became of its writes and how to answer the job once the group's commit is
/// known.
fn run_job(conn: &TxConn, job: Job) -> (Fate, Reply) {
    if let Err(e) = control(conn, "SAVEPOINT job") {
        let e = sqlite_err(e);
        let fate = Fate::of(&Err::<(), _>(e.clone()));
        return (fate, job(Err(e)).1);
    }
    match catch_unwind(AssertUnwindSafe(|| job(Ok(conn)))) {
        Ok((Fate::Keep, reply)) => match control(conn, "RELEASE job").map_err(sqlite_err) {
            Ok(()) => (Fate::Keep, reply),
            Err(e) => (
                Fate::of(&Err::<(), _>(e.clone())),
                Box::new(move |_| reply(Err(e))),
            ),
        },
        Ok((fate, reply)) => {
            let _ = control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"));
            (fate, reply)
        }
        Err(_) => {
            let _ = control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"));
            tracing::error!("a storage job panicked; its writes were rolled back");
            // The job's reply sender was dropped with the panic: its caller sees "dropped a job".
            (Fate::Undo, Box::new(|_| {}))
        }
    }
}

#[cfg(test)]
mod tests;
