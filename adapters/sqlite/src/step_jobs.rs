//! How the steps' store reaches the writer: a whole step in one writer job, which is what the
//! local executor runs for every Task state ([`StepInOneJob`]).
//!
//! A whole step in one job is the point. The step handlers are shared with the step Lambda and
//! call the store through the async `StepStore` trait; over [`TxStepStore`] every call completes at
//! once, so the handler's future runs to its end in a single poll inside the job, and the
//! step's attempt, effect, status change and result commit together. One job instead of three
//! or four per step means fewer savepoints, fewer wake-ups and fewer pages written per order,
//! and no state where the effect is stored but the step still reads RUNNING.
//!
//! The executor's record of the step's result goes into the same job
//! ([`TaskHandler::invoke_and_record`]): the store the steps write to is the executor's
//! store, so the transition the result leads to is written under `record`'s seq check right
//! after the step's writes, and a step costs one job where it cost two.
//!
//! A step one of whose writes storage refused for want of space is undone whole (the job
//! fails with `StorageFull`), and [`StepInOneJob`] runs it again once space returns instead
//! of reporting a failed attempt: a full disk is not the step's failure, must not use up its
//! retries, and each attempt would otherwise log and be recorded (which fails too).

use super::SqliteStore;
use super::executions::Encoded;
use super::steps::TxStepStore;
use super::writer::{Priority, TxConn};
use async_trait::async_trait;
use orders_domain::store::StoreError;
use orders_workflow::executor::{Finish, Finished, TaskContext, TaskError, TaskHandler};
use orders_workflow::steps::{StepError, StepSettings, StepStore, Steps};
use serde_json::Value;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Polls `f` once; `None` if it would have waited.
fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

impl SqliteStore {
    /// Runs one saga step (raw Task input, as `Steps::invoke` takes it) as one writer job.
    /// `Err` only when the job itself failed (its writes are undone); a step that failed is
    /// `Ok(Err(..))`, and its recorded attempt and error stay.
    pub async fn run_step(
        &self,
        settings: StepSettings,
        input: Value,
    ) -> Result<Result<Value, StepError>, StoreError> {
        // The job runs on the writer's thread: exported, the step's spans are children of the
        // attempt's (the caller's), not roots of traces of their own.
        let attempt = if orders_telemetry::exporting() {
            tracing::Span::current()
        } else {
            tracing::Span::none()
        };
        self.step_job(move |store| {
            tracing::Instrument::instrument(
                async move { Steps { store, settings }.invoke(input).await },
                attempt,
            )
        })
        .await
    }

    /// [`SqliteStore::run_step`], with the transition its result leads to (`finish`)
    /// written in the same job, under `record`'s seq check (see [`Finish`]).
    async fn run_step_recorded(
        &self,
        settings: StepSettings,
        input: Value,
        finish: Finish,
    ) -> Result<Finished, StoreError> {
        let attempt = if orders_telemetry::exporting() {
            tracing::Span::current()
        } else {
            tracing::Span::none()
        };
        self.step_job_then(
            move |store| {
                tracing::Instrument::instrument(
                    async move { Steps { store, settings }.invoke(input).await },
                    attempt,
                )
            },
            move |tx, step| {
                let record = finish.record(step.map_err(TaskError::from));
                let written =
                    tx.with(|conn| Encoded::new(&record.snapshot, &record.events)?.write(conn))?;
                Ok(if written {
                    Finished::Recorded(Box::new(record.snapshot))
                } else {
                    Finished::Refused
                })
            },
        )
        .await
    }

    /// Runs `f` over the steps' store on the writer's open transaction, in one background
    /// job, polling its future exactly once (see the module docs). This is how every step runs;
    /// the contract suite drives the store through it too.
    pub async fn step_job<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn StepStore>) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        self.step_job_then(f, |_, out| Ok(out)).await
    }

    /// [`SqliteStore::step_job`], then `then` on the step's output in the same job.
    async fn step_job_then<T, U, F, Fut, G>(&self, f: F, then: G) -> Result<U, StoreError>
    where
        U: Send + 'static,
        F: FnOnce(Arc<dyn StepStore>) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        G: FnOnce(&TxConn, T) -> Result<U, StoreError> + Send + 'static,
    {
        let out = self
            .write_tx(Priority::Background, move |tx| {
                let store = Arc::new(TxStepStore::new(tx.clone()));
                let out = now_or_never(f(store.clone())).ok_or_else(|| {
                    StoreError::Backend("a saga step waited inside its write transaction".into())
                })?;
                if store.refused() {
                    return Err(StoreError::StorageFull);
                }
                then(tx, out)
            })
            .await?;
        // A status change or a voucher may have published an event.
        self.events_signal.notify_one();
        Ok(out)
    }
}

/// A saga step as one job of the executor's task handler (`Task` states of every step).
/// `store` must be the executor's store too: the step's job writes the execution's record.
pub struct StepInOneJob {
    pub store: Arc<SqliteStore>,
    pub settings: StepSettings,
}

#[async_trait]
impl TaskHandler for StepInOneJob {
    async fn invoke(&self, input: Value, _ctx: &TaskContext) -> Result<Value, TaskError> {
        let step = self
            .store
            .while_full(|| self.store.run_step(self.settings.clone(), input.clone()))
            .await;
        match step {
            Ok(step) => step.map_err(TaskError::from),
            // The job's writes are undone; like any storage failure, worth another try.
            Err(e) => Err(StepError::Transient(e.to_string()).into()),
        }
    }

    /// The step and its transition in one job: the executor's store is this store.
    async fn invoke_and_record(
        &self,
        input: Value,
        _ctx: &TaskContext,
        finish: &Finish,
    ) -> Finished {
        let step = self
            .store
            .while_full(|| {
                self.store
                    .run_step_recorded(self.settings.clone(), input.clone(), finish.clone())
            })
            .await;
        // The job's writes are undone, its transition with them: the executor records the
        // failure, as any storage failure worth another try.
        step.unwrap_or_else(|e| Finished::Returned(Err(StepError::Transient(e.to_string()).into())))
    }
}
