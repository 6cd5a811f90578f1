//! The ASL data-flow rules on small inline machines: InputPath, Parameters, ResultSelector,
//! ResultPath, OutputPath, the context object, and runtime errors from paths that do not match.

use super::helpers::*;

/// Runs a one-Task machine whose handler returns `result` and records its input.
async fn one_task(task: Value, input: Value, result: Value) -> (ExecutionSnapshot, Vec<Call>) {
    let mut state = json!({"Type": "Task", "Resource": "${Echo}", "End": true});
    state
        .as_object_mut()
        .unwrap()
        .extend(task.as_object().unwrap().clone());
    let def = json!({"StartAt": "Only", "States": {"Only": state}});
    let machine =
        StateMachine::load(&def.to_string(), &BTreeSet::from(["Echo".to_owned()])).unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let script: Script = Arc::new(move |_: &Value, c: &TaskContext| {
        if c.attempt == 1 && result == "fail-once" {
            transient(&json!(0), c)
        } else {
            Ok(result.clone())
        }
    });
    let handler = Scripted {
        script,
        calls: Arc::clone(&calls),
        sleep: Duration::ZERO,
        hang: Arc::default(),
    };
    let handlers = HashMap::from([("Echo".to_owned(), Arc::new(handler) as Arc<dyn TaskHandler>)]);
    let (store, _dir) = temp_store();
    let executor = Executor::new(machine, handlers, store.clone(), fast()).unwrap();
    executor.start("flow", input).await.unwrap();
    idle(&executor).await;
    let calls = calls.lock().unwrap().clone();
    (store.get("flow").await.unwrap().unwrap(), calls)
}

#[tokio::test]
async fn result_path_merges_replaces_or_discards() {
    let input = json!({"a": 1, "x": {"keep": true}});
    let result = json!({"r": 2});
    let cases = [
        (
            json!({"ResultPath": "$.x.y"}),
            json!({"a": 1, "x": {"keep": true, "y": {"r": 2}}}),
        ),
        (
            json!({"ResultPath": "$.new.deep"}),
            json!({"a": 1, "x": {"keep": true}, "new": {"deep": {"r": 2}}}),
        ),
        (json!({"ResultPath": "$"}), json!({"r": 2})),
        (json!({}), json!({"r": 2})),
        (json!({"ResultPath": null}), input.clone()),
    ];
    for (task, expected) in cases {
        let (snapshot, _) = one_task(task.clone(), input.clone(), result.clone()).await;
        assert_eq!(snapshot.output, Some(expected), "{task}");
    }
}

#[tokio::test]
async fn input_parameters_selector_and_output_paths_apply_in_order() {
    let task = json!({
        "InputPath": "$.order",
        "Parameters": {"id.$": "$.id", "fixed": "k", "nested": {"first.$": "$.items[0]"}, "list": [{"v.$": "$.id"}],
                       "exec.$": "$$.Execution.Name", "retries.$": "$$.State.RetryCount"},
        "ResultSelector": {"charged.$": "$.amount", "static": 1},
        "ResultPath": "$.payment",
        "OutputPath": "$.payment",
        "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1}]
    });
    let input = json!({"order": {"id": "o-9", "items": ["p1", "p2"]}, "other": true});
    let result = json!({"amount": 42, "noise": "dropped"});
    let (snapshot, calls) = one_task(task, input, result).await;
    assert_eq!(
        calls[0].input,
        json!({"id": "o-9", "fixed": "k", "nested": {"first": "p1"}, "list": [{"v": "o-9"}], "exec": "flow", "retries": 0})
    );
    assert_eq!(snapshot.output, Some(json!({"charged": 42, "static": 1})));
    assert_eq!(snapshot.status, ExecutionStatus::Succeeded);
}

#[tokio::test]
async fn the_context_retry_count_follows_the_attempts() {
    let task = json!({"Parameters": {"retries.$": "$$.State.RetryCount", "name.$": "$$.State.Name"}, "Retry": [{"ErrorEquals": ["Transient"]}]});
    let (snapshot, calls) = one_task(task, json!({}), json!("fail-once")).await;
    assert_eq!(snapshot.status, ExecutionStatus::Succeeded);
    let seen: Vec<Value> = calls.iter().map(|c| c.input.clone()).collect();
    assert_eq!(
        seen,
        [
            json!({"retries": 0, "name": "Only"}),
            json!({"retries": 1, "name": "Only"})
        ]
    );
}

#[tokio::test]
async fn a_path_that_does_not_match_is_a_runtime_error_not_caught() {
    let catch_all = json!([{"ErrorEquals": ["States.ALL"], "Next": "Only"}]);
    let (snapshot, calls) = one_task(
        json!({"InputPath": "$.missing", "Catch": catch_all}),
        json!({"a": 1}),
        json!(0),
    )
    .await;
    assert!(calls.is_empty(), "the handler must not run");
    assert_eq!(
        (snapshot.status, snapshot.error.as_deref()),
        (ExecutionStatus::Failed, Some("States.Runtime"))
    );
    assert!(snapshot.cause.unwrap().contains("$.missing"));

    let (snapshot, calls) =
        one_task(json!({"ResultPath": "$.a.b"}), json!({"a": 1}), json!(0)).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(snapshot.error.as_deref(), Some("States.Runtime"));

    let (snapshot, _) = one_task(json!({"OutputPath": "$.nope"}), json!({}), json!({"r": 1})).await;
    assert_eq!(snapshot.error.as_deref(), Some("States.Runtime"));
}
