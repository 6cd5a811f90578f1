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
pub(super) fn reports_after(change: impl FnOnce(&mut Value), needles: &[&str]) {
    let mut template = baseline();
    change(&mut template);
    assert_reports(&check(&template, &code()), needles);
}

pub(super) fn code_change_reports(change: impl FnOnce(&mut Code), needles: &[&str]) {
    let mut c = code();
    change(&mut c);
    assert_reports(&check(&baseline(), &c), needles);
}

/// Puts `new` in the place of the spec in `specs` with the same logical name.
fn replace<T>(specs: &mut [T], new: T, logical: impl Fn(&T) -> &str) {
    let slot = specs.iter_mut().find(|old| logical(old) == logical(&new));
    *slot.expect("a spec of that name in the code") = new;
}

pub(super) fn assert_reports(problems: &[String], needles: &[&str]) {
    assert!(
        problems
            .iter()
            .any(|p| needles.iter().all(|n| p.contains(n))),
        "expected a problem mentioning {needles:?}; got:{}",
        report(problems)
    );
}

pub(super) fn at<'a>(t: &'a mut Value, pointer: &str) -> &'a mut Value {
    t.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} not in the template"))
}

pub(super) const RES: &str = "/Resources";

/// The change that replaces what `pointer` (below `/Resources`) addresses, which must be
/// there, with `value`.
pub(super) fn set(pointer: &str, value: Value) -> impl FnOnce(&mut Value) + '_ {
    move |t| *at(t, &format!("{RES}/{pointer}")) = value
}

/// The change that appends `value` to the list `pointer` (below `/Resources`) addresses.
fn push(pointer: &str, value: Value) -> impl FnOnce(&mut Value) + '_ {
    move |t| {
        let list = at(t, &format!("{RES}/{pointer}")).as_array_mut();
        list.unwrap_or_else(|| panic!("{pointer} is not a list"))
            .push(value)
    }
}

/// The change that deletes the key `pointer` (below `/Resources`) ends with; a key that is
/// not there fails the test, since removing nothing would prove nothing.
pub(super) fn remove(pointer: &str) -> impl FnOnce(&mut Value) + '_ {
    move |t| {
        let (parent, key) = match pointer.rsplit_once('/') {
            Some((parent, key)) => (format!("{RES}/{parent}"), key),
            None => (RES.to_owned(), pointer),
        };
        let object = at(t, &parent).as_object_mut();
        let removed = object.and_then(|o| o.remove(key));
        assert!(removed.is_some(), "{pointer} not in the template");
    }
}

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
        set(
            "SagaTable/Properties/KeySchema/1/AttributeName",
            json!("kind"),
        ),
        &["SagaTable", "KeySchema"],
    );
    let attribute_type = "VouchersTable/Properties/AttributeDefinitions/0/AttributeType";
    reports_after(
        set(attribute_type, json!("N")),
        &["VouchersTable", "AttributeDefinitions"],
    );
    reports_after(
        remove("OrdersTable/Properties/GlobalSecondaryIndexes"),
        &["OrdersTable", "GlobalSecondaryIndexes"],
    );
    let view_type = "OutboxTable/Properties/StreamSpecification/StreamViewType";
    reports_after(
        set(view_type, json!("NEW_AND_OLD_IMAGES")),
        &["OutboxTable", "stream view type"],
    );
    let ttl = "IdempotencyTable/Properties/TimeToLiveSpecification/AttributeName";
    reports_after(set(ttl, json!("ttl")), &["IdempotencyTable", "TTL"]);
    reports_after(
        set(
            "InventoryTable/Properties/BillingMode",
            json!("PROVISIONED"),
        ),
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
    let api_env = "ApiFunction/Properties/Environment/Variables";
    reports_after(
        set(
            &format!("{api_env}/ORDERS_TABLE_OUTBOX"),
            json!({"Ref": "OrdersTable"}),
        ),
        &["ApiFunction", "ORDERS_TABLE_OUTBOX", "${OutboxTable}"],
    );
    let machine = "ProcessorFunction/Properties/Environment/Variables/ORDERS_STATE_MACHINE_ARN";
    reports_after(
        set(machine, json!("arn:aws:states:us-east-1:1:stateMachine:x")),
        &["ProcessorFunction", "ORDERS_STATE_MACHINE_ARN"],
    );
    reports_after(
        set(
            "ProcessorFunction/Properties/CodeUri",
            json!("../target/lambda/orders/"),
        ),
        &["ProcessorFunction", "CodeUri"],
    );
}

#[test]
fn a_grant_beyond_or_short_of_the_code_fails() {
    let api_tables = "ApiFunctionRole/Properties/Policies/1/PolicyDocument/Statement/0";
    reports_after(
        push(
            &format!("{api_tables}/Action"),
            json!("dynamodb:DeleteItem"),
        ),
        &["ApiFunction", "granted dynamodb:DeleteItem"],
    );
    reports_after(
        push(
            &format!("{api_tables}/Resource"),
            json!({"Fn::GetAtt": ["SagaTable", "Arn"]}),
        ),
        &["ApiFunction", "${SagaTable.Arn}", "does not use"],
    );
    reports_after(
        set(&format!("{api_tables}/Resource"), json!("*")),
        &["ApiFunction", "on *"],
    );
    let processor = "ProcessorFunctionRole/Properties/Policies/1/PolicyDocument/Statement/0";
    reports_after(
        set(
            &format!("{processor}/Action"),
            json!("states:StartSyncExecution"),
        ),
        &["ProcessorFunction", "lacks states:StartExecution"],
    );
    reports_after(
        |t| {
            at(t, &format!("{RES}/ProcessorFunctionRole/Properties"))["ManagedPolicyArns"] =
                json!(["arn:aws:iam::aws:policy/AdministratorAccess"])
        },
        &["ManagedPolicyArns"],
    );
    let saga = "OrderSagaRole/Properties/Policies/0/PolicyDocument/Statement/0/Resource";
    reports_after(
        set(saga, json!({"Fn::GetAtt": ["ApiFunction", "Arn"]})),
        &["state machine role OrderSagaRole"],
    );
}

#[test]
fn the_saga_and_the_stream_mapping_are_checked() {
    reports_after(
        remove("OrderSaga/Properties/DefinitionSubstitutions/RestoreVoucherFunctionArn"),
        &["${RestoreVoucherFunctionArn} has no DefinitionSubstitution"],
    );
    reports_after(
        set("OrderSaga/Properties/Type", json!("EXPRESS")),
        &["STANDARD"],
    );
    let mapping = "ProcessorFunction/Properties/Events/Outbox/Properties";
    reports_after(
        set(&format!("{mapping}/MaximumRetryAttempts"), json!(-1)),
        &["MaximumRetryAttempts"],
    );
    reports_after(
        set(
            &format!("{mapping}/BisectBatchOnFunctionError"),
            json!(false),
        ),
        &["Bisect"],
    );
    reports_after(
        set(
            &format!("{mapping}/FilterCriteria/Filters/0/Pattern"),
            json!(r#"{"eventName":["INSERT","MODIFY"]}"#),
        ),
        &["FilterCriteria"],
    );
    reports_after(
        remove("ApiFunction/Properties/Events/GetOrder"),
        &["ApiFunction", "no route", "/orders/{}"],
    );
    reports_after(
        remove("ApiFunction/Properties/Events/Health/Properties/ApiId"),
        &["event Health is not on the stack's HttpApi"],
    );
    reports_after(remove("ProcessorDlqDepthAlarm"), &["no alarm on the depth"]);
    reports_after(
        remove("StepsLogGroup/Properties/RetentionInDays"),
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
        |c| replace(&mut c.tables, WITH_INDEX, |t| t.logical),
        &["OrdersTable", "GlobalSecondaryIndexes"],
    );
    const STEPS_MORE_ENV: FunctionSpec = FunctionSpec {
        env: &["ORDERS_NEW_SETTING"],
        ..STEPS
    };
    code_change_reports(
        |c| replace(&mut c.functions, STEPS_MORE_ENV, |f| f.logical),
        &["StepsFunction", "environment"],
    );
    const API_DELETES: FunctionSpec = FunctionSpec {
        dynamodb_actions: &["GetItem", "DeleteItem"],
        ..API
    };
    code_change_reports(
        |c| replace(&mut c.functions, API_DELETES, |f| f.logical),
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
