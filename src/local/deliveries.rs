//! The dispatcher: sends the deliveries of the public events to their subscribers (one signed
//! POST per event and subscription, `send.rs`), retries failures with backoff (`backoff.rs`)
//! and records every outcome, on the embedded runtime.
//!
//! The `deliveries` table is the to-do list: its rows are written with the events they carry,
//! so a crash loses nothing, and whatever was PENDING when the process stopped is simply due
//! again on the next start (at least once: a delivery sent but not yet recorded is sent again,
//! with the same `webhook-id`). The dispatcher wakes on commit (`events_signal`), at the
//! earliest end of a backoff, and at least every [`POLL`]; there is no fixed sleep between an
//! event and its delivery.
//!
//! Isolation: each subscription has at most `concurrency` deliveries in flight, each bounded by
//! [`TIMEOUT`], and the loop never waits for one (they run as tasks, their outcomes come back
//! to it), so a subscriber that hangs or fails uses up only its own slots and never delays
//! another's deliveries, the saga or the API. Its reads use the reader pool, and the outcomes
//! are written in batches, one background writer job at a time. Order per order and
//! subscription is the store's rule (`SubscriptionStore::due`): a delivery is offered only once
//! the order's earlier ones to that subscription are delivered or dead-lettered, and one in
//! flight stays PENDING until its outcome is recorded.

mod backoff;
mod outcome;
mod send;

use crate::http::subscriptions::UrlPolicy;
use backoff::Backoff;
use chrono::Utc;
use orders_domain::SubscriptionId;
use orders_domain::store::StoreError;
use orders_domain::subscriptions::{DeliveryOutcome, DueDelivery, SubscriptionStore, Target};
use outcome::Attempted;
use send::Sender;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// How long one attempt may take, connecting and the answer included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The dispatcher looks for due deliveries at least this often, signal or not.
pub const POLL: Duration = Duration::from_secs(1);

/// The dispatcher's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliverySettings {
    /// Deliveries in flight at once, per subscription (`--delivery-concurrency`).
    pub concurrency: usize,
    /// Multiplies every backoff delay and the retry window (`--retry-delay-scale`).
    pub delay_scale: f64,
    /// Loopback and private subscriber addresses (`--allow-private-subscribers`).
    pub allow_private: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            concurrency: 16,
            delay_scale: 1.0,
            allow_private: false,
        }
    }
}

impl DeliverySettings {
    pub fn policy(&self) -> UrlPolicy {
        UrlPolicy {
            allow_private: self.allow_private,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the delivery client: {0}")]
pub struct DeliveryError(#[from] reqwest::Error);

/// The running dispatcher.
pub struct Deliveries {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Deliveries {
    /// Starts dispatching the deliveries in `store`, woken by `wake` after commits that may
    /// have added some; `created` is notified when a subscription is created (the dispatcher
    /// otherwise reads the subscriptions again at most every [`POLL`]).
    pub fn start(
        store: Arc<dyn SubscriptionStore>,
        wake: Arc<Notify>,
        created: Arc<Notify>,
        settings: DeliverySettings,
    ) -> Result<Self, DeliveryError> {
        let concurrency = settings.concurrency.max(1);
        let sender = Sender::new(settings.policy(), TIMEOUT, concurrency)?;
        let (stop, stopped) = watch::channel(false);
        let dispatcher = Dispatcher {
            store,
            wake,
            created,
            targets: Vec::new(),
            targets_read: None,
            sender: Arc::new(sender),
            concurrency,
            backoff: Backoff::new(settings.delay_scale),
            in_flight: HashMap::new(),
            sends: JoinSet::new(),
            tasks: HashMap::new(),
            done: Vec::new(),
            writing: None,
            write_after: None,
        };
        let task = tokio::spawn(dispatcher.run(stopped));
        Ok(Deliveries { stop, task })
    }

    /// Stops sending (attempts in flight are dropped, and sent again on the next start) and
    /// records the outcomes already known, within `grace`.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!("the delivery dispatcher did not stop in time");
            task.abort();
        }
    }
}

/// The write running, and what it writes.
type Writing = (JoinHandle<Result<(), StoreError>>, Vec<DeliveryOutcome>);

/// A subscription's deliveries under way.
#[derive(Debug, Default)]
struct Slots {
    /// Requests open: what `concurrency` bounds.
    sending: usize,
    /// Events sent (answered or not) whose outcome is not recorded yet: still PENDING in
    /// the store, so not offered again, and their orders' later events wait.
    unrecorded: Vec<i64>,
}

struct Dispatcher {
    store: Arc<dyn SubscriptionStore>,
    wake: Arc<Notify>,
    created: Arc<Notify>,
    /// The enabled subscriptions as last read, and when. Read again after a creation and
    /// every [`POLL`]: a subscription deleted or disabled meanwhile has nothing due, so the
    /// passes in between cost no read when no subscription exists.
    targets: Vec<Arc<Target>>,
    targets_read: Option<Instant>,
    sender: Arc<Sender>,
    concurrency: usize,
    backoff: Backoff,
    in_flight: HashMap<SubscriptionId, Slots>,
    sends: JoinSet<Attempted>,
    /// Which delivery each send task is, to free its slot should the task fail.
    tasks: HashMap<tokio::task::Id, (SubscriptionId, i64)>,
    /// Outcomes waiting for the next write.
    done: Vec<DeliveryOutcome>,
    writing: Option<Writing>,
    /// After a failed write: not again before this.
    write_after: Option<Instant>,
}

impl Dispatcher {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            let mut wake_at = self.dispatch().await;
            self.write();
            if let Some(at) = self.write_after {
                wake_at = wake_at.min(at);
            }
            let (wake, created) = (self.wake.clone(), self.created.clone());
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(done) = self.sends.join_next_with_id() => {
                    self.finished(done);
                    while let Some(done) = self.sends.try_join_next_with_id() {
                        self.finished(done);
                    }
                }
                written = wait(&mut self.writing), if self.writing.is_some() => {
                    if let Some((_, batch)) = self.writing.take() {
                        self.written(written, batch);
                    }
                }
                _ = wake.notified() => {}
                _ = created.notified() => self.targets_read = None,
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
        self.shutdown().await;
    }

    /// Starts every delivery due now that a free slot allows; returns when to look again.
    /// The subscriptions are read side by side, so one with a long backlog does not hold up
    /// the others' next deliveries.
    async fn dispatch(&mut self) -> Instant {
        let mut next = Instant::now() + POLL;
        if self.targets_read.is_none_or(|at| at.elapsed() >= POLL) {
            match self.store.targets().await {
                Ok(targets) => {
                    self.targets = targets.into_iter().map(Arc::new).collect();
                    self.targets_read = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the subscriptions; trying again shortly");
                    return next;
                }
            }
        }
        let now = Utc::now();
        let mut reads = JoinSet::new();
        for target in self.targets.clone() {
            let slots = self.in_flight.get(&target.id);
            let sending = slots.map_or(0, |s| s.sending);
            if sending >= self.concurrency {
                continue;
            }
            let room = self.concurrency - sending;
            let unrecorded = slots.map(|s| s.unrecorded.clone()).unwrap_or_default();
            let store = self.store.clone();
            reads.spawn(async move {
                let batch = store.due(target.id, now, room, &unrecorded).await;
                (target, batch)
            });
        }
        while let Some(read) = reads.join_next().await {
            let Ok((target, batch)) = read else { continue };
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(subscription = %target.id, error = %e, "cannot read due deliveries");
                    continue;
                }
            };
            if let Some(at) = batch.next_retry_at {
                let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                next = next.min(Instant::now() + wait);
            }
            for delivery in batch.deliveries {
                self.spawn(target.clone(), delivery);
            }
        }
        next
    }

    fn spawn(&mut self, target: Arc<Target>, delivery: DueDelivery) {
        let key = (target.id, delivery.event_seq);
        let slots = self.in_flight.entry(key.0).or_default();
        slots.sending += 1;
        slots.unrecorded.push(key.1);
        let sender = self.sender.clone();
        let handle = self.sends.spawn(async move {
            let at = Utc::now();
            let answer = sender.attempt(&target, &delivery, at).await;
            Attempted {
                delivery,
                at,
                answer,
            }
        });
        self.tasks.insert(handle.id(), key);
    }

    /// The request for `subscription` is over (its outcome not necessarily recorded).
    fn answered(&mut self, subscription: SubscriptionId) {
        if let Some(slots) = self.in_flight.get_mut(&subscription) {
            slots.sending = slots.sending.saturating_sub(1);
        }
    }

    /// The outcome of `seq` is recorded (or lost, and the delivery still PENDING).
    fn release(&mut self, (subscription, seq): (SubscriptionId, i64)) {
        if let Some(slots) = self.in_flight.get_mut(&subscription) {
            slots.unrecorded.retain(|s| *s != seq);
            if slots.sending == 0 && slots.unrecorded.is_empty() {
                self.in_flight.remove(&subscription);
            }
        }
    }

    fn finished(&mut self, done: Result<(tokio::task::Id, Attempted), tokio::task::JoinError>) {
        match done {
            Ok((id, attempted)) => {
                self.tasks.remove(&id);
                self.answered(attempted.delivery.subscription);
                let outcome = attempted.outcome(&self.backoff);
                self.done.push(outcome);
            }
            Err(e) => {
                // Not recorded: still PENDING, so it is offered again.
                tracing::error!(error = %e, "a delivery attempt failed unexpectedly");
                if let Some(key) = self.tasks.remove(&e.id()) {
                    self.answered(key.0);
                    self.release(key);
                }
            }
        }
    }

    /// Writes the outcomes waiting, unless a write runs (the next takes what gathered
    /// meanwhile: one job for many outcomes under load) or the last one failed just now.
    fn write(&mut self) {
        if self.done.is_empty() || self.writing.is_some() {
            return;
        }
        if self.write_after.is_some_and(|at| at > Instant::now()) {
            return;
        }
        self.write_after = None;
        let batch = std::mem::take(&mut self.done);
        let store = self.store.clone();
        let outcomes = batch.clone();
        let handle = tokio::spawn(async move { store.record_attempts(outcomes).await });
        self.writing = Some((handle, batch));
    }

    fn written(
        &mut self,
        written: Result<Result<(), StoreError>, tokio::task::JoinError>,
        mut batch: Vec<DeliveryOutcome>,
    ) {
        match written {
            Ok(Ok(())) => {
                for o in batch {
                    self.release((o.subscription, o.event_seq));
                }
            }
            Ok(Err(e)) => {
                // Kept, and written again shortly; the deliveries stay in flight meanwhile,
                // so none is sent twice for want of a record.
                tracing::warn!(error = %e, outcomes = batch.len(), "cannot record delivery outcomes; trying again");
                batch.append(&mut self.done);
                self.done = batch;
                self.write_after = Some(Instant::now() + POLL);
            }
            Err(e) => {
                // Not recorded: still PENDING, so they are offered (and sent) again.
                tracing::error!(error = %e, "the outcome writer failed; those deliveries are sent again");
                for o in batch {
                    self.release((o.subscription, o.event_seq));
                }
            }
        }
    }

    async fn shutdown(mut self) {
        // Unrecorded attempts stay PENDING: sent again on the next start.
        self.sends.abort_all();
        if let Some((writing, _)) = self.writing.take() {
            let _ = writing.await;
        }
        if !self.done.is_empty() {
            let done = std::mem::take(&mut self.done);
            if let Err(e) = self.store.record_attempts(done).await {
                tracing::warn!(error = %e, "delivery outcomes not recorded at shutdown; those deliveries are sent again");
            }
        }
    }
}

async fn wait<T>(
    writing: &mut Option<(JoinHandle<T>, Vec<DeliveryOutcome>)>,
) -> Result<T, tokio::task::JoinError> {
    match writing {
        Some((handle, _)) => handle.await,
        None => std::future::pending().await,
    }
}
