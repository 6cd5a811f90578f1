//! The port an `arn:aws:states:::sqs:sendMessage.waitForTaskToken` Task puts its message on.
//!
//! Locally the queue is a table and the consumer (the warehouse worker) runs in process; on
//! AWS the same Task is Step Functions' SQS integration. A message is identified by its
//! `dedup_id`, the task token: a Task run again after a crash, before its wait was recorded,
//! sends the same message again, and the queue keeps one (one shipment request per order).

use super::finish::Record;
use async_trait::async_trait;
use serde_json::Value;

/// One message for a queue: `body` is the Task's rendered `MessageBody`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    pub dedup_id: String,
    pub body: Value,
}

#[derive(Debug, thiserror::Error)]
#[error("task queue: {0}")]
pub struct TaskQueueError(pub String);

#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Enqueues `message` on `queue` (the Task's `QueueUrl` substitution name, such as
    /// `WarehouseQueueUrl`) durably before returning. A message whose `dedup_id` the queue
    /// already holds (or held) is not enqueued again; that is Ok.
    async fn send(&self, queue: &str, message: QueueMessage) -> Result<(), TaskQueueError>;

    /// `send`, and `record` (the Task's wait, opened and submitted) in the same atomic write,
    /// for a queue kept in the executor's own store: the message and the wait it answers
    /// become visible together, so the wait still exists before anyone sees the token. The
    /// record is under the store's seq check, and a refused record sends nothing. The default
    /// writes nothing ([`Sent::Nothing`]), and the runner records the wait, then sends.
    async fn send_and_record(&self, queue: &str, message: QueueMessage, record: &Record) -> Sent {
        let _ = (queue, message, record);
        Sent::Nothing
    }
}

/// How [`TaskQueue::send_and_record`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The message and the record were written together.
    Recorded,
    /// The record no longer continues the stored history: nothing was written.
    Refused,
    /// Nothing was written (the queue cannot, or the write failed): the runner records the
    /// wait and sends the usual way, which reports a failure through Retry and Catch.
    Nothing,
}
