//! The checker can fail: each test changes one fact, on the template's side or the code's,
//! and requires a problem that names it. A checker that reported nothing would pass
//! `template_matches_the_code`; these keep that test honest.

use super::checks::{Code, check};
use super::{code, load, report, root, yaml};
use orders_aws::functions::{API, FunctionSpec, STEPS};
use orders_aws::tables::{IndexSpec, ORDERS, TableSpec};
use serde_json::{Value, json};

fn baseline() -> Value {
    load(&root().join("infra/template.yaml"))
}

/// Checks the template after `change`, requiring a problem that mentions every `needle`.
fn reports_after(change: impl FnOnce(&mut Value), needles: &[&str]) {
    let mut template = baseline();
    change(&mut template);
    assert_reports(&check(&template, &code()), needles);
}

fn code_change_reports(change: impl FnOnce(&mut Code), needles: &[&str]) {
    let mut c = code();
    change(&mut c);
    assert_reports(&check(&baseline(), &c), needles);
}

fn replace_function(c: &mut Code, f: FunctionSpec) {
    let slot = c
        .functions
        .iter_mut()
        .find(|g| g.logical == f.logical)
        .expect("a function");
    *slot = f;
}

fn replace_table(c: &mut Code, t: TableSpec) {
    let slot = c
        .tables
        .iter_mut()
        .find(|s| s.logical == t.logical)
        .expect("a table");
    *slot = t;
}

fn assert_reports(problems: &[String], needles: &[&str]) {
    assert!(
        problems
            .iter()
            .any(|p| needles.iter().all(|n| p.contains(n))),
        "expected a problem mentioning {needles:?}; got:{}",
        report(problems)
    );
}

fn at<'a>(t: &'a mut Value, pointer: &str) -> &'a mut Value {
    t.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} not in the template"))
}

const RES: &str = "/Resources";

#[test]
fn renaming_a_table_in_the_template_text_fails() {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    let renamed = yaml::parse(&text.replace("OrdersTable", "OrderTable")).unwrap();
    let problems = check(&renamed, &code());
    assert_reports(&problems, &["OrdersTable", "missing"]);
    assert_reports(&problems, &["OrderTable is not a table of tables.rs"]);
    let suffix = yaml::parse(&text.replace("}-vouchers\"", "}-voucher\"")).unwrap();
    assert_reports(&check(&suffix, &code()), &["VouchersTable", "TableName"]);
}

#[test]
fn a_key_an_index_a_stream_or_a_ttl_that_differs_fails() {
    reports_after(
        |t| {
            *at(
                t,
                &format!("{RES}/SagaTable/Properties/KeySchema/1/AttributeName"),
            ) = json!("kind")
        },
        &["SagaTable", "KeySchema"],
    );
    reports_after(
        |t| {
            *at(
                t,
                &format!("{RES}/VouchersTable/Properties/AttributeDefinitions/0/AttributeType"),
            ) = json!("N")
        },
        &["VouchersTable", "AttributeDefinitions"],
    );
    reports_after(
        |t| {
            at(t, &format!("{RES}/OrdersTable/Properties"))
                .as_object_mut()
                .unwrap()
                .remove("GlobalSecondaryIndexes")
                .map(drop)
                .unwrap()
        },
        &["OrdersTable", "GlobalSecondaryIndexes"],
    );
    reports_after(
        |t| {
            *at(
                t,
                &format!("{RES}/OutboxTable/Properties/StreamSpecification/StreamViewType"),
            ) = json!("NEW_AND_OLD_IMAGES")
        },
        &["OutboxTable", "stream view type"],
    );
    reports_after(
        |t| {
            *at(
                t,
                &format!("{RES}/IdempotencyTable/Properties/TimeToLiveSpecification/AttributeName"),
            ) = json!("ttl")
        },
        &["IdempotencyTable", "TTL"],
    );
    reports_after(
        |t| *at(t, &format!("{RES}/InventoryTable/Properties/BillingMode")) = json!("PROVISIONED"),
        &["InventoryTable", "BillingMode"],
    );
}

#[test]
fn an_environment_that_differs_fails() {
    reports_after(
        |t| {
            let vars = at(
                t,
                &format!("{RES}/StepsFunction/Properties/Environment/Variables"),
            );
            let v = vars
                .as_object_mut()
                .unwrap()
                .remove("ORDERS_TABLE_SAGA")
                .unwrap();
            vars["ORDERS_SAGA_TABLE"] = v;
        },
        &["StepsFunction", "environment"],
    );
    reports_after(
        |t| {
            *at(
                t,
                &format!("{RES}/ApiFunction/Properties/Environment/Variables/ORDERS_TABLE_OUTBOX"),
            ) = json!({"Ref": "OrdersTable"})
        },
        &["ApiFunction", "ORDERS_TABLE_OUTBOX", "${OutboxTable}"],
    );
    reports_after(
        |t| {
            *at(
                t,
                &format!(
                    "{RES}/ProcessorFunction/Properties/Environment/Variables/ORDERS_STATE_MACHINE_ARN"
                ),
            ) = json!("arn:aws:states:us-east-1:1:stateMachine:x")
        },
        &["ProcessorFunction", "ORDERS_STATE_MACHINE_ARN"],
    );
    reports_after(
        |t| {
            *at(t, &format!("{RES}/ProcessorFunction/Properties/CodeUri")) =
                json!("../target/lambda/orders/")
        },
        &["ProcessorFunction", "CodeUri"],
    );
}

#[test]
fn a_grant_beyond_or_short_of_the_code_fails() {
    let api_tables =
        format!("{RES}/ApiFunctionRole/Properties/Policies/1/PolicyDocument/Statement/0");
    reports_after(
        |t| {
            at(t, &format!("{api_tables}/Action"))
                .as_array_mut()
                .unwrap()
                .push(json!("dynamodb:DeleteItem"))
        },
        &["ApiFunction", "granted dynamodb:DeleteItem"],
    );
    reports_after(
        |t| {
            at(t, &format!("{api_tables}/Resource"))
                .as_array_mut()
                .unwrap()
                .push(json!({"Fn::GetAtt": ["SagaTable", "Arn"]}))
        },
        &["ApiFunction", "${SagaTable.Arn}", "does not use"],
    );
    reports_after(
        |t| *at(t, &format!("{api_tables}/Resource")) = json!("*"),
        &["ApiFunction", "on *"],
    );
    reports_after(
        |t| {
            *at(
                t,
                &format!(
                    "{RES}/ProcessorFunctionRole/Properties/Policies/1/PolicyDocument/Statement/0/Action"
                ),
            ) = json!("states:StartSyncExecution")
        },
        &["ProcessorFunction", "lacks states:StartExecution"],
    );
    reports_after(
        |t| {
            at(t, &format!("{RES}/ProcessorFunctionRole/Properties"))["ManagedPolicyArns"] =
                json!(["arn:aws:iam::aws:policy/AdministratorAccess"])
        },
        &["ManagedPolicyArns"],
    );
    reports_after(
        |t| {
            *at(
                t,
                &format!(
                    "{RES}/OrderSagaRole/Properties/Policies/0/PolicyDocument/Statement/0/Resource"
                ),
            ) = json!({"Fn::GetAtt": ["ApiFunction", "Arn"]})
        },
        &["state machine role OrderSagaRole"],
    );
}

#[test]
fn the_saga_and_the_stream_mapping_are_checked() {
    reports_after(
        |t| {
            at(
                t,
                &format!("{RES}/OrderSaga/Properties/DefinitionSubstitutions"),
            )
            .as_object_mut()
            .unwrap()
            .remove("RestoreVoucherFunctionArn")
            .map(drop)
            .unwrap()
        },
        &["${RestoreVoucherFunctionArn} has no DefinitionSubstitution"],
    );
    reports_after(
        |t| *at(t, &format!("{RES}/OrderSaga/Properties/Type")) = json!("EXPRESS"),
        &["STANDARD"],
    );
    let mapping = format!("{RES}/ProcessorFunction/Properties/Events/Outbox/Properties");
    reports_after(
        |t| *at(t, &format!("{mapping}/MaximumRetryAttempts")) = json!(-1),
        &["MaximumRetryAttempts"],
    );
    reports_after(
        |t| *at(t, &format!("{mapping}/BisectBatchOnFunctionError")) = json!(false),
        &["Bisect"],
    );
    reports_after(
        |t| {
            *at(t, &format!("{mapping}/FilterCriteria/Filters/0/Pattern")) =
                json!(r#"{"eventName":["INSERT","MODIFY"]}"#)
        },
        &["FilterCriteria"],
    );
    reports_after(
        |t| {
            at(t, &format!("{RES}/ApiFunction/Properties/Events"))
                .as_object_mut()
                .unwrap()
                .remove("GetOrder")
                .map(drop)
                .unwrap()
        },
        &["ApiFunction", "no route", "/orders/{}"],
    );
    reports_after(
        |t| {
            let health = at(
                t,
                &format!("{RES}/ApiFunction/Properties/Events/Health/Properties"),
            );
            health
                .as_object_mut()
                .unwrap()
                .remove("ApiId")
                .map(drop)
                .unwrap()
        },
        &["event Health is not on the stack's HttpApi"],
    );
    reports_after(
        |t| {
            at(t, RES)
                .as_object_mut()
                .unwrap()
                .remove("ProcessorDlqDepthAlarm")
                .map(drop)
                .unwrap()
        },
        &["no alarm on the depth"],
    );
    reports_after(
        |t| {
            at(t, &format!("{RES}/StepsLogGroup/Properties"))
                .as_object_mut()
                .unwrap()
                .remove("RetentionInDays")
                .map(drop)
                .unwrap()
        },
        &["StepsLogGroup", "RetentionInDays"],
    );
}

#[test]
fn a_change_on_the_code_side_fails_too() {
    const WITH_INDEX: TableSpec = TableSpec {
        indexes: &[IndexSpec {
            name: "byStatus",
            partition_key: "status",
            sort_key: None,
        }],
        ..ORDERS
    };
    code_change_reports(
        |c| replace_table(c, WITH_INDEX),
        &["OrdersTable", "GlobalSecondaryIndexes"],
    );
    const STEPS_MORE_ENV: FunctionSpec = FunctionSpec {
        env: &["ORDERS_NEW_SETTING"],
        ..STEPS
    };
    code_change_reports(
        |c| replace_function(c, STEPS_MORE_ENV),
        &["StepsFunction", "environment"],
    );
    const API_DELETES: FunctionSpec = FunctionSpec {
        dynamodb_actions: &["GetItem", "DeleteItem"],
        ..API
    };
    code_change_reports(
        |c| replace_function(c, API_DELETES),
        &["ApiFunction", "lacks dynamodb:DeleteItem"],
    );
    code_change_reports(
        |c| {
            c.asl = c
                .asl
                .replacen("${MarkFailedFunctionArn}", "${MarkFailedFunctionArnV2}", 1)
        },
        &["MarkFailedFunctionArnV2"],
    );
    code_change_reports(
        |c| _ = c.routes.insert(("DELETE".into(), "/orders/{}".into())),
        &["no route", "DELETE"],
    );
}
