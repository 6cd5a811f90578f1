//! The checker can fail on the API's redrive: its right to redrive the saga's executions (and
//! nothing wider), the state machine ARN it reads, and the route. One fact changed at a time,
//! each named in a problem.

use super::negative::{RES, at, code_change_reports, remove, reports_after, set};
use super::{load, root};
use orders_aws::functions::{API, FunctionSpec};
use serde_json::json;

const API_REDRIVE: &str = "ApiFunctionRole/Properties/Policies/2/PolicyDocument/Statement/0";

#[test]
fn the_api_may_redrive_the_sagas_executions_only() {
    // The statement under test is the one it claims to be.
    let t = load(&root().join("infra/template.yaml"));
    let statement = t
        .pointer(&format!("{RES}/{API_REDRIVE}"))
        .expect("statement");
    assert_eq!(statement["Action"], "states:RedriveExecution");
    reports_after(
        |t| {
            let list = at(t, &format!("{RES}/ApiFunctionRole/Properties/Policies")).as_array_mut();
            list.expect("a list of policies").remove(2);
        },
        &["ApiFunction", "lacks states:RedriveExecution"],
    );
    reports_after(
        set(
            &format!("{API_REDRIVE}/Resource"),
            json!({"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:*"}),
        ),
        &["ApiFunction", "states:RedriveExecution", "does not use"],
    );
    reports_after(
        set(
            &format!("{API_REDRIVE}/Action"),
            json!("states:StopExecution"),
        ),
        &["ApiFunction", "states:StopExecution", "does not use"],
    );
    // The code no longer redrives: the grant is one it does not use.
    const API_WITHOUT_REDRIVE: FunctionSpec = FunctionSpec {
        execution_actions: &[],
        ..API
    };
    code_change_reports(
        |c| {
            let slot = c.functions.iter_mut().find(|f| f.logical == API.logical);
            *slot.expect("the API spec") = API_WITHOUT_REDRIVE;
        },
        &["ApiFunction", "states:RedriveExecution", "does not use"],
    );
}

#[test]
fn the_api_reads_the_state_machine_arn_and_serves_the_redrive_route() {
    let env = "ApiFunction/Properties/Environment/Variables";
    reports_after(
        remove(&format!("{env}/ORDERS_STATE_MACHINE_ARN")),
        &["ApiFunction", "environment"],
    );
    reports_after(
        set(
            &format!("{env}/ORDERS_STATE_MACHINE_ARN"),
            json!("arn:aws:states:us-east-1:1:stateMachine:x"),
        ),
        &["ApiFunction", "ORDERS_STATE_MACHINE_ARN"],
    );
    reports_after(
        remove("ApiFunction/Properties/Events/RedriveExecution"),
        &["ApiFunction", "have no route", "/executions/{}/redrive"],
    );
}
