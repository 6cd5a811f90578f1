//! The port an `arn:aws:states:::sqs:sendMessage.waitForTaskToken` Task puts its message on.
//!
//! Locally the queue is a table and the consumer (the warehouse worker) runs in process; on
//! AWS the same Task is Step Functions' SQS integration. A message is identified by its
//! `dedup_id`, the task token: a Task run again after a crash, before its wait was recorded,
//! sends the same message again, and the queue keeps one (one shipment request per order).

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
}
