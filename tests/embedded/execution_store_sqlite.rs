//! The local executor's store on SQLite: a name is created once, and a write that does not
//! continue the stored history (a second runner of one execution) is refused, changing nothing.

use orders_test_support as common;

use chrono::Utc;
use orders_sqlite::SqliteStore;
use orders_workflow::executor::{
    ExecutionSnapshot, ExecutionStatus, ExecutionStore, ExecutionStoreError, HistoryEvent,
    HistoryEventKind,
};
use serde_json::json;

fn snapshot(seq: u64, state: &str, status: ExecutionStatus) -> ExecutionSnapshot {
    ExecutionSnapshot {
        name: "exec-1".into(),
        status,
        state: state.into(),
        state_input: json!({"n": seq}),
        state_entered_at: Utc::now(),
        input: json!({}),
        retry_counts: vec![],
        next_attempt_at: None,
        output: None,
        error: None,
        cause: None,
        started_at: Utc::now(),
        updated_at: Utc::now(),
        seq,
        waiting: None,
    }
}

fn event(seq: u64, kind: HistoryEventKind) -> HistoryEvent {
    HistoryEvent {
        seq,
        timestamp: Utc::now(),
        kind,
        state: Some("A".into()),
        attempt: None,
        error: None,
        cause: None,
        delay_ms: None,
        task_token: None,
    }
}

/// One write of a runner that holds the execution at `seq` in `state`: its running snapshot
/// and the one event it appends. Whether the store takes it is what the test is about.
async fn record_one(
    store: &SqliteStore,
    seq: u64,
    state: &str,
    kind: HistoryEventKind,
) -> Result<(), ExecutionStoreError> {
    let running = snapshot(seq, state, ExecutionStatus::Running);
    store.record(&running, &[event(seq, kind)]).await
}

#[tokio::test]
async fn records_only_continuations_of_the_stored_history() {
    let (store, _dir) = common::temp_store();
    let first = snapshot(1, "A", ExecutionStatus::Running);
    let started = [event(1, HistoryEventKind::ExecutionStarted)];
    assert!(store.create(&first, &started).await.unwrap());
    assert!(!store.create(&first, &started).await.unwrap());

    record_one(&store, 2, "B", HistoryEventKind::StateEntered)
        .await
        .unwrap();
    // A second runner still at seq 1 writes event 2 again: refused, nothing changes.
    assert!(
        record_one(&store, 2, "C", HistoryEventKind::StateEntered)
            .await
            .is_err()
    );
    // A runner that skipped ahead (event 4 while the history stands at 2) is refused by the
    // seq check itself: no primary key would catch it.
    assert!(
        record_one(&store, 4, "D", HistoryEventKind::StateEntered)
            .await
            .is_err()
    );
    assert_eq!(store.get("exec-1").await.unwrap().unwrap().state, "B");
    assert_eq!(store.history("exec-1").await.unwrap().len(), 2);

    // Several events in one write come back in order, after the earlier writes' events.
    let done = snapshot(4, "B", ExecutionStatus::Succeeded);
    let last_two = [
        event(3, HistoryEventKind::StateExited),
        event(4, HistoryEventKind::ExecutionSucceeded),
    ];
    store.record(&done, &last_two).await.unwrap();
    assert!(store.unfinished().await.unwrap().is_empty());
    assert!(
        record_one(&store, 5, "B", HistoryEventKind::StateEntered)
            .await
            .is_err(),
        "finished stays finished"
    );
    let history = store.history("exec-1").await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(history[2..], last_two);
}
