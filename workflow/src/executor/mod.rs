//! A durable, in-process executor of a loaded [`StateMachine`].
//!
//! It exists so the saga runs locally with the same definition and the same semantics as on
//! Step Functions. The invariants it keeps:
//!
//! * **Persist before acting on it.** `start` returns only after the execution is stored, and
//!   every transition is recorded (snapshot + history, atomically) before the next state runs.
//!   A crash therefore loses at most the state in flight, which `resume_unfinished` runs again;
//!   handlers are idempotent, so running a Task twice is safe, skipping one never happens.
//! * **Never finish without persisting.** If the store fails, that execution's loop stops and
//!   it stays RUNNING in the store, to be resumed on the next start.
//! * **Waiting costs nothing.** Retries sleep on the tokio timer, and the concurrency limit
//!   (`max_concurrent`) is held only while a handler runs, so thousands of executions can
//!   back off at once without starving the ones that are ready. An execution waiting for a
//!   task token (a `.waitForTaskToken` Task) is *parked*: no runner, no permit, not counted in
//!   [`Executor::running`]; only its deadline is kept, and its token or the deadline starts a
//!   runner from the stored snapshot again.
//! * **One writer wins.** A token call and the runner (or the deadline) may race on one wait;
//!   both write through the store's seq check, so exactly one closes it and the other re-reads.
//! * **One runner per execution per process.** Starting or resuming a name that is already
//!   running here is a no-op; across processes the store's seq check refuses interleaving.
//! * **A failed execution can be redriven** ([`Executor::redrive`]): it carries on from the
//!   step that failed, with what succeeded kept (see `redrive` for which step that is).

mod active;
mod context;
mod finish;
pub mod queue;
mod redrive;
pub mod retry;
mod run;
mod store;
mod task;
mod timer;
mod tokens;
mod tx;
mod wait;

pub use finish::{Finish, Finished, Record};
pub use queue::{QueueMessage, Sent, TaskQueue, TaskQueueError};
pub use redrive::RedriveError;
pub use retry::{RetryDecision, retry_delay};

// Metrics (recorded through the `metrics` facade; no-ops without a recorder).
/// Counter: executions that ended, by `status` (`succeeded`, `failed`).
pub const EXECUTIONS_FINISHED_TOTAL: &str = "orders_executions_finished_total";
/// Counter: retries of Task states scheduled, by `step`: the Task state's name, one of the
/// definition's (the saga's Tasks are named after their steps).
pub const STEP_RETRIES_TOTAL: &str = "orders_saga_step_retries_total";
pub use store::{
    ExecutionSnapshot, ExecutionStatus, ExecutionStore, ExecutionStoreError, HistoryEvent,
    HistoryEventKind, STATES_HEARTBEAT_TIMEOUT, STATES_TIMEOUT, Waiting,
};
pub use tokens::{TaskTokenError, WaitFailed};

use crate::asl::StateMachine;
use async_trait::async_trait;
use chrono::Utc;
use run::Start;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, watch};

/// A Task's implementation, registered under its substitution name.
///
/// Must be idempotent: after a crash or a store failure the same Task runs again with the
/// same input. Returning `Err` is the only failure channel the executor routes through Retry
/// and Catch; a panic aborts that execution's loop (it stays RUNNING until resumed).
#[async_trait]
pub trait TaskHandler: Send + Sync {
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError>;

    /// `invoke`, and the transition its result leads to (`finish`), written in one atomic
    /// write with the Task's effects: only for a handler that writes to the executor's own
    /// store (see [`Finish`]). The default records nothing and leaves that to the executor.
    async fn invoke_and_record(
        &self,
        input: Value,
        ctx: &TaskContext,
        finish: &Finish,
    ) -> Finished {
        let _ = finish;
        Finished::Returned(self.invoke(input, ctx).await)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContext {
    pub execution: String,
    pub state: String,
    /// 1-based: 1 is the first try, 2 the first retry.
    pub attempt: u32,
}

/// A task failure; `error` is the name Retry and Catch match (`Transient`, `OutOfStock`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutorOptions {
    /// How many handlers may run at once (executions waiting for a retry do not count).
    pub max_concurrent: usize,
    /// Multiplies every retry delay; tests use e.g. 0.001.
    pub delay_scale: f64,
    /// Multiplies every TimeoutSeconds and HeartbeatSeconds; finite and above 0 (tests and
    /// drills use e.g. 0.01).
    pub timeout_scale: f64,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            max_concurrent: 256,
            delay_scale: 1.0,
            timeout_scale: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Started,
    /// An execution with this name exists (in any status); nothing was started.
    AlreadyExists,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("no handler registered for Task resource \"${{{0}}}\"")]
    MissingHandler(String),
    #[error("Task queue \"${{{0}}}\" needs a task queue: build the executor with `with_queue`")]
    MissingQueue(String),
    #[error("invalid executor options: {0}")]
    InvalidOptions(String),
    #[error("invalid execution name {0:?}: it must be 1 to 80 characters")]
    InvalidName(String),
    #[error("the executor is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] ExecutionStoreError),
}

pub struct Executor {
    machine: StateMachine,
    handlers: HashMap<String, Arc<dyn TaskHandler>>,
    store: Arc<dyn ExecutionStore>,
    queue: Option<Arc<dyn TaskQueue>>,
    opts: ExecutorOptions,
    permits: Semaphore,
    active: Mutex<active::Active>,
    parked: Arc<timer::Parked>,
    /// How many spawned executions have not finished; `idle` waits for 0.
    running: watch::Sender<usize>,
    shutting_down: AtomicBool,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("start_at", &self.machine.start_at)
            .field("opts", &self.opts)
            .field("running", &*self.running.borrow())
            .field("waiting", &self.parked.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.parked.stop();
    }
}

impl Executor {
    /// An executor for a machine without sqs callback Tasks (those need [`Executor::with_queue`]).
    pub fn new(
        machine: StateMachine,
        handlers: HashMap<String, Arc<dyn TaskHandler>>,
        store: Arc<dyn ExecutionStore>,
        opts: ExecutorOptions,
    ) -> Result<Arc<Executor>, ExecError> {
        Executor::build(machine, handlers, store, None, opts)
    }

    /// An executor whose `sqs:sendMessage.waitForTaskToken` Tasks send to `queue`.
    pub fn with_queue(
        machine: StateMachine,
        handlers: HashMap<String, Arc<dyn TaskHandler>>,
        store: Arc<dyn ExecutionStore>,
        queue: Arc<dyn TaskQueue>,
        opts: ExecutorOptions,
    ) -> Result<Arc<Executor>, ExecError> {
        Executor::build(machine, handlers, store, Some(queue), opts)
    }

    fn build(
        machine: StateMachine,
        handlers: HashMap<String, Arc<dyn TaskHandler>>,
        store: Arc<dyn ExecutionStore>,
        queue: Option<Arc<dyn TaskQueue>>,
        opts: ExecutorOptions,
    ) -> Result<Arc<Executor>, ExecError> {
        if queue.is_none()
            && let Some(name) = machine.task_queues().first()
        {
            return Err(ExecError::MissingQueue((*name).to_owned()));
        }
        if let Some(missing) = machine
            .task_resources()
            .into_iter()
            .find(|r| !handlers.contains_key(*r))
        {
            return Err(ExecError::MissingHandler(missing.to_owned()));
        }
        if opts.max_concurrent == 0 || opts.max_concurrent > Semaphore::MAX_PERMITS {
            return Err(ExecError::InvalidOptions(
                "max_concurrent must be at least 1".into(),
            ));
        }
        if !(opts.delay_scale.is_finite() && opts.delay_scale >= 0.0) {
            return Err(ExecError::InvalidOptions(
                "delay_scale must be finite and not negative".into(),
            ));
        }
        if !(opts.timeout_scale.is_finite() && opts.timeout_scale > 0.0) {
            return Err(ExecError::InvalidOptions(
                "timeout_scale must be finite and above 0".into(),
            ));
        }
        Ok(Arc::new(Executor {
            permits: Semaphore::new(opts.max_concurrent),
            machine,
            handlers,
            store,
            queue,
            opts,
            active: Mutex::new(active::Active::default()),
            parked: Arc::default(),
            running: watch::Sender::new(0),
            shutting_down: AtomicBool::new(false),
        }))
    }

    pub fn machine(&self) -> &StateMachine {
        &self.machine
    }

    pub fn store(&self) -> &Arc<dyn ExecutionStore> {
        &self.store
    }

    /// Persists a new execution, then runs it in the background. Starting an existing name
    /// is a no-op that reports `AlreadyExists`, so a redelivered event cannot run a saga twice.
    pub async fn start(
        self: &Arc<Self>,
        name: &str,
        input: Value,
    ) -> Result<StartOutcome, ExecError> {
        if name.is_empty() || name.chars().count() > 80 {
            return Err(ExecError::InvalidName(name.to_owned()));
        }
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ExecError::ShuttingDown);
        }
        let (mut snapshot, events) = run::initial(&self.machine, name, input, Utc::now());
        // OTLP traces: the execution continues the trace of the span that starts it (the
        // relay's, itself continuing the order's request), stored with the execution.
        snapshot.trace = orders_telemetry::traceparent_of(&tracing::Span::current());
        if !self.store.create(&snapshot, &events).await? {
            return Ok(StartOutcome::AlreadyExists);
        }
        self.spawn(Start::Snapshot(Box::new(snapshot)), false);
        Ok(StartOutcome::Started)
    }

    /// Carries on every RUNNING execution from its stored snapshot (after a restart): runs it,
    /// or, if it waits for a task token it was submitted with, parks it again with its stored
    /// deadline (a wait recorded but not submitted runs, to be submitted with its token).
    /// Returns how many were resumed; executions already running or parked here are skipped.
    pub async fn resume_unfinished(self: &Arc<Self>) -> Result<usize, ExecError> {
        let unfinished = self.store.unfinished().await?;
        let mut resumed = 0;
        for snapshot in unfinished {
            if self.parked.contains(&snapshot.name) {
                continue;
            }
            match &snapshot.waiting {
                Some(waiting) if waiting.submitted => {
                    if self.shutting_down.load(Ordering::SeqCst)
                        || self.is_running_here(&snapshot.name)
                    {
                        continue;
                    }
                    self.park(&snapshot.name, waiting.deadline().map(|(at, _)| at));
                    resumed += 1;
                }
                _ => resumed += usize::from(self.spawn(Start::Snapshot(Box::new(snapshot)), false)),
            }
        }
        Ok(resumed)
    }

    /// Waits until no execution spawned by this executor is running.
    pub async fn idle(&self) {
        let mut rx = self.running.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Waits until fewer than `limit` executions are running: backpressure for whoever starts
    /// them, so a burst of events cannot pile up unbounded executions in memory.
    pub async fn wait_below(&self, limit: usize) {
        let mut rx = self.running.subscribe();
        let _ = rx.wait_for(|n| *n < limit).await;
    }

    /// How many executions are running in this process (parked ones are not).
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// How many executions are parked here, waiting for a task token (or its deadline).
    pub fn waiting(&self) -> usize {
        self.parked.len()
    }

    /// Stops every execution at its next await point, as a crash would, and waits for them
    /// to stop; parked ones are forgotten and the deadline timer stops. Their last recorded
    /// snapshot stays RUNNING, so `resume_unfinished` on the next executor carries on from
    /// there. Afterwards `start` and the token calls refuse.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.parked.stop();
        // Collected under the lock, aborted outside it: an aborted run deregisters itself
        // under the same lock. A run whose handle is not stored yet sees the flag in `spawn`.
        for handle in self.abort_handles() {
            handle.abort();
        }
        self.idle().await;
    }
}
