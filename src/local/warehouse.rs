//! The warehouse worker: the consumer of the local shipment queue (the `WarehouseQueueUrl`
//! table the PrepareShipment Task sends on), answering each request through the executor's
//! task-token API as a warehouse system would through Step Functions'.
//!
//! A request is `{orderId, items, taskToken}`. "Packing" takes the configured time, with a
//! heartbeat about every third of the Task's HeartbeatSeconds so a long packing keeps its task
//! alive (and its message invisible to other consumers); then the task succeeds with
//! `{trackingNumber, shippedAt}` or, at the configured failure rate, fails with
//! `WarehouseRefused`. Invariants:
//!
//! - A message is deleted only once its task has its answer, or can never take one (the token
//!   is unknown, malformed or closed). A store failure or the executor shutting down leaves
//!   the message, which is received again after its visibility timeout: a crash mid-packing
//!   packs again with the same token, and the executor keeps the first answer.
//! - At most `concurrency` messages are packed at once; more stay in the queue.
//! - Stopping gives the messages in hand back to the queue at once (visibility 0), so the
//!   next start packs them without waiting out a visibility timeout; a failure that may last
//!   (the store) leaves its message hidden instead, so retries come at the visibility's pace.

use chrono::Utc;
use orders_domain::Shipment;
use orders_sqlite::{ReceivedMessage, SqliteStore};
use orders_workflow::executor::{Executor, TaskTokenError};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// The error a refused shipment fails its task with.
pub const WAREHOUSE_REFUSED: &str = "WarehouseRefused";

#[derive(Debug, Clone, PartialEq)]
pub struct WarehouseSettings {
    /// The queue's substitution name.
    pub queue: String,
    /// How long packing one parcel takes.
    pub packing: Duration,
    /// Share (0.0-1.0) of shipments refused.
    pub failure_rate: f64,
    /// Between heartbeats: about a third of the Task's (scaled) HeartbeatSeconds.
    pub heartbeat_every: Duration,
    /// How long a received message stays hidden from other receives; extended with each
    /// heartbeat while packing.
    pub visibility: Duration,
    /// Parcels packed at once.
    pub concurrency: usize,
    /// How often the queue is looked at without a send signal (messages whose visibility
    /// ran out, sends from another process).
    pub poll: Duration,
}

impl WarehouseSettings {
    pub fn new(packing: Duration, failure_rate: f64, heartbeat: Option<Duration>) -> Self {
        // Without HeartbeatSeconds a heartbeat still keeps the message hidden while packing.
        let heartbeat_every = heartbeat.map_or(Duration::from_secs(10), |h| h / 3);
        WarehouseSettings {
            queue: "WarehouseQueueUrl".into(),
            packing,
            failure_rate,
            heartbeat_every: heartbeat_every.max(Duration::from_millis(1)),
            visibility: Duration::from_secs(30),
            concurrency: 64,
            poll: Duration::from_secs(1),
        }
    }
}

/// A shipment request, as the PrepareShipment Task's MessageBody renders it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentRequest {
    order_id: orders_domain::OrderId,
    task_token: String,
}

/// What becomes of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// Answered, or unanswerable for good: delete.
    Delete,
    /// Worth another try later: left hidden, it is received again after its visibility
    /// timeout, which paces the retries of a failing store.
    Leave,
    /// Stopping: visible again at once, for the next start.
    GiveBack,
}

/// The running worker.
pub struct Warehouse {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Warehouse {
    pub fn start(
        store: Arc<SqliteStore>,
        executor: Arc<Executor>,
        settings: WarehouseSettings,
    ) -> Warehouse {
        let (stop, stopped) = watch::channel(false);
        let worker = Worker {
            store,
            executor,
            settings: Arc::new(settings),
        };
        Warehouse {
            stop,
            task: tokio::spawn(worker.run(stopped)),
        }
    }

    /// Stops receiving, gives back the messages in hand and waits for that.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the warehouse worker ended abnormally");
        }
    }
}

#[derive(Clone)]
struct Worker {
    store: Arc<SqliteStore>,
    executor: Arc<Executor>,
    settings: Arc<WarehouseSettings>,
}

impl Worker {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let signal = self.store.queue_signal(&self.settings.queue);
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut packing = JoinSet::new();
        let mut failing = false;
        while !*stop.borrow() {
            while packing.try_join_next().is_some() {}
            let free = slots.available_permits();
            let received = if free == 0 {
                Ok(Vec::new())
            } else {
                let s = &self.settings;
                self.store
                    .receive(&s.queue, free, s.visibility, Utc::now())
                    .await
            };
            let got = match received {
                Ok(messages) => {
                    if failing {
                        tracing::info!("the warehouse queue answers again");
                        failing = false;
                    }
                    messages
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot receive from the warehouse queue");
                        failing = true;
                    }
                    Vec::new()
                }
            };
            if got.is_empty() {
                // A finished parcel frees a slot; a send wakes us; the poll covers the rest.
                tokio::select! {
                    _ = signal.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = slots.clone().acquire_owned(), if free == 0 => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for message in got {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    break;
                };
                let (worker, stop) = (self.clone(), stop.clone());
                packing.spawn(async move {
                    worker.handle(message, stop).await;
                    drop(permit);
                });
            }
        }
        while packing.join_next().await.is_some() {}
    }

    /// Packs one message and settles it with the queue.
    async fn handle(&self, message: ReceivedMessage, stop: watch::Receiver<bool>) {
        let queue = &self.settings.queue;
        let done = match serde_json::from_value::<ShipmentRequest>(message.body.clone()) {
            Ok(request) => self.pack(&request, &message, stop).await,
            Err(e) => {
                // Nobody could ever answer it: keeping it would redeliver it forever.
                tracing::error!(message_id = %message.message_id, error = %e, "unreadable shipment request dropped");
                Done::Delete
            }
        };
        let settled = match done {
            Done::Delete => self.store.delete(queue, &message.receipt).await,
            Done::Leave => Ok(true),
            Done::GiveBack => {
                let now = Utc::now();
                self.store
                    .change_visibility(queue, &message.receipt, Duration::ZERO, now)
                    .await
            }
        };
        if let Err(e) = settled {
            tracing::warn!(message_id = %message.message_id, error = %e, "could not settle a shipment request; it is received again later");
        }
    }

    async fn pack(
        &self,
        request: &ShipmentRequest,
        message: &ReceivedMessage,
        mut stop: watch::Receiver<bool>,
    ) -> Done {
        let order = request.order_id;
        let token = &request.task_token;
        let s = &self.settings;
        let ready = tokio::time::Instant::now() + s.packing;
        let first = tokio::time::Instant::now() + s.heartbeat_every;
        let mut beat = tokio::time::interval_at(first, s.heartbeat_every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(ready) => break,
                _ = beat.tick() => {
                    if let Err(e) = self.executor.send_task_heartbeat(token).await {
                        return settle(order, "heartbeat", e);
                    }
                    let extended = self.store.change_visibility(&s.queue, &message.receipt, s.visibility, Utc::now()).await;
                    if let Err(e) = extended {
                        tracing::warn!(%order, error = %e, "could not extend a shipment request's visibility");
                    }
                }
                _ = &mut stopped => return Done::GiveBack,
            }
        }
        let answered = if fastrand::f64() < s.failure_rate {
            let cause = format!("the warehouse refused to ship order {order}");
            self.executor
                .send_task_failure(token, WAREHOUSE_REFUSED, &cause)
                .await
                .map(|()| "refused")
        } else {
            let shipment = Shipment {
                tracking_number: format!("TRK-{:012X}", fastrand::u64(..1 << 48)),
                shipped_at: Utc::now(),
            };
            let output = serde_json::to_value(&shipment).expect("a shipment serializes");
            self.executor
                .send_task_success(token, output)
                .await
                .map(|()| "shipped")
        };
        match answered {
            Ok(what) => {
                tracing::info!(%order, receive_count = message.receive_count, "shipment {what}");
                Done::Delete
            }
            Err(e) => settle(order, "answer", e),
        }
    }
}

/// What a refused token call means for the message.
fn settle(order: orders_domain::OrderId, call: &str, e: TaskTokenError) -> Done {
    match e {
        TaskTokenError::TaskDoesNotExist
        | TaskTokenError::TaskTimedOut
        | TaskTokenError::InvalidToken => {
            tracing::warn!(%order, error = %e, "shipment request for a closed task dropped ({call})");
            Done::Delete
        }
        TaskTokenError::ShuttingDown | TaskTokenError::Store(_) => {
            tracing::warn!(%order, error = %e, "shipment request left for later ({call})");
            Done::Leave
        }
    }
}
