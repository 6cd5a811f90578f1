//! The checker can fail on the lifecycle's pieces: the warehouse queue and its worker, the
//! saga's right to that queue only, the processor's signal calls, the webhook secret and the
//! webhook's open route. One fact changed at a time, each named in a problem.

use super::negative::{RES, assert_reports, at, code_change_reports, remove, reports_after, set};
use super::{code, load, root};
use orders_aws::functions::{API, FunctionSpec, PROCESSOR, WAREHOUSE};
use serde_json::json;

const SAGA_QUEUE: &str = "OrderSagaRole/Properties/Policies/1/PolicyDocument/Statement/0";
const PROCESSOR_SAGA: &str = "ProcessorFunctionRole/Properties/Policies/1/PolicyDocument/Statement";
const API_SAGA: &str = "ApiFunctionRole/Properties/Policies/1/PolicyDocument/Statement/1";
const WAREHOUSE_TASKS: &str =
    "WarehouseFunctionRole/Properties/Policies/1/PolicyDocument/Statement/0";

#[test]
fn the_saga_may_send_to_the_warehouse_queue_only() {
    // The policy under test is the one it claims to be.
    let t = load(&root().join("infra/template.yaml"));
    let statement = t
        .pointer(&format!("{RES}/{SAGA_QUEUE}"))
        .expect("statement");
    assert_eq!(statement["Action"], "sqs:SendMessage");
    reports_after(
        set(
            &format!("{SAGA_QUEUE}/Resource"),
            json!({"Fn::GetAtt": ["ProcessorDlq", "Arn"]}),
        ),
        &["state machine role OrderSagaRole", "sqs:SendMessage"],
    );
    reports_after(
        set(&format!("{SAGA_QUEUE}/Resource"), json!("*")),
        &["state machine role OrderSagaRole", "sqs:SendMessage"],
    );
    reports_after(
        set(
            "OrderSaga/Properties/DefinitionSubstitutions/WarehouseQueueUrl",
            json!({"Fn::GetAtt": ["StepsFunction", "Arn"]}),
        ),
        &[
            "WarehouseQueueUrl is ${StepsFunction.Arn}",
            "expected ${WarehouseQueue}",
        ],
    );
    reports_after(
        remove("OrderSaga/Properties/DefinitionSubstitutions/WarehouseQueueUrl"),
        &["${WarehouseQueueUrl} has no DefinitionSubstitution"],
    );
}

#[test]
fn the_warehouse_queue_and_worker_are_checked() {
    reports_after(
        remove("WarehouseQueue/Properties/SqsManagedSseEnabled"),
        &["WarehouseQueue is not encrypted"],
    );
    reports_after(
        remove("WarehouseQueue/Properties/RedrivePolicy"),
        &["WarehouseQueue: RedrivePolicy"],
    );
    reports_after(
        remove("WarehouseDlqDepthAlarm"),
        &["no alarm on the depth of the warehouse DLQ WarehouseDlq"],
    );
    reports_after(
        remove(
            "WarehouseFunction/Properties/Events/ShipmentRequests/Properties/FunctionResponseTypes",
        ),
        &["WarehouseFunction's SQS event", "ReportBatchItemFailures"],
    );
    reports_after(
        set(
            "WarehouseFunction/Properties/Events/ShipmentRequests/Properties/Queue",
            json!({"Fn::GetAtt": ["ProcessorDlq", "Arn"]}),
        ),
        &["WarehouseFunction: consumes queues"],
    );
    reports_after(
        set("WarehouseQueue/Properties/VisibilityTimeout", json!(120)),
        &["VisibilityTimeout 120"],
    );
    // Only the queue worker may take SQS events.
    reports_after(
        |t| {
            at(t, &format!("{RES}/StepsFunction/Properties"))["Events"] = json!({
                "Q": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["WarehouseQueue", "Arn"]}}}
            })
        },
        &["StepsFunction: event Q of type SQS is not its role"],
    );
    // Its token calls are granted on `*` and nowhere narrower that would refuse them.
    reports_after(
        set(
            &format!("{WAREHOUSE_TASKS}/Resource"),
            json!({"Ref": "OrderSaga"}),
        ),
        &["WarehouseFunction", "lacks states:SendTaskHeartbeat on *"],
    );
    reports_after(
        set(
            "WarehouseFunctionRole/Properties/Policies/2/PolicyDocument/Statement/0/Action",
            json!([
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:SendMessage"
            ]),
        ),
        &[
            "WarehouseFunction",
            "sqs:SendMessage on ${WarehouseQueue.Arn}",
            "does not use",
        ],
    );
    const WAREHOUSE_CANCELS: FunctionSpec = FunctionSpec {
        states_actions: &["StopExecution"],
        ..WAREHOUSE
    };
    code_change_reports(
        |c| {
            let slot = c
                .functions
                .iter_mut()
                .find(|f| f.logical == WAREHOUSE.logical);
            *slot.expect("the warehouse spec") = WAREHOUSE_CANCELS;
        },
        &["WarehouseFunction", "lacks states:StopExecution"],
    );
}

#[test]
fn the_processor_reads_only_the_sagas_histories_and_the_secret_is_not_echoed() {
    let t = load(&root().join("infra/template.yaml"));
    let history = t
        .pointer(&format!("{RES}/{PROCESSOR_SAGA}/1"))
        .expect("statement");
    assert_eq!(history["Action"], "states:GetExecutionHistory");
    reports_after(
        |t| {
            let list = at(t, &format!("{RES}/{PROCESSOR_SAGA}")).as_array_mut();
            list.expect("a list of statements").remove(1);
        },
        &["ProcessorFunction", "lacks states:GetExecutionHistory"],
    );
    reports_after(
        set(
            &format!("{PROCESSOR_SAGA}/1/Resource"),
            json!({"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:*"}),
        ),
        &[
            "ProcessorFunction",
            "states:GetExecutionHistory",
            "does not use",
        ],
    );
    const PROCESSOR_HEARTBEATS: FunctionSpec = FunctionSpec {
        token_actions: &["SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"],
        ..PROCESSOR
    };
    code_change_reports(
        |c| {
            let slot = c
                .functions
                .iter_mut()
                .find(|f| f.logical == PROCESSOR.logical);
            *slot.expect("the processor spec") = PROCESSOR_HEARTBEATS;
        },
        &["ProcessorFunction", "lacks states:SendTaskHeartbeat on *"],
    );
    reports_after(
        |t| {
            let param = at(t, "/Parameters/PaymentWebhookSecret").as_object_mut();
            assert!(param.and_then(|p| p.remove("NoEcho")).is_some());
        },
        &["ApiFunction", "ORDERS_PAYMENT_WEBHOOK_SECRET", "NoEcho"],
    );
    reports_after(
        set(
            "ApiFunction/Properties/Environment/Variables/ORDERS_PAYMENT_WEBHOOK_SECRET",
            json!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ),
        &["ApiFunction", "ORDERS_PAYMENT_WEBHOOK_SECRET", "NoEcho"],
    );
}

#[test]
fn the_webhook_route_is_open_and_only_it() {
    reports_after(
        remove("ApiFunction/Properties/Events/PaymentWebhook/Properties/Auth"),
        &["POST /webhooks/payments"],
    );
    reports_after(
        remove("ApiFunction/Properties/Events/PaymentWebhook"),
        &["ApiFunction", "have no route"],
    );
    // Dropped from the open routes in the code, the template's open route is reported.
    let mut c = code();
    c.open_routes
        .remove(&("POST".to_owned(), "/webhooks/payments".to_owned()));
    let problems = super::checks::check(&load(&root().join("infra/template.yaml")), &c);
    assert_reports(&problems, &["/webhooks/payments"]);
}

#[test]
fn the_api_reads_and_writes_the_saga_table_item_by_item() {
    let t = load(&root().join("infra/template.yaml"));
    let statement = t.pointer(&format!("{RES}/{API_SAGA}")).expect("statement");
    assert_eq!(
        statement["Resource"],
        json!({"Fn::GetAtt": ["SagaTable", "Arn"]})
    );
    reports_after(
        |t| {
            let list = at(
                t,
                &format!("{RES}/ApiFunctionRole/Properties/Policies/1/PolicyDocument/Statement"),
            )
            .as_array_mut();
            list.expect("a list of statements").remove(1);
        },
        &[
            "ApiFunction",
            "lacks dynamodb:UpdateItem on ${SagaTable.Arn}",
        ],
    );
    reports_after(
        remove("ApiFunction/Properties/Environment/Variables/ORDERS_TABLE_SAGA"),
        &["function ApiFunction: environment", "ORDERS_TABLE_SAGA"],
    );
    reports_after(
        set(
            "ApiFunction/Properties/Environment/Variables/ORDERS_TABLE_SAGA",
            json!({"Ref": "OrdersTable"}),
        ),
        &[
            "ORDERS_TABLE_SAGA is ${OrdersTable}",
            "expected ${SagaTable}",
        ],
    );
    // Item by item only: a Query on it is more than the webhook needs.
    reports_after(
        set(
            &format!("{API_SAGA}/Action"),
            json!([
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query"
            ]),
        ),
        &[
            "ApiFunction",
            "dynamodb:Query on ${SagaTable.Arn}",
            "does not use",
        ],
    );
    // Without the saga table in the code's list, the template's grant is reported.
    const API_WITHOUT_SAGA: FunctionSpec = FunctionSpec {
        tables: &[
            orders_aws::tables::ORDERS,
            orders_aws::tables::OUTBOX,
            orders_aws::tables::IDEMPOTENCY,
            orders_aws::tables::INVENTORY,
            orders_aws::tables::VOUCHERS,
        ],
        ..API
    };
    code_change_reports(
        |c| {
            let slot = c.functions.iter_mut().find(|f| f.logical == API.logical);
            *slot.expect("the API spec") = API_WITHOUT_SAGA;
        },
        &[
            "ApiFunction",
            "dynamodb:GetItem on ${SagaTable.Arn}",
            "does not use",
        ],
    );
}
