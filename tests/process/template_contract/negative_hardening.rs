//! The hardening checks can fail: each test removes or weakens one protection of the
//! template (data protection, an alarm, reserved concurrency, tracing, the fault-injection
//! switch) and requires a problem that names it.

use super::negative::{RES, at, remove, reports_after, set};
use serde_json::{Value, json};

/// The change that removes the last policy of a role, which must be the X-Ray one.
fn drop_xray_policy(role: &str) -> impl FnOnce(&mut Value) + '_ {
    move |t| {
        let policies = at(t, &format!("{RES}/{role}/Properties/Policies"));
        let removed = policies.as_array_mut().and_then(Vec::pop);
        assert_eq!(
            removed.map(|p| p["PolicyName"].clone()),
            Some(json!("xray"))
        );
    }
}

/// The change that replaces what `pointer` (from the template's root) addresses.
fn set_root(pointer: &str, value: Value) -> impl FnOnce(&mut Value) + '_ {
    move |t| *at(t, pointer) = value
}

#[test]
fn a_table_without_its_protection_fails() {
    reports_after(
        remove("OrdersTable/DeletionPolicy"),
        &[
            "table OrdersTable",
            "DeletionPolicy is absent, expected Retain",
        ],
    );
    reports_after(
        set("SagaTable/UpdateReplacePolicy", json!("Delete")),
        &[
            "table SagaTable",
            "UpdateReplacePolicy is Delete, expected Retain",
        ],
    );
    reports_after(
        remove("VouchersTable/Properties/DeletionProtectionEnabled"),
        &[
            "table VouchersTable",
            "DeletionProtectionEnabled must be true",
        ],
    );
    let pitr = "PointInTimeRecoverySpecification/PointInTimeRecoveryEnabled";
    reports_after(
        set(&format!("IdempotencyTable/Properties/{pitr}"), json!(false)),
        &["table IdempotencyTable", "point-in-time recovery is off"],
    );
    reports_after(
        remove("OutboxTable/Properties/PointInTimeRecoverySpecification"),
        &["table OutboxTable", "point-in-time recovery is off"],
    );
    reports_after(
        set("InventoryTable/DeletionPolicy", json!("Snapshot")),
        &["table InventoryTable", "DeletionPolicy is Snapshot"],
    );
}

#[test]
fn a_missing_weak_or_silent_alarm_fails() {
    reports_after(
        remove("SagaExecutionsFailedAlarm"),
        &["no alarm on AWS/States ExecutionsFailed of StateMachineArn ${OrderSaga}"],
    );
    reports_after(
        set(
            "SagaExecutionsTimedOutAlarm/Properties/Dimensions/0/Value",
            json!("arn:aws:states:us-east-1:1:stateMachine:other"),
        ),
        &["no alarm on AWS/States ExecutionsTimedOut"],
    );
    reports_after(
        set("SagaExecutionsFailedAlarm/Properties/Threshold", json!(5)),
        &["SagaExecutionsFailedAlarm", "must fire on the first one"],
    );
    reports_after(
        remove("StepsFunctionThrottlesAlarm"),
        &["no alarm on AWS/Lambda Throttles of FunctionName ${StepsFunction}"],
    );
    reports_after(
        remove("ProcessorFunctionErrorsAlarm"),
        &["no alarm on AWS/Lambda Errors of FunctionName ${ProcessorFunction}"],
    );
    // The steps' alarm is metric math: its Errors metric is found inside Metrics.
    let steps_errors = "StepsFunctionErrorsAlarm/Properties/Metrics/0/MetricStat/Metric";
    reports_after(
        set(&format!("{steps_errors}/MetricName"), json!("Invocations")),
        &["no alarm on AWS/Lambda Errors of FunctionName ${StepsFunction}"],
    );
    reports_after(
        set("Api5xxAlarm/Properties/MetricName", json!("4xx")),
        &["no alarm on AWS/ApiGateway 5xx of ApiId ${HttpApi}"],
    );
    let saga_writes = "SagaTableThrottleAlarm/Properties/Metrics/1/MetricStat/Metric/Dimensions/0";
    reports_after(
        set(
            &format!("{saga_writes}/Value"),
            json!({"Ref": "OrdersTable"}),
        ),
        &["no alarm on AWS/DynamoDB WriteThrottleEvents of TableName ${SagaTable}"],
    );
    reports_after(
        set("ApiFunctionErrorsAlarm/Properties/AlarmActions", json!([])),
        &["alarm ApiFunctionErrorsAlarm", "do not notify AlarmTopic"],
    );
    reports_after(
        set(
            "OutboxIteratorAgeAlarm/Properties/TreatMissingData",
            json!("breaching"),
        ),
        &[
            "alarm OutboxIteratorAgeAlarm",
            "TreatMissingData must be notBreaching",
        ],
    );
    reports_after(
        |t| at(t, &format!("{RES}/Api5xxAlarm/Properties"))["ActionsEnabled"] = json!(false),
        &["alarm Api5xxAlarm: ActionsEnabled is false"],
    );
}

#[test]
fn concurrency_or_tracing_not_from_their_parameters_fails() {
    reports_after(
        remove("ApiFunction/Properties/ReservedConcurrentExecutions"),
        &["function ApiFunction: ReservedConcurrentExecutions must be !Ref"],
    );
    reports_after(
        set(
            "ProcessorFunction/Properties/ReservedConcurrentExecutions",
            json!(10),
        ),
        &[
            "function ProcessorFunction: ReservedConcurrentExecutions",
            "10",
        ],
    );
    reports_after(
        set_root("/Parameters/StepsReservedConcurrency/Type", json!("String")),
        &["function StepsFunction: ReservedConcurrentExecutions"],
    );
    reports_after(
        remove("StepsFunction/Properties/Tracing"),
        &["function StepsFunction: Tracing must be !Ref the tracing parameter"],
    );
    reports_after(
        set("ApiFunction/Properties/Tracing", json!("PassThrough")),
        &["function ApiFunction: Tracing must be !Ref", "PassThrough"],
    );
    reports_after(
        set_root("/Parameters/Tracing/Default", json!("PassThrough")),
        &["function ProcessorFunction: Tracing must be !Ref"],
    );
    reports_after(
        set("OrderSaga/Properties/Tracing/Enabled", json!(false)),
        &["state machine OrderSaga: Tracing.Enabled must be !If"],
    );
    reports_after(
        remove("OrderSaga/Properties/Tracing"),
        &["state machine OrderSaga: Tracing.Enabled must be !If"],
    );
    // The permissions tracing needs follow it: none missing, none left over.
    reports_after(
        drop_xray_policy("StepsFunctionRole"),
        &["StepsFunction", "lacks xray:PutTraceSegments on *"],
    );
    reports_after(
        remove("ApiFunction/Properties/Tracing"),
        &["ApiFunction", "granted xray:PutTelemetryRecords on *"],
    );
    reports_after(
        drop_xray_policy("OrderSagaRole"),
        &["state machine role OrderSagaRole", "xray:GetSamplingRules"],
    );
}

#[test]
fn fault_injection_on_by_default_fails() {
    let env = "StepsFunction/Properties/Environment/Variables";
    reports_after(
        set(
            &format!("{env}/ORDERS_PAYMENT_TRANSIENT_ERROR_RATE"),
            json!({"Ref": "PaymentTransientErrorRate"}),
        ),
        &[
            "function StepsFunction: ORDERS_PAYMENT_TRANSIENT_ERROR_RATE",
            "set unconditionally",
        ],
    );
    reports_after(
        set(
            &format!("{env}/ORDERS_NOTIFICATION_FAILURE_RATE/Fn::If/2"),
            json!("0"),
        ),
        &["ORDERS_NOTIFICATION_FAILURE_RATE", "not AWS::NoValue"],
    );
    reports_after(
        set_root("/Parameters/FaultInjection/Default", json!("enabled")),
        &[
            "ORDERS_PAYMENT_TRANSIENT_ERROR_RATE",
            "FaultInjection's default",
        ],
    );
    reports_after(
        set_root(
            "/Conditions/FaultInjectionEnabled",
            json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "FaultInjection"}, "enabled"]}]}),
        ),
        &["ORDERS_NOTIFICATION_FAILURE_RATE", "is not a Fn::Equals"],
    );
}
