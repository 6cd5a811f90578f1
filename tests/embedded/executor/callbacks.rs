//! Callback Tasks (`.waitForTaskToken`) on the local executor over the SQLite store: the token
//! the handler or the queue gets is the one the token calls accept, answers flow through
//! ResultPath, Retry and Catch, deadlines (TimeoutSeconds, HeartbeatSeconds, scaled by
//! `timeout_scale`) fire once and survive a restart, closed and unknown tokens are refused with
//! Step Functions' exceptions, waiting executions hold no runner and no permit, and a wait can
//! be failed by execution name (a cancellation).
//!
//! The definitions are test-only: a Choice routes `{"plain": ..}` inputs to an ordinary Task
//! and everything else to the callback Task `W`, whose fields each test sets.

mod answers;
mod cancel;
mod deadlines;
mod restarts;

pub use super::helpers::*;
pub use orders_workflow::executor::{QueueMessage, TaskQueue, TaskQueueError, TaskTokenError};
use std::sync::{OnceLock, Weak};
pub use tokio::sync::mpsc;

pub const LAMBDA: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";
pub const SQS: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";

/// The callback Task `W` on the lambda integration, with `extra` fields merged over it.
pub fn lambda_task(extra: Value) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": LAMBDA,
        "Parameters": {"FunctionName": "${Notify}", "Payload": {"order.$": "$.order", "token.$": "$$.Task.Token"}},
        "ResultPath": "$.answer",
        "Next": "Done",
        "Catch": [{"ErrorEquals": ["Rejected", "States.Timeout", "States.HeartbeatTimeout"], "ResultPath": "$.error", "Next": "Caught"}]
    });
    merge(&mut task, extra);
    task
}

pub fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(into), Value::Object(extra)) = (into, extra) {
        into.extend(extra);
    }
}

pub fn machine(task: Value) -> StateMachine {
    let definition = json!({"StartAt": "Route", "States": {
        "Route": {"Type": "Choice", "Choices": [{"Variable": "$.plain", "IsPresent": true, "Next": "Plain"}], "Default": "W"},
        "W": task,
        "Plain": {"Type": "Task", "Resource": "${Plain}", "ResultPath": "$.plain", "Next": "Done"},
        "Done": {"Type": "Succeed"},
        "Caught": {"Type": "Pass", "End": true}
    }});
    let names = ["Notify", "Plain", "Warehouse"].map(String::from);
    StateMachine::load(&definition.to_string(), &BTreeSet::from(names)).unwrap()
}

pub fn opts(timeout_scale: f64) -> ExecutorOptions {
    ExecutorOptions {
        delay_scale: 0.001,
        timeout_scale,
        ..ExecutorOptions::default()
    }
}

pub fn input(id: &str) -> Value {
    json!({"order": {"id": id}})
}

/// What the callback handler does once it has passed the token on.
#[derive(Clone, Default)]
pub enum Mode {
    #[default]
    Return,
    /// Never returns (a crash mid-submission, once the executor is shut down).
    Hang,
    /// Answers the token itself before it returns.
    AnswerFirst(Arc<OnceLock<Weak<Executor>>>),
}

/// One submission: the execution, and the token its payload or message carried.
#[derive(Debug, Clone)]
pub struct Received {
    pub execution: String,
    pub token: String,
    pub body: Value,
}

/// The `${Notify}` handler: passes every payload on, then does what `mode` says.
pub struct Inbox {
    pub sent: mpsc::UnboundedSender<Received>,
    pub mode: Mode,
}

#[async_trait]
impl TaskHandler for Inbox {
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        let token = input["token"].as_str().unwrap_or_default().to_owned();
        let _ = self.sent.send(Received {
            execution: ctx.execution.clone(),
            token: token.clone(),
            body: input.clone(),
        });
        match &self.mode {
            Mode::Return => {}
            Mode::Hang => std::future::pending::<()>().await,
            Mode::AnswerFirst(executor) => {
                let executor = executor.get().and_then(Weak::upgrade).expect("set");
                executor
                    .send_task_success(&token, json!({"early": true}))
                    .await
                    .expect("the wait is recorded before the handler runs");
            }
        }
        // Ignored: a callback Task's result is what arrives with its token.
        Ok(json!("ignored"))
    }
}

/// A queue that keeps what it is sent.
#[derive(Default)]
pub struct Outbox {
    pub messages: Mutex<Vec<(String, QueueMessage)>>,
}

#[async_trait]
impl TaskQueue for Outbox {
    async fn send(&self, queue: &str, message: QueueMessage) -> Result<(), TaskQueueError> {
        self.messages
            .lock()
            .unwrap()
            .push((queue.to_owned(), message));
        Ok(())
    }
}

pub fn handlers(
    mode: Mode,
) -> (
    HashMap<String, Arc<dyn TaskHandler>>,
    mpsc::UnboundedReceiver<Received>,
) {
    let (sent, received) = mpsc::unbounded_channel();
    let plain: Arc<dyn TaskHandler> = Arc::new(Scripted {
        script: Arc::new(|_: &Value, _: &TaskContext| Ok(json!("done"))),
        calls: Arc::default(),
        sleep: Duration::ZERO,
        hang: Arc::default(),
    });
    let notify: Arc<dyn TaskHandler> = Arc::new(Inbox { sent, mode });
    let handlers = HashMap::from([("Notify".to_owned(), notify), ("Plain".to_owned(), plain)]);
    (handlers, received)
}

/// An executor of `task` over `store`, with the submissions its handler receives.
pub fn executor_on(
    store: &Arc<SqliteStore>,
    task: Value,
    options: ExecutorOptions,
    mode: Mode,
) -> (Arc<Executor>, mpsc::UnboundedReceiver<Received>) {
    let (handlers, received) = handlers(mode.clone());
    let executor = Executor::new(machine(task), handlers, store.clone(), options).unwrap();
    if let Mode::AnswerFirst(slot) = mode {
        let _ = slot.set(Arc::downgrade(&executor));
    }
    (executor, received)
}

pub async fn next(received: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .expect("no submission within 5 s")
        .expect("the handler is alive")
}

/// Short bounded polling for a condition the executor exposes no event for.
pub async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub async fn finished(store: &SqliteStore, name: &str) -> ExecutionSnapshot {
    wait_for(store, name, |s| s.is_finished()).await
}

pub fn kinds(history: &[HistoryEvent]) -> Vec<Kind> {
    history.iter().map(|e| e.kind).collect()
}
