//! The saga definition loads, and every kind of broken definition is refused with an error
//! that names the state, so a mistake in `statemachine.asl.json` is caught by `cargo test`
//! instead of by a failed deploy or, worse, a saga that behaves differently on AWS.

use super::retry_rules::{COMPENSATION, COMPLETION, FORWARD, task};
use orders_workflow::asl::{
    AslError, DEFINITION, State, StateMachine, Transition, substitute, substitution_names,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const NAMES: [&str; 13] = [
    "BeginCompensationFunctionArn",
    "IssueVoucherFunctionArn",
    "MarkCancelledFunctionArn",
    "MarkCompletedFunctionArn",
    "MarkFailedFunctionArn",
    "MarkShippedFunctionArn",
    "RefundPaymentFunctionArn",
    "ReleaseInventoryFunctionArn",
    "RequestPaymentFunctionArn",
    "ReserveInventoryFunctionArn",
    "RestoreVoucherFunctionArn",
    "SendNotificationFunctionArn",
    "WarehouseQueueUrl",
];

fn names() -> BTreeSet<String> {
    NAMES.iter().map(|n| n.to_string()).collect()
}

fn saga() -> Value {
    serde_json::from_str(DEFINITION).unwrap()
}

/// Loads a (broken) variant of the saga and returns the error, checking it names `state`.
fn rejected(definition: &Value, state: &str) -> AslError {
    let err = StateMachine::load(&definition.to_string(), &names())
        .expect_err("the definition must be rejected");
    assert_eq!(err.state(), Some(state), "wrong state in {err}");
    assert!(
        err.to_string().starts_with(&format!("state \"{state}\": ")),
        "{err}"
    );
    err
}

/// Applies `edit` to a fresh saga's `States`, then checks the result is rejected naming `state`.
fn rejected_after(state: &str, edit: impl FnOnce(&mut Value)) -> AslError {
    let mut def = saga();
    edit(&mut def["States"]);
    rejected(&def, state)
}

/// One case a line: `"State"[key].. = json => checks;` sets one field of a fresh saga (or the
/// whole state, with no keys), which must then be rejected naming that state. Each check is an
/// `AslError` variant (`Invalid`, `StatesAllNotLast { field: "Catch" }`), `contains "text"`, or
/// `message "text"`: the whole message after the `state "State": ` prefix.
macro_rules! assert_rejected {
    () => {};
    (@check $err:ident, $state:literal, contains $text:literal) => {
        assert!($err.to_string().contains($text), "{}", $err);
    };
    (@check $err:ident, $state:literal, message $text:literal) => {
        assert_eq!($err.to_string(), format!("state \"{}\": {}", $state, $text));
    };
    (@check $err:ident, $state:literal, $variant:ident $({ $($field:tt)* })?) => {
        assert!(matches!($err, AslError::$variant { $($($field)*,)? .. }), "{}", $err);
    };
    (
        $state:literal $([$key:expr])* = $value:tt
            => $($check:ident $($text:literal)? $({ $($field:tt)* })?),+;
        $($rest:tt)*
    ) => {
        let err = rejected_after($state, |states| states[$state]$([$key])* = json!($value));
        $(assert_rejected!(@check err, $state, $check $($text)? $({ $($field)* })?);)+
        assert_rejected!($($rest)*);
    };
}

#[test]
fn the_saga_loads_with_its_thirteen_substitutions() {
    assert_eq!(substitution_names(DEFINITION), names());
    let machine = StateMachine::load(DEFINITION, &names()).unwrap();
    assert_eq!(machine, StateMachine::saga().unwrap());
    assert_eq!(machine.start_at, "ReserveInventory");
    assert_eq!(machine.states.len(), 26);
    let (queues, handlers): (BTreeSet<&str>, BTreeSet<&str>) =
        NAMES.into_iter().partition(|n| n.ends_with("QueueUrl"));
    assert_eq!(machine.task_resources(), handlers);
    assert_eq!(machine.task_queues(), queues);
    let raw = saga();
    let tasks: BTreeSet<&str> = machine
        .states
        .iter()
        .filter(|(_, s)| matches!(s, State::Task(_)))
        .map(|(n, _)| n.as_str())
        .collect();
    let callbacks = ["RequestPayment", "PrepareShipment"];
    let expected: BTreeSet<&str> = FORWARD
        .into_iter()
        .chain(COMPENSATION)
        .chain([COMPLETION, "PrepareShipment"])
        .collect();
    assert_eq!(tasks, expected);
    for name in tasks.into_iter().filter(|n| !callbacks.contains(n)) {
        assert_eq!(task(&machine, name).resource, format!("{name}FunctionArn"));
        assert_eq!(
            raw["States"][name]["Parameters"],
            json!({"step": name, "input.$": "$"})
        );
    }
    assert_eq!(
        raw["States"]["RequestPayment"]["Parameters"]["Payload"],
        json!({"step": "RequestPayment", "input.$": "$", "taskToken.$": "$$.Task.Token"})
    );
    assert_eq!(
        raw["States"]["PrepareShipment"]["Parameters"]["MessageBody"],
        json!({"orderId.$": "$.orderId", "items.$": "$.items", "taskToken.$": "$$.Task.Token"})
    );
    let notify = task(&machine, "SendNotification");
    assert_eq!(notify.catch[1].next, "PrepareShipment");
    assert_eq!(
        notify.transition,
        Transition::Next("PrepareShipment".into())
    );
    assert_eq!(
        raw["States"]["VoucherEligible"]["Choices"][0]["NumericGreaterThan"],
        10000
    );
    // The only service integrations are the two callbacks; every other Task is a plain invoke.
    let integrations: BTreeSet<&str> = raw["States"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|s| s["Resource"].as_str())
        .filter(|r| r.starts_with("arn:aws:states:::"))
        .collect();
    assert_eq!(
        integrations,
        BTreeSet::from([
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
        ])
    );
}

#[test]
fn dangling_transitions_are_rejected() {
    assert_rejected! {
        "ReserveInventory"["Next"] = "Nowhere" => message r#"Next "Nowhere" does not exist"#;
        "ReserveInventory"["Catch"][0]["Next"] = "Nowhere" => contains r#"Catch[0].Next "Nowhere""#;
        "VoucherEligible"["Default"] = "Nowhere" => DanglingTransition;
        "VoucherEligible"["Choices"][0]["Next"] = "Nowhere" => DanglingTransition;
    }
}

#[test]
fn unreachable_states_are_rejected() {
    assert_rejected! {
        "Orphan" = {"Type": "Pass", "End": true} => Unreachable;
    }
}

#[test]
fn unknown_and_unsupported_state_types_are_rejected() {
    assert_rejected! {
        "MarkFailed"["Type"] = "Taks" => UnknownStateType;
    }

    let err = rejected_after("Orphan", |states| {
        states["Orphan"] = json!({"Type": "Wait", "Seconds": 1, "End": true});
        states["MarkFailed"]["Next"] = json!("Orphan");
    });
    assert!(
        err.to_string().contains("unsupported state type \"Wait\""),
        "{err}"
    );
}

#[test]
fn resources_must_be_known_substitutions() {
    assert_rejected! {
        "MarkFailed"["Resource"] = "${MarkFailedFunctionArnX}" => UnknownSubstitution;
        "MarkFailed"["Resource"] = "arn:aws:states:::lambda:invoke" => ResourceNotSubstitution;
    }
}

#[test]
fn start_at_must_exist() {
    let mut def = saga();
    def.as_object_mut().unwrap().remove("StartAt");
    let err = StateMachine::load(&def.to_string(), &names()).unwrap_err();
    assert_eq!(err, AslError::MissingStartAt);

    let mut def = saga();
    def["StartAt"] = json!("Nowhere");
    let err = StateMachine::load(&def.to_string(), &names()).unwrap_err();
    assert_eq!(err.to_string(), r#"StartAt "Nowhere" does not exist"#);
}

#[test]
fn next_and_end_are_exclusive_and_one_is_required() {
    assert_rejected! {
        "MarkFailed"["End"] = true => ConflictingTransition;
        "Completed"["Next"] = "Compensated" => Invalid;
    }

    let err = rejected_after("MarkFailed", |states| {
        states["MarkFailed"].as_object_mut().unwrap().remove("Next");
    });
    assert!(matches!(err, AslError::MissingTransition { .. }), "{err}");
}

#[test]
fn states_all_must_be_alone_and_last() {
    assert_rejected! {
        "ReserveInventory"["Catch"][0]["ErrorEquals"] = ["States.ALL", "Transient"] => StatesAllNotLast;
    }

    let err = rejected_after("ReserveInventory", |states| {
        let catch = states["ReserveInventory"]["Catch"].as_array_mut().unwrap();
        catch.push(json!({"ErrorEquals": ["PaymentDeclined"], "Next": "BeginCompensation"}));
    });
    assert!(matches!(
        err,
        AslError::StatesAllNotLast { field: "Catch", .. }
    ));

    let err = rejected_after("RefundPayment", |states| {
        let retry = &mut states["RefundPayment"]["Retry"];
        retry[0]["ErrorEquals"] = json!(["States.ALL"]);
        retry
            .as_array_mut()
            .unwrap()
            .push(json!({"ErrorEquals": ["Transient"]}));
    });
    assert!(matches!(
        err,
        AslError::StatesAllNotLast { field: "Retry", .. }
    ));
}

#[test]
fn malformed_and_unsupported_paths_are_rejected() {
    let cases: [(&str, &str, Value); 6] = [
        ("ReserveInventory", "ResultPath", json!("reservation")),
        ("ReserveInventory", "ResultPath", json!("$..reservation")),
        ("ReserveInventory", "InputPath", json!("$.items[*]")),
        (
            "ReserveInventory",
            "OutputPath",
            json!("$$.Execution.Input"),
        ),
        ("SendNotification", "ResultPath", json!("$.a[")),
        (
            "IssueVoucher",
            "InputPath",
            json!("$.items[?(@.quantity > 1)]"),
        ),
    ];
    for (state, field, value) in cases {
        let mut def = saga();
        def["States"][state][field] = value.clone();
        let err = rejected(&def, state);
        assert!(
            matches!(err, AslError::Path { .. }),
            "{field} = {value}: {err}"
        );
        assert!(err.to_string().contains(field), "{err}");
    }

    assert_rejected! {
        "ReserveInventory"["Parameters"]["input.$"] = "$.order[-1]" => Path;
        "VoucherEligible"["Choices"][0]["Variable"] = "totalCents" => contains "malformed JsonPath";
    }
}

#[test]
fn intrinsic_functions_are_rejected() {
    assert_rejected! {
        "ReserveInventory"["Parameters"]["id.$"] = "States.Format('order-{}', $.orderId)"
            => IntrinsicFunction, contains "unsupported intrinsic function";
    }
}

#[test]
fn unknown_fields_and_bad_choice_rules_are_rejected() {
    assert_rejected! {
        "MarkCompleted"["HeartbeatSecond"] = 10 => Invalid;
        "VoucherEligible"["Choices"][0]["NumericLessThan"] = 5 => contains "exactly one comparison";
        "IssueVoucher"["Retry"][0]["JitterStrategy"] = "PARTIAL" => Invalid;
    }
}

#[test]
fn supported_path_forms_load() {
    let def = json!({
        "StartAt": "P",
        "States": {"P": {
            "Type": "Pass",
            "InputPath": "$['order'].items[0]",
            "Parameters": {"a.$": "$.product_id", "n.$": "$$.Execution.Name", "r.$": "$$.State.RetryCount"},
            "ResultPath": "$.x.y",
            "OutputPath": "$",
            "End": true
        }}
    });
    StateMachine::load(&def.to_string(), &BTreeSet::new()).unwrap();
}

#[test]
fn substitute_replaces_every_placeholder() {
    let values: BTreeMap<String, String> = NAMES
        .iter()
        .map(|n| {
            (
                n.to_string(),
                format!("arn:aws:lambda:eu-west-1:000000000000:function:{n}"),
            )
        })
        .collect();
    let deployed = substitute(DEFINITION, &values).unwrap();
    assert!(substitution_names(&deployed).is_empty());
    let deployed: Value = serde_json::from_str(&deployed).unwrap();
    assert_eq!(
        deployed["States"]["ReserveInventory"]["Resource"],
        "arn:aws:lambda:eu-west-1:000000000000:function:ReserveInventoryFunctionArn"
    );

    let mut partial = values.clone();
    partial.remove("MarkFailedFunctionArn");
    let err = substitute(DEFINITION, &partial).unwrap_err();
    assert_eq!(
        err,
        AslError::MissingSubstitutionValue("MarkFailedFunctionArn".into())
    );
    assert_eq!(
        substitute("no ${placeholders here", &BTreeMap::new()).unwrap(),
        "no ${placeholders here"
    );
}
