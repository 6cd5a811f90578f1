//! Internal signals from the SQLite outbox to the local executor, through the real relay and
//! `ExecutorSignaller`: a payment result answers its waiting task, a cancellation fails the
//! task its execution waits in, a signal nothing waits for any more is done (not retried, not
//! parked), and a delivery the executor cannot take now stays in the outbox and lands later,
//! after a restart too.
//!
//! The rows are written behind the store's back, as the lifecycle writes them: a `SignalEvent`
//! envelope with the order's id.

use orders::local::saga::ExecutorStarter;
use orders::local::signals::ExecutorSignaller;
use orders_domain::{OrderId, SignalEvent, TaskSignal};
use orders_processor::relay::{Relay, RelayOptions};
use orders_sqlite::SqliteStore;
use orders_test_support::temp_store;
use orders_workflow::asl::StateMachine;
use orders_workflow::executor::{
    ExecutionSnapshot, ExecutionStore, Executor, ExecutorOptions, TaskContext, TaskError,
    TaskHandler,
};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A payment-like callback Task: the handler gets the token, the signal answers it.
fn machine() -> StateMachine {
    let definition = json!({"StartAt": "Pay", "States": {
        "Pay": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "${Pay}", "Payload": {"taskToken.$": "$$.Task.Token"}},
            "ResultPath": "$.payment",
            "TimeoutSeconds": 900,
            "Next": "Paid",
            "Catch": [{"ErrorEquals": ["PaymentDeclined", "OrderCancelled"], "ResultPath": "$.error", "Next": "Compensate"}]
        },
        "Paid": {"Type": "Succeed"},
        "Compensate": {"Type": "Pass", "End": true}
    }});
    StateMachine::load(&definition.to_string(), &BTreeSet::from(["Pay".to_owned()])).unwrap()
}

/// Passes each token on, as RequestPayment hands it to the provider.
struct Pay(mpsc::UnboundedSender<(String, String)>);

#[async_trait::async_trait]
impl TaskHandler for Pay {
    async fn invoke(&self, input: Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        let token = input["taskToken"].as_str().unwrap_or_default().to_owned();
        let _ = self.0.send((ctx.execution.clone(), token));
        Ok(Value::Null)
    }
}

fn executor(
    store: &Arc<SqliteStore>,
) -> (Arc<Executor>, mpsc::UnboundedReceiver<(String, String)>) {
    let (sent, received) = mpsc::unbounded_channel();
    let pay: Arc<dyn TaskHandler> = Arc::new(Pay(sent));
    let handlers = HashMap::from([("Pay".to_owned(), pay)]);
    let options = ExecutorOptions {
        delay_scale: 0.001,
        ..ExecutorOptions::default()
    };
    let executor = Executor::new(machine(), handlers, store.clone(), options).unwrap();
    (executor, received)
}

fn relay(store: &Arc<SqliteStore>, executor: &Arc<Executor>) -> Relay {
    Relay {
        source: store.clone(),
        starter: Arc::new(ExecutorStarter(executor.clone())),
        signaller: Arc::new(ExecutorSignaller(executor.clone())),
        signal: store.outbox_signal(),
        options: RelayOptions::default(),
    }
}

/// Starts `names` and returns each one's token once its wait is parked.
async fn waiting(
    executor: &Arc<Executor>,
    received: &mut mpsc::UnboundedReceiver<(String, String)>,
    names: &[&str],
) -> HashMap<String, String> {
    for name in names {
        executor.start(name, json!({})).await.unwrap();
    }
    let mut tokens = HashMap::new();
    while tokens.len() < names.len() {
        let (name, token) = tokio::time::timeout(Duration::from_secs(5), received.recv())
            .await
            .expect("no submission within 5 s")
            .expect("handler alive");
        tokens.insert(name, token);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while executor.waiting() < names.len() {
        assert!(std::time::Instant::now() < deadline, "not parked");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokens
}

/// Writes a signal row into the outbox as the store's lifecycle writes do; returns its id.
fn insert_signal(db: &Path, signal: TaskSignal) -> String {
    let order = OrderId::new();
    let event = SignalEvent::new(chrono::Utc::now(), order, signal);
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(
        "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
        [
            event.id.to_string(),
            order.to_string(),
            serde_json::to_string(&event).unwrap(),
            "2024-01-01T00:00:00.000Z".to_owned(),
        ],
    )
    .unwrap();
    event.id.to_string()
}

/// (published, attempts, parked) of an outbox row.
fn row(db: &Path, event_id: &str) -> (bool, i64, bool) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT published_at IS NOT NULL, attempts, dead_at IS NOT NULL FROM outbox WHERE event_id = ?1",
        [event_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

async fn finished(store: &SqliteStore, name: &str) -> ExecutionSnapshot {
    for _ in 0..500 {
        if let Some(s) = store.get(name).await.unwrap().filter(|s| s.is_finished()) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("execution {name} did not finish");
}

#[tokio::test]
async fn outbox_signals_reach_the_waiting_executions() {
    let (store, dir) = temp_store();
    let db = dir.path().join("orders.db");
    let (executor, mut received) = executor(&store);
    let tokens = waiting(&executor, &mut received, &["paid", "declined", "cancelled"]).await;
    let paid = TaskSignal::Succeed {
        token: tokens["paid"].clone(),
        output: json!({"paymentId": "pay_1", "status": "SUCCEEDED"}),
    };
    let rows = [
        insert_signal(&db, paid.clone()),
        insert_signal(
            &db,
            TaskSignal::Fail {
                token: tokens["declined"].clone(),
                error: "PaymentDeclined".into(),
                cause: "card declined".into(),
            },
        ),
        insert_signal(
            &db,
            TaskSignal::CancelWaiting {
                execution: "cancelled".into(),
                reason: Some("changed my mind".into()),
            },
        ),
        // Stale: a redelivery of the same result, and a cancel for no execution.
        insert_signal(&db, paid),
        insert_signal(
            &db,
            TaskSignal::CancelWaiting {
                execution: "nobody".into(),
                reason: None,
            },
        ),
    ];

    assert_eq!(relay(&store, &executor).pass().await.unwrap(), rows.len());
    for id in &rows {
        assert_eq!(row(&db, id), (true, 0, false), "row {id}: done, first time");
    }
    let paid = finished(&store, "paid").await;
    assert_eq!(
        (paid.state.as_str(), &paid.output.unwrap()["payment"]),
        (
            "Paid",
            &json!({"paymentId": "pay_1", "status": "SUCCEEDED"})
        )
    );
    let declined = finished(&store, "declined").await;
    assert_eq!(declined.state, "Compensate");
    assert_eq!(
        declined.output.unwrap()["error"],
        json!({"Error": "PaymentDeclined", "Cause": "card declined"})
    );
    let cancelled = finished(&store, "cancelled").await;
    assert_eq!(cancelled.state, "Compensate");
    assert_eq!(
        cancelled.output.unwrap()["error"],
        json!({"Error": "OrderCancelled", "Cause": "changed my mind"})
    );
    assert_eq!(executor.waiting(), 0);
}

#[tokio::test]
async fn a_signal_the_executor_cannot_take_waits_in_the_outbox_and_lands_after_a_restart() {
    let (store, dir) = temp_store();
    let db = dir.path().join("orders.db");
    let (first, mut received) = executor(&store);
    let tokens = waiting(&first, &mut received, &["later"]).await;
    first.shutdown().await;
    let id = insert_signal(
        &db,
        TaskSignal::Succeed {
            token: tokens["later"].clone(),
            output: json!("paid"),
        },
    );

    let refused = relay(&store, &first).pass().await;
    assert!(
        refused.is_err(),
        "a shutting-down executor is a retryable failure"
    );
    assert_eq!(
        row(&db, &id),
        (false, 1, false),
        "kept, its failure counted"
    );
    assert!(!store.get("later").await.unwrap().unwrap().is_finished());

    // The next process: resumes the parked wait, and the relay's retry delivers the signal.
    let (second, _received) = executor(&store);
    assert_eq!(second.resume_unfinished().await.unwrap(), 1);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(relay(&store, &second).run(stopped));
    let done = finished(&store, "later").await;
    assert_eq!(done.output.unwrap()["payment"], "paid");
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(row(&db, &id), (true, 1, false));
}

#[tokio::test]
async fn the_relay_takes_signals_before_a_backlog_of_starts() {
    use orders_processor::relay::OutboxSource;
    let (store, dir) = temp_store();
    let db = dir.path().join("orders.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut starts = Vec::new();
    for i in 0..6 {
        // `order.created` rows, as far as the relay's query sees them: older than the signal.
        let id = uuid::Uuid::now_v7().to_string();
        conn.execute(
            "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
            [
                id.clone(),
                format!("order-{i}"),
                json!({"type": "order.created", "id": id}).to_string(),
                "2024-01-01T00:00:00.000Z".to_owned(),
            ],
        )
        .unwrap();
        starts.push(id);
    }
    let signal = insert_signal(
        &db,
        TaskSignal::CancelWaiting {
            execution: "nobody".into(),
            reason: None,
        },
    );
    let ids = |seqs: &[i64]| -> Vec<String> {
        seqs.iter()
            .map(|seq| {
                conn.query_row("SELECT event_id FROM outbox WHERE seq = ?1", [seq], |r| {
                    r.get(0)
                })
                .unwrap()
            })
            .collect()
    };
    let batch = store.pending(3).await.unwrap();
    let seqs: Vec<i64> = batch.iter().map(|e| e.seq).collect();
    assert_eq!(
        ids(&seqs),
        [signal.clone(), starts[0].clone(), starts[1].clone()],
        "the signal first, then the oldest starts"
    );
    // Room for all: each row once, the signal first.
    let batch = store.pending(100).await.unwrap();
    let seqs: Vec<i64> = batch.iter().map(|e| e.seq).collect();
    let mut want = vec![signal];
    want.extend(starts);
    assert_eq!(ids(&seqs), want);
}
