//! How the saga store reaches the writer: as a whole step in one job (what the local executor
//! runs), or one job per call (`SagaStore for SqliteStore`).
//!
//! A whole step in one job is the point. The step handlers are shared with the step Lambda and
//! call the store through the async `SagaStore` trait; over [`TxSaga`] every call completes at
//! once, so the handler's future runs to its end in a single poll inside the job, and the
//! step's attempt, effect, status change and result commit together. One job instead of three
//! or four per step means fewer savepoints, fewer wake-ups and fewer pages written per order,
//! and no state where the effect is stored but the step still reads RUNNING.

use super::SqliteStore;
use super::saga::{TxSaga, saga_err};
use super::writer::Priority;
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::{Cents, CustomerId, OrderId, OrderStatus, SagaItem, VoucherCode};
use orders_workflow::steps::store::{Charge, Reservation, StatusChange};
use orders_workflow::steps::{SagaStore, SagaStoreError, Step, StepError, StepSettings, Steps};
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
        self.write_tx(Priority::Background, move |tx| {
            let steps = Steps {
                store: Arc::new(TxSaga::new(tx.clone())),
                settings,
            };
            now_or_never(steps.invoke(input)).ok_or_else(|| {
                StoreError::Backend("a saga step waited inside its write transaction".into())
            })
        })
        .await
    }

    /// One `SagaStore` call as one writer job.
    async fn saga_job<T, F>(&self, f: F) -> Result<T, SagaStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&TxSaga) -> Result<T, SagaStoreError> + Send + 'static,
    {
        // The call's own result travels inside `Ok`: its savepoint already undid a failure.
        self.write_tx(Priority::Background, move |tx| {
            Ok(f(&TxSaga::new(tx.clone())))
        })
        .await
        .map_err(saga_err)?
    }
}

/// Over an open transaction: each call runs now, in the job that built the store.
#[async_trait]
impl SagaStore for TxSaga {
    async fn step_attempt(&self, o: OrderId, s: Step, now: DateTime<Utc>) -> SResult<()> {
        TxSaga::step_attempt(self, o, s, now)
    }
    async fn step_result(
        &self,
        o: OrderId,
        s: Step,
        e: Option<&str>,
        now: DateTime<Utc>,
    ) -> SResult<()> {
        TxSaga::step_result(self, o, s, e, now)
    }
    async fn reserve(
        &self,
        o: OrderId,
        i: &[SagaItem],
        now: DateTime<Utc>,
    ) -> SResult<Reservation> {
        TxSaga::reserve(self, o, i, now)
    }
    async fn release(&self, o: OrderId, now: DateTime<Utc>) -> SResult<bool> {
        TxSaga::release(self, o, now)
    }
    async fn charge(&self, o: OrderId) -> SResult<Option<Charge>> {
        TxSaga::charge(self, o)
    }
    async fn record_charge(
        &self,
        o: OrderId,
        c: &Charge,
        m: &str,
        now: DateTime<Utc>,
    ) -> SResult<Charge> {
        TxSaga::record_charge(self, o, c, m, now)
    }
    async fn refund(&self, o: OrderId, now: DateTime<Utc>) -> SResult<bool> {
        TxSaga::refund(self, o, now)
    }
    async fn notify(
        &self,
        o: OrderId,
        c: &CustomerId,
        kind: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> SResult<bool> {
        TxSaga::notify(self, o, c, kind, message, now)
    }
    async fn issue_voucher(
        &self,
        o: OrderId,
        c: &CustomerId,
        code: &VoucherCode,
        discount: Cents,
        now: DateTime<Utc>,
    ) -> SResult<VoucherCode> {
        TxSaga::issue_voucher(self, o, c, code, discount, now)
    }
    async fn withdraw_voucher(&self, o: OrderId, now: DateTime<Utc>) -> SResult<bool> {
        TxSaga::withdraw_voucher(self, o, now)
    }
    async fn restore_voucher(
        &self,
        code: &VoucherCode,
        o: OrderId,
        now: DateTime<Utc>,
    ) -> SResult<bool> {
        TxSaga::restore_voucher(self, code, o, now)
    }
    async fn set_status(
        &self,
        o: OrderId,
        s: Step,
        to: OrderStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> SResult<StatusChange> {
        TxSaga::set_status(self, o, s, to, reason, now)
    }
}

type SResult<T> = Result<T, SagaStoreError>;

/// One writer job per call.
#[async_trait]
impl SagaStore for SqliteStore {
    async fn step_attempt(&self, o: OrderId, s: Step, now: DateTime<Utc>) -> SResult<()> {
        self.saga_job(move |t| t.step_attempt(o, s, now)).await
    }
    async fn step_result(
        &self,
        o: OrderId,
        s: Step,
        e: Option<&str>,
        now: DateTime<Utc>,
    ) -> SResult<()> {
        let e = e.map(str::to_owned);
        self.saga_job(move |t| t.step_result(o, s, e.as_deref(), now))
            .await
    }
    async fn reserve(
        &self,
        o: OrderId,
        i: &[SagaItem],
        now: DateTime<Utc>,
    ) -> SResult<Reservation> {
        let i = i.to_vec();
        self.saga_job(move |t| t.reserve(o, &i, now)).await
    }
    async fn release(&self, o: OrderId, now: DateTime<Utc>) -> SResult<bool> {
        self.saga_job(move |t| t.release(o, now)).await
    }
    async fn charge(&self, o: OrderId) -> SResult<Option<Charge>> {
        self.saga_job(move |t| t.charge(o)).await
    }
    async fn record_charge(
        &self,
        o: OrderId,
        c: &Charge,
        m: &str,
        now: DateTime<Utc>,
    ) -> SResult<Charge> {
        let (c, m) = (c.clone(), m.to_owned());
        self.saga_job(move |t| t.record_charge(o, &c, &m, now))
            .await
    }
    async fn refund(&self, o: OrderId, now: DateTime<Utc>) -> SResult<bool> {
        self.saga_job(move |t| t.refund(o, now)).await
    }
    async fn notify(
        &self,
        o: OrderId,
        c: &CustomerId,
        kind: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> SResult<bool> {
        let (c, kind, message) = (c.clone(), kind.to_owned(), message.to_owned());
        self.saga_job(move |t| t.notify(o, &c, &kind, &message, now))
            .await
    }
    async fn issue_voucher(
        &self,
        o: OrderId,
        c: &CustomerId,
        code: &VoucherCode,
        discount: Cents,
        now: DateTime<Utc>,
    ) -> SResult<VoucherCode> {
        let (c, code) = (c.clone(), code.clone());
        self.saga_job(move |t| t.issue_voucher(o, &c, &code, discount, now))
            .await
    }
    async fn withdraw_voucher(&self, o: OrderId, now: DateTime<Utc>) -> SResult<bool> {
        self.saga_job(move |t| t.withdraw_voucher(o, now)).await
    }
    async fn restore_voucher(
        &self,
        code: &VoucherCode,
        o: OrderId,
        now: DateTime<Utc>,
    ) -> SResult<bool> {
        let code = code.clone();
        self.saga_job(move |t| t.restore_voucher(&code, o, now))
            .await
    }
    async fn set_status(
        &self,
        o: OrderId,
        s: Step,
        to: OrderStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> SResult<StatusChange> {
        let reason = reason.map(str::to_owned);
        self.saga_job(move |t| t.set_status(o, s, to, reason.as_deref(), now))
            .await
    }
}
