//! Callback Tasks in the definition: the two `.waitForTaskToken` integrations load with their
//! `${Name}` targets (handlers for `task_resources`, queues for `task_queues`, and both for the
//! deployment's substitutions), and what Step Functions refuses, or the local executor cannot
//! run the same way, is refused naming the state.

use orders_workflow::asl::{
    AslError, Integration, LAMBDA_CALLBACK, SQS_CALLBACK, State, StateMachine, substitute,
    substitution_names,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn names() -> BTreeSet<String> {
    ["Notify", "Warehouse", "Plain"].map(String::from).into()
}

fn lambda() -> Value {
    json!({"Type": "Task", "Resource": LAMBDA_CALLBACK,
        "Parameters": {"FunctionName": "${Notify}", "Payload": {"order.$": "$", "token.$": "$$.Task.Token"}},
        "TimeoutSeconds": 300, "HeartbeatSeconds": 60, "Next": "Ship"})
}

fn sqs() -> Value {
    json!({"Type": "Task", "Resource": SQS_CALLBACK,
        "Parameters": {"QueueUrl": "${Warehouse}", "MessageBody": {"taskToken.$": "$$.Task.Token", "id.$": "$.id"}},
        "HeartbeatSeconds": 30, "End": true})
}

fn definition(first: Value, second: Value) -> Value {
    json!({"StartAt": "Notify", "States": {"Notify": first, "Ship": second}})
}

fn load(def: &Value) -> Result<StateMachine, AslError> {
    StateMachine::load(&def.to_string(), &names())
}

/// Loads `def` with `edit` applied to state `state` and returns the error, which must name it.
fn refused(state: &str, edit: impl FnOnce(&mut Value)) -> AslError {
    let mut def = definition(lambda(), sqs());
    edit(&mut def["States"][state]);
    let err = load(&def).expect_err("the definition must be refused");
    assert_eq!(err.state(), Some(state), "{err}");
    err
}

fn assert_message(err: &AslError, text: &str) {
    assert!(err.to_string().contains(text), "{err}");
}

#[test]
fn both_callback_integrations_load_with_their_targets() {
    let def = definition(lambda(), sqs());
    let machine = load(&def).unwrap();
    let State::Task(notify) = &machine.states["Notify"] else {
        panic!("a Task")
    };
    assert_eq!(notify.integration, Integration::LambdaCallback);
    assert_eq!(notify.resource, "Notify");
    assert_eq!(
        (notify.timeout_seconds, notify.heartbeat_seconds),
        (Some(300), Some(60))
    );
    let State::Task(ship) = &machine.states["Ship"] else {
        panic!("a Task")
    };
    assert_eq!(
        (ship.integration, ship.resource.as_str()),
        (Integration::SqsCallback, "Warehouse")
    );
    assert_eq!(machine.task_resources(), BTreeSet::from(["Notify"]));
    assert_eq!(machine.task_queues(), BTreeSet::from(["Warehouse"]));
}

#[test]
fn the_deployment_substitutes_function_names_and_queue_urls() {
    let text = definition(lambda(), sqs()).to_string();
    assert_eq!(
        substitution_names(&text),
        ["Notify", "Warehouse"].map(String::from).into()
    );
    let values = BTreeMap::from([
        (
            "Notify".to_owned(),
            "arn:aws:lambda:eu-west-1:000000000000:function:notify".to_owned(),
        ),
        (
            "Warehouse".to_owned(),
            "https://sqs.eu-west-1.amazonaws.com/000000000000/warehouse".to_owned(),
        ),
    ]);
    let deployed: Value = serde_json::from_str(&substitute(&text, &values).unwrap()).unwrap();
    assert_eq!(
        deployed["States"]["Notify"]["Parameters"]["FunctionName"],
        values["Notify"].as_str()
    );
    assert_eq!(
        deployed["States"]["Ship"]["Parameters"]["QueueUrl"],
        values["Warehouse"].as_str()
    );
    assert_eq!(deployed["States"]["Ship"]["Resource"], SQS_CALLBACK);
}

#[test]
fn a_callback_task_must_pass_its_token() {
    let err = refused("Notify", |s| {
        s["Parameters"]["Payload"] = json!({"order.$": "$"})
    });
    assert!(matches!(err, AslError::MissingTaskToken { .. }), "{err}");
    assert_message(&err, "$$.Task.Token");
    let err = refused("Ship", |s| {
        s["Parameters"]["MessageBody"] = json!("a literal body")
    });
    assert!(matches!(err, AslError::MissingTaskToken { .. }), "{err}");
    // The token at the top level of the body is a reference too.
    let mut def = definition(lambda(), sqs());
    def["States"]["Ship"]["Parameters"] =
        json!({"QueueUrl": "${Warehouse}", "MessageBody.$": "$$.Task.Token"});
    load(&def).unwrap();
}

#[test]
fn callback_targets_must_be_literal_known_substitutions() {
    let err = refused("Notify", |s| {
        s["Parameters"]["FunctionName"] = json!("${Unknown}")
    });
    assert!(
        matches!(
            err,
            AslError::UnknownSubstitution {
                field: "Parameters.FunctionName",
                ..
            }
        ),
        "{err}"
    );
    let err = refused("Ship", |s| {
        s["Parameters"]["QueueUrl"] = json!("https://sqs/queue")
    });
    assert_message(
        &err,
        "Parameters.QueueUrl must be a literal ${Name} substitution",
    );
    let err = refused("Notify", |s| {
        let p = s["Parameters"].as_object_mut().unwrap();
        p.remove("FunctionName");
        p.insert("FunctionName.$".into(), json!("$.fn"));
    });
    assert_message(&err, "\"FunctionName.$\" is not supported");
    let err = refused("Ship", |s| s["Parameters"]["DelaySeconds"] = json!(5));
    assert_message(&err, "\"DelaySeconds\" is not supported");
    let err = refused("Ship", |s| {
        s.as_object_mut()
            .unwrap()
            .remove("Parameters")
            .map(drop)
            .unwrap()
    });
    assert_message(&err, "needs Parameters");
}

#[test]
fn other_service_integrations_stay_refused() {
    for resource in [
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::sqs:sendMessage",
        "arn:aws:states:::sns:publish.waitForTaskToken",
    ] {
        let err = refused("Notify", |s| s["Resource"] = json!(resource));
        assert!(
            matches!(err, AslError::ResourceNotSubstitution { .. }),
            "{resource}: {err}"
        );
    }
}

#[test]
fn timeouts_are_positive_and_the_heartbeat_shorter() {
    for (field, value) in [
        ("TimeoutSeconds", json!(0)),
        ("HeartbeatSeconds", json!(0)),
        ("TimeoutSeconds", json!(100_000_000)),
    ] {
        let err = refused("Notify", |s| s[field] = value.clone());
        assert_message(&err, &format!("{field} must be from 1 to 99999999"));
    }
    for bad in [json!(-1), json!(1.5), json!("60")] {
        let err = refused("Notify", |s| s["TimeoutSeconds"] = bad.clone());
        assert!(matches!(err, AslError::Invalid { .. }), "{bad}: {err}");
    }
    let err = refused("Notify", |s| s["HeartbeatSeconds"] = json!(300));
    assert_message(
        &err,
        "HeartbeatSeconds (300) must be less than TimeoutSeconds (300)",
    );
    for field in ["TimeoutSecondsPath", "HeartbeatSecondsPath"] {
        let err = refused("Notify", |s| s[field] = json!("$.seconds"));
        assert_message(&err, &format!("{field} is not supported"));
    }
}

#[test]
fn a_plain_task_takes_a_timeout_but_no_heartbeat_and_no_token() {
    let plain = |extra: Value| {
        let mut s = json!({"Type": "Task", "Resource": "${Plain}", "Next": "Ship"});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    let machine = load(&definition(plain(json!({"TimeoutSeconds": 5})), sqs())).unwrap();
    let State::Task(task) = &machine.states["Notify"] else {
        panic!("a Task")
    };
    assert_eq!(
        (task.integration, task.timeout_seconds),
        (Integration::Invoke, Some(5))
    );

    let err = load(&definition(plain(json!({"HeartbeatSeconds": 5})), sqs())).unwrap_err();
    assert_message(&err, "HeartbeatSeconds needs a .waitForTaskToken Resource");
    let err = load(&definition(
        plain(json!({"Parameters": {"t.$": "$$.Task.Token"}})),
        sqs(),
    ))
    .unwrap_err();
    assert_message(
        &err,
        "Parameters: $$.Task exists only in the Parameters of a .waitForTaskToken Task",
    );
    let err = refused("Notify", |s| {
        s["ResultSelector"] = json!({"t.$": "$$.Task.Token"})
    });
    assert_message(&err, "ResultSelector: $$.Task exists only");
    let pass = json!({"Type": "Pass", "Parameters": {"t.$": "$$.Task.Token"}, "Next": "Ship"});
    let err = load(&definition(pass, sqs())).unwrap_err();
    assert_eq!(err.state(), Some("Notify"), "{err}");
}
