//! The local executor's store on SQLite: a name is created once, and a write that does not
//! continue the stored history (a second runner of one execution) is refused, changing nothing;
//! only a FAILED execution is redriven, once, and the failed ones are listed newest first.

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
        redrive_count: 0,
        trace: None,
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
        duration_ms: None,
        input: None,
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

#[tokio::test]
async fn redrives_a_failed_execution_once_and_lists_executions_by_status() {
    let (store, _dir) = common::temp_store();
    let running = snapshot(1, "A", ExecutionStatus::Running);
    let started = [event(1, HistoryEventKind::ExecutionStarted)];
    assert!(store.create(&running, &started).await.unwrap());
    let redrive = |seq: u64, state: &str| {
        (
            snapshot(seq, state, ExecutionStatus::Running),
            [event(seq, HistoryEventKind::ExecutionRedriven)],
        )
    };
    let (again, events) = redrive(2, "A");
    assert!(
        !store.redrive(&again, &events).await.unwrap(),
        "a RUNNING execution is not redriven"
    );

    let failed = snapshot(2, "A", ExecutionStatus::Failed);
    store
        .record(&failed, &[event(2, HistoryEventKind::ExecutionFailed)])
        .await
        .unwrap();
    assert!(store.unfinished().await.unwrap().is_empty());
    let (ahead, events) = redrive(4, "A");
    assert!(
        !store.redrive(&ahead, &events).await.unwrap(),
        "not at its seq"
    );
    let (won, events) = redrive(3, "A");
    assert!(store.redrive(&won, &events).await.unwrap());
    // A second redrive that read the same FAILED snapshot finds it RUNNING: refused.
    let (lost, events) = redrive(3, "B");
    assert!(!store.redrive(&lost, &events).await.unwrap());
    let stored = store.get("exec-1").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.state.as_str(), stored.seq),
        (ExecutionStatus::Running, "A", 3)
    );
    assert_eq!(store.unfinished().await.unwrap().len(), 1);
    let kinds: Vec<_> = store
        .history("exec-1")
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            HistoryEventKind::ExecutionStarted,
            HistoryEventKind::ExecutionFailed,
            HistoryEventKind::ExecutionRedriven
        ]
    );
    let mut unknown = snapshot(2, "A", ExecutionStatus::Running);
    unknown.name = "exec-unknown".into();
    assert!(
        !store
            .redrive(&unknown, &[event(2, HistoryEventKind::ExecutionRedriven)])
            .await
            .unwrap()
    );

    // Listed by status, the most recently changed first, at most `limit`.
    let base = Utc::now();
    for (i, name) in ["f-old", "f-new", "f-mid"].into_iter().enumerate() {
        let mut s = snapshot(1, "A", ExecutionStatus::Running);
        s.name = name.into();
        store
            .create(&s, &[event(1, HistoryEventKind::ExecutionStarted)])
            .await
            .unwrap();
        s.status = ExecutionStatus::Failed;
        s.seq = 2;
        let minutes = [1, 3, 2][i];
        s.updated_at = base + chrono::TimeDelta::minutes(minutes);
        store
            .record(&s, &[event(2, HistoryEventKind::ExecutionFailed)])
            .await
            .unwrap();
    }
    let names = |list: Vec<ExecutionSnapshot>| list.into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list(ExecutionStatus::Failed, 10).await.unwrap()),
        ["f-new", "f-mid", "f-old"]
    );
    assert_eq!(
        names(store.list(ExecutionStatus::Failed, 2).await.unwrap()),
        ["f-new", "f-mid"]
    );
    assert_eq!(
        names(store.list(ExecutionStatus::Running, 10).await.unwrap()),
        ["exec-1"]
    );
    assert!(
        store
            .list(ExecutionStatus::Succeeded, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
