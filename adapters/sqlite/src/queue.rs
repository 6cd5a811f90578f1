//! The local task queues as a table: the [`TaskQueue`] a `sqs:sendMessage.waitForTaskToken`
//! Task sends on, and the consumer side of SQS in miniature (receive with a visibility
//! timeout, delete by receipt, change visibility) for the in-process worker.
//!
//! # Invariants
//!
//! - A queue holds one message per `dedup_id` (the task token) for as long as the database
//!   lives: a deleted message keeps its row as a tombstone (body dropped, `deleted_at_ms`
//!   set), so a Task run again after its message was consumed cannot send it a second time.
//!   Tombstones are about a hundred bytes each, one per shipment ever requested, and nothing
//!   purges them yet; a purge would be safe for those older than any execution that could
//!   still run its Task again.
//! - A message is received by one consumer at a time: a receive is one writer job that picks
//!   the visible messages and makes them invisible until `now + visibility`, and jobs run one
//!   after another. Once that time has passed the message is received again, with a new
//!   receipt and its `receive_count` one higher.
//! - A receipt is valid until the message's next receive: `delete` and `change_visibility`
//!   with an older one change nothing, so a consumer whose message was redelivered cannot
//!   delete it from under the one now holding it.
//! - FIFO within a queue: messages are received in send order (`seq`, the row id).
//! - A message never received is visible whatever clock the consumer passes as `now`.
//!
//! Every write goes through the writer and is committed before it is answered. None waits
//! for space: a write refused for want of it is [`QueueError::Store`] with
//! [`StoreError::StorageFull`], and the caller (the executor's retry, the worker's loop)
//! backs off itself. A `send` that added a message notifies [`SqliteStore::queue_signal`]
//! after its commit, so a consumer waits on that rather than polling.

use super::executions::Encoded;
use super::{SqliteStore, all, exec, one, sqlite_err};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::store::StoreError;
use orders_workflow::executor::{QueueMessage, Record, Sent, TaskQueue, TaskQueueError};
use rusqlite::params;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// The largest message body, as JSON text: SQS's limit (256 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The live messages of a queue that are visible at `?2`, oldest first, at most `?3`.
pub(crate) const RECEIVE_SQL: &str = "SELECT seq, message_id, body, receive_count, sent_at_ms
     FROM queue_messages
     WHERE queue = ?1 AND deleted_at_ms IS NULL AND visible_at_ms <= ?2
     ORDER BY seq LIMIT ?3";

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(
        "message body is {bytes} bytes, more than the {MAX_BODY_BYTES} a queue message may hold"
    )]
    BodyTooLarge { bytes: usize },
    #[error("message body is not JSON: {0}")]
    Body(serde_json::Error),
    #[error("queue message {seq} is unreadable: {reason}")]
    Unreadable { seq: i64, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The handle one receive of a message gave its consumer, for `delete` and
/// `change_visibility`. Each receive makes a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt(Uuid);

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Receipt {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Receipt)
    }
}

/// A message as one receive handed it out.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    pub message_id: Uuid,
    pub receipt: Receipt,
    pub body: Value,
    /// How often the message has been received, this time included.
    pub receive_count: u32,
    pub sent_at: DateTime<Utc>,
}

/// The live messages of a queue at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub visible: u32,
    /// Received and not yet visible again.
    pub in_flight: u32,
}

/// One wake-up per queue name, made on first use by a sender or a consumer.
#[derive(Default)]
pub(crate) struct QueueSignals(Mutex<HashMap<String, Arc<Notify>>>);

impl QueueSignals {
    fn get(&self, queue: &str) -> Arc<Notify> {
        // The map only ever gains entries: one left by a panicking holder is still whole.
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(queue.to_owned()).or_default().clone()
    }
}

/// A receive's row, as read on the writer thread: the body is parsed after the job.
struct Taken {
    seq: i64,
    message_id: String,
    receipt: Receipt,
    body: String,
    receive_count: u32,
    sent_at_ms: i64,
}

impl Taken {
    fn into_message(self) -> Result<ReceivedMessage, QueueError> {
        let unreadable = |reason: String| QueueError::Unreadable {
            seq: self.seq,
            reason,
        };
        Ok(ReceivedMessage {
            message_id: Uuid::parse_str(&self.message_id)
                .map_err(|e| unreadable(format!("message id: {e}")))?,
            receipt: self.receipt,
            body: serde_json::from_str(&self.body).map_err(|e| unreadable(format!("body: {e}")))?,
            receive_count: self.receive_count,
            sent_at: DateTime::from_timestamp_millis(self.sent_at_ms)
                .ok_or_else(|| unreadable(format!("sent at {}", self.sent_at_ms)))?,
        })
    }
}

/// `now + visibility` in milliseconds; a visibility past the end of time saturates.
fn until_ms(now: DateTime<Utc>, visibility: Duration) -> i64 {
    let ms = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX);
    now.timestamp_millis().saturating_add(ms)
}

/// A message as the queue table stores it, checked and serialized before its write job.
struct Outgoing {
    queue: String,
    dedup_id: String,
    message_id: String,
    body: String,
    sent_at_ms: i64,
}

impl Outgoing {
    fn new(queue: &str, message: &QueueMessage) -> Result<Self, QueueError> {
        let body = serde_json::to_string(&message.body).map_err(QueueError::Body)?;
        if body.len() > MAX_BODY_BYTES {
            return Err(QueueError::BodyTooLarge { bytes: body.len() });
        }
        Ok(Outgoing {
            queue: queue.to_owned(),
            dedup_id: message.dedup_id.clone(),
            message_id: Uuid::new_v4().to_string(),
            body,
            sent_at_ms: Utc::now().timestamp_millis(),
        })
    }

    /// Adds the message unless the queue holds or held its `dedup_id`: whether it was added.
    fn insert(&self, conn: &rusqlite::Connection) -> Result<bool, StoreError> {
        let Outgoing {
            queue,
            dedup_id,
            message_id,
            body,
            sent_at_ms,
        } = self;
        exec(
            conn,
            "INSERT INTO queue_messages
                 (queue, dedup_id, message_id, body, sent_at_ms, visible_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 0) ON CONFLICT (queue, dedup_id) DO NOTHING",
            params![queue, dedup_id, message_id, body, sent_at_ms],
        )
        .map(|added| added == 1)
        .map_err(sqlite_err)
    }
}

impl SqliteStore {
    /// Notified after each commit that added a message to `queue` (and when a consumer gives
    /// a message back with a zero visibility). A waiting consumer receives until the queue
    /// answers nothing, then waits again: the permit `Notify` keeps for a notification
    /// without a waiter covers a send between the two.
    pub fn queue_signal(&self, queue: &str) -> Arc<Notify> {
        self.queue_signals.get(queue)
    }

    /// [`TaskQueue::send`], telling whether the message was added (`false`: the queue holds
    /// or held its `dedup_id`).
    pub async fn enqueue(&self, queue: &str, message: &QueueMessage) -> Result<bool, QueueError> {
        let outgoing = Outgoing::new(queue, message)?;
        let added = self
            .write_background(move |conn| outgoing.insert(conn))
            .await?;
        if added {
            self.queue_signal(queue).notify_one();
        }
        Ok(added)
    }

    /// Up to `max` visible messages of `queue`, oldest first, each made invisible until
    /// `now + visibility` under a new receipt. A queue with nothing visible is answered from
    /// a read connection, without a writer job.
    pub async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let (now_ms, until) = (now.timestamp_millis(), until_ms(now, visibility));
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let name = queue.to_owned();
        if max == 0 || !self.any_visible(name.clone(), now_ms).await? {
            return Ok(Vec::new());
        }
        let taken = self
            .write_background(move |conn| {
                let rows = all(conn, RECEIVE_SQL, params![name, now_ms, limit], |r| {
                    Ok(Taken {
                        seq: r.get(0)?,
                        message_id: r.get(1)?,
                        receipt: Receipt(Uuid::new_v4()),
                        body: r.get(2)?,
                        receive_count: r.get::<_, u32>(3)?.saturating_add(1),
                        sent_at_ms: r.get(4)?,
                    })
                })
                .map_err(sqlite_err)?;
                for row in &rows {
                    exec(
                        conn,
                        "UPDATE queue_messages
                         SET receipt = ?2, visible_at_ms = ?3, receive_count = ?4 WHERE seq = ?1",
                        params![row.seq, row.receipt.to_string(), until, row.receive_count],
                    )
                    .map_err(sqlite_err)?;
                }
                Ok(rows)
            })
            .await?;
        taken.into_iter().map(Taken::into_message).collect()
    }

    async fn any_visible(&self, queue: String, now_ms: i64) -> Result<bool, QueueError> {
        const SQL: &str = "SELECT EXISTS (SELECT 1 FROM queue_messages
                           WHERE queue = ?1 AND deleted_at_ms IS NULL AND visible_at_ms <= ?2)";
        let any = self
            .read(move |conn| {
                one(conn, SQL, params![queue, now_ms], |r| r.get(0)).map_err(sqlite_err)
            })
            .await?;
        Ok(any)
    }

    /// Deletes the message `receipt` was handed out for, leaving its tombstone; `false` if
    /// the receipt is unknown, or stale (the message was received again since, or deleted).
    pub async fn delete(&self, queue: &str, receipt: &Receipt) -> Result<bool, QueueError> {
        let (name, receipt) = (queue.to_owned(), receipt.to_string());
        let deleted_at_ms = Utc::now().timestamp_millis();
        let changed = self
            .write_background(move |conn| {
                exec(
                    conn,
                    "UPDATE queue_messages SET body = NULL, receipt = NULL, deleted_at_ms = ?3
                     WHERE queue = ?1 AND receipt = ?2 AND deleted_at_ms IS NULL",
                    params![name, receipt, deleted_at_ms],
                )
                .map_err(sqlite_err)
            })
            .await?;
        Ok(changed == 1)
    }

    /// Makes the message of `receipt` invisible until `now + visibility` instead (zero: visible
    /// again at once, given back); `false` for an unknown or stale receipt. A consumer extends
    /// it this way while it is still working on the message.
    pub async fn change_visibility(
        &self,
        queue: &str,
        receipt: &Receipt,
        visibility: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, QueueError> {
        let (name, receipt_text) = (queue.to_owned(), receipt.to_string());
        let until = until_ms(now, visibility);
        let changed = self
            .write_background(move |conn| {
                exec(
                    conn,
                    "UPDATE queue_messages SET visible_at_ms = ?3
                     WHERE queue = ?1 AND receipt = ?2 AND deleted_at_ms IS NULL",
                    params![name, receipt_text, until],
                )
                .map_err(sqlite_err)
            })
            .await?
            == 1;
        if changed && visibility.is_zero() {
            self.queue_signal(queue).notify_one();
        }
        Ok(changed)
    }

    /// The live (not deleted) messages of `queue` at `now`: visible, and in flight.
    pub async fn depth(&self, queue: &str, now: DateTime<Utc>) -> Result<QueueDepth, QueueError> {
        const SQL: &str = "SELECT count(*) FILTER (WHERE visible_at_ms <= ?2),
                                  count(*) FILTER (WHERE visible_at_ms > ?2)
                           FROM queue_messages WHERE queue = ?1 AND deleted_at_ms IS NULL";
        let (name, now_ms) = (queue.to_owned(), now.timestamp_millis());
        let depth = self
            .read(move |conn| {
                one(conn, SQL, params![name, now_ms], |r| {
                    Ok(QueueDepth {
                        visible: r.get(0)?,
                        in_flight: r.get(1)?,
                    })
                })
                .map_err(sqlite_err)
            })
            .await?;
        Ok(depth)
    }
}

#[async_trait]
impl TaskQueue for SqliteStore {
    async fn send(&self, queue: &str, message: QueueMessage) -> Result<(), TaskQueueError> {
        self.enqueue(queue, &message)
            .await
            .map(|_| ())
            .map_err(|e| TaskQueueError(e.to_string()))
    }

    /// The wait is recorded first, and the message added only if it was: a refused record
    /// leaves no message whose token no wait knows.
    async fn send_and_record(&self, queue: &str, message: QueueMessage, record: &Record) -> Sent {
        let sent = async {
            let record = Encoded::new(&record.snapshot, &record.events)?;
            let outgoing = Outgoing::new(queue, &message)?;
            self.write_background(move |conn| {
                if !record.write(conn)? {
                    return Ok(Sent::Refused);
                }
                outgoing.insert(conn)?;
                Ok(Sent::Recorded)
            })
            .await
            .map_err(QueueError::Store)
        };
        match sent.await {
            Ok(sent) => {
                if sent == Sent::Recorded {
                    self.queue_signal(queue).notify_one();
                }
                sent
            }
            // Nothing was written; the runner's usual way reports why.
            Err(_) => Sent::Nothing,
        }
    }
}
