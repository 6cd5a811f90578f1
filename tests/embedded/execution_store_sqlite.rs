//! The local executor's store on SQLite: a name is created once, and a write that does not
//! continue the stored history (a second runner of one execution) is refused, changing nothing.

use orders_test_support as common;

use chrono::Utc;
use orders_workflow::executor::{
    ExecutionSnapshot, ExecutionStatus, ExecutionStore, HistoryEvent, HistoryEventKind,
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
    }
}

#[tokio::test]
async fn records_only_continuations_of_the_stored_history() {
    let (store, _dir) = common::temp_store();
    let first = snapshot(1, "A", ExecutionStatus::Running);
    assert!(
        store
            .create(&first, &[event(1, HistoryEventKind::ExecutionStarted)])
            .await
            .unwrap()
    );
    assert!(
        !store
            .create(&first, &[event(1, HistoryEventKind::ExecutionStarted)])
            .await
            .unwrap()
    );

    let next = snapshot(2, "B", ExecutionStatus::Running);
    store
        .record(&next, &[event(2, HistoryEventKind::StateEntered)])
        .await
        .unwrap();
    // A second runner still at seq 1 writes event 2 again: refused, nothing changes.
    let stale = snapshot(2, "C", ExecutionStatus::Running);
    assert!(
        store
            .record(&stale, &[event(2, HistoryEventKind::StateEntered)])
            .await
            .is_err()
    );
    // A runner that skipped ahead (event 4 while the history stands at 2) is refused by the
    // seq check itself: no primary key would catch it.
    let ahead = snapshot(4, "D", ExecutionStatus::Running);
    assert!(
        store
            .record(&ahead, &[event(4, HistoryEventKind::StateEntered)])
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
    let late = snapshot(5, "B", ExecutionStatus::Running);
    assert!(
        store
            .record(&late, &[event(5, HistoryEventKind::StateEntered)])
            .await
            .is_err(),
        "finished stays finished"
    );
    assert_eq!(
        store
            .history("exec-1")
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let history = store.history("exec-1").await.unwrap();
    assert_eq!(history[2..], last_two);
}
