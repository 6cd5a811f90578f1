//! The deployed functions and what each may touch: its binary, the tables it reads and
//! writes, the DynamoDB, Step Functions, SQS and EventBridge actions it calls and the
//! environment it reads. The binaries load their
//! configuration from these lists, and the template-contract test holds the template's IAM
//! policies and environment blocks to them, so least privilege is checked, not hoped for.

use crate::tables::{
    IDEMPOTENCY, INVENTORY, ORDERS, OUTBOX, SAGA, STATE_MACHINE_ARN_ENV, TableSpec, VOUCHERS,
};
use orders_workflow::steps::{NOTIFICATION_FAILURE_RATE_ENV, PAYMENT_TRANSIENT_RATE_ENV};

#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    /// The template's logical id of the function.
    pub logical: &'static str,
    /// The cargo binary that cargo-lambda builds for it.
    pub binary: &'static str,
    pub tables: &'static [TableSpec],
    /// DynamoDB actions (IAM names, without the `dynamodb:` prefix), on every one of those
    /// tables. `TransactWriteItems` and `TransactGetItems` need no action of their own: IAM
    /// checks each write (`PutItem`, `UpdateItem`) and each read (`GetItem`) inside them
    /// against the item's table.
    pub dynamodb_actions: &'static [&'static str],
    /// The tables (of `tables`) it also reads with `Query`, with their indexes; a table it
    /// only reads and writes item by item is left out, so it gets no `Query` there.
    pub queried_tables: &'static [TableSpec],
    /// Environment variables it reads besides the tables' (which come from `tables`).
    pub env: &'static [&'static str],
    /// Step Functions actions, on the saga state machine.
    pub states_actions: &'static [&'static str],
    /// Step Functions actions on the saga's executions (`execution:<machine name>:*`).
    pub execution_actions: &'static [&'static str],
    /// The task-token calls (`SendTask*`). IAM cannot scope the tokens of service-integration
    /// Tasks to a state machine (these actions take only activity ARNs), so they are granted
    /// on `*`; holding a token is what authorizes a call about it.
    pub token_actions: &'static [&'static str],
    /// SQS actions on the warehouse queue.
    pub warehouse_queue_actions: &'static [&'static str],
    /// EventBridge actions on the stack's event bus (the domain events).
    pub event_bus_actions: &'static [&'static str],
}

/// The API settings the template sets; `orders --help` lists them under these names.
pub const IDEMPOTENCY_TTL_ENV: &str = "ORDERS_IDEMPOTENCY_TTL_SECS";
pub const REQUIRE_IDEMPOTENCY_KEY_ENV: &str = "ORDERS_REQUIRE_IDEMPOTENCY_KEY";
pub const BODY_LIMIT_ENV: &str = "ORDERS_BODY_LIMIT";
/// `jwt`: callers are who API Gateway's JWT authorizer verified; `none` needs the next one.
pub const AUTH_ENV: &str = "ORDERS_AUTH";
pub const ALLOW_UNAUTHENTICATED_ENV: &str = "ORDERS_ALLOW_UNAUTHENTICATED";
/// Who is an admin: a token's `scope` holding this, or its `cognito:groups` holding the group.
pub const ADMIN_SCOPE_ENV: &str = "ORDERS_ADMIN_SCOPE";
pub const ADMIN_GROUP_ENV: &str = "ORDERS_ADMIN_GROUP";
/// The Standard Webhooks secret (`whsec_...`) the payment provider signs its webhooks with.
pub const PAYMENT_WEBHOOK_SECRET_ENV: &str = "ORDERS_PAYMENT_WEBHOOK_SECRET";
/// The payment provider's base URL (`POST {base}/charges`), for RequestPayment.
pub const PAYMENT_PROVIDER_URL_ENV: &str = "ORDERS_PAYMENT_PROVIDER_URL";
/// The payment provider's secret API key, sent with each charge as a bearer token.
pub const PAYMENT_PROVIDER_KEY_ENV: &str = "ORDERS_PAYMENT_PROVIDER_KEY";
/// Where the payment simulator posts its webhooks: the API's `POST /webhooks/payments`.
pub const PAYMENT_WEBHOOK_URL_ENV: &str = "ORDERS_PAYMENT_WEBHOOK_URL";
/// Milliseconds from an accepted charge to the simulator's webhook.
pub const PAYMENT_SIM_DELAY_MS_ENV: &str = "ORDERS_PAYMENT_SIM_DELAY_MS";
/// How long the warehouse worker "packs" one parcel, in milliseconds.
pub const WAREHOUSE_PACKING_MS_ENV: &str = "ORDERS_WAREHOUSE_PACKING_MS";
/// Days an outbox item is kept: its `expiration` (the table's TTL) is its creation plus these.
pub const RETENTION_DAYS_ENV: &str = "ORDERS_RETENTION_DAYS";
/// The name of the EventBridge custom bus the processor publishes the public events to.
pub const EVENT_BUS_NAME_ENV: &str = "ORDERS_EVENT_BUS_NAME";

/// The HTTP API (the `orders` binary under `lambda_http`).
pub const API: FunctionSpec = FunctionSpec {
    logical: "ApiFunction",
    binary: "orders",
    // The saga table holds the payment and the webhooks seen, which a payment webhook
    // reads and writes in the same transaction as the order.
    tables: &[ORDERS, OUTBOX, IDEMPOTENCY, INVENTORY, VOUCHERS, SAGA],
    dynamodb_actions: &["GetItem", "PutItem", "UpdateItem"],
    queried_tables: &[ORDERS, OUTBOX, IDEMPOTENCY, INVENTORY, VOUCHERS],
    env: &[
        IDEMPOTENCY_TTL_ENV,
        RETENTION_DAYS_ENV,
        REQUIRE_IDEMPOTENCY_KEY_ENV,
        BODY_LIMIT_ENV,
        AUTH_ENV,
        ADMIN_SCOPE_ENV,
        ADMIN_GROUP_ENV,
        PAYMENT_WEBHOOK_SECRET_ENV,
        // `POST /executions/{name}/redrive` redrives an execution of this state machine.
        STATE_MACHINE_ARN_ENV,
    ],
    states_actions: &[],
    execution_actions: &["RedriveExecution"],
    token_actions: &[],
    warehouse_queue_actions: &[],
    event_bus_actions: &[],
};

/// The DynamoDB Streams consumer of the outbox: starts one execution per `order.created`,
/// delivers each task signal (a cancellation's token read from the execution's history), and
/// publishes every public event to the event bus.
pub const PROCESSOR: FunctionSpec = FunctionSpec {
    logical: "ProcessorFunction",
    binary: "orders-processor",
    tables: &[],
    dynamodb_actions: &[],
    queried_tables: &[],
    env: &[STATE_MACHINE_ARN_ENV, EVENT_BUS_NAME_ENV],
    states_actions: &["StartExecution"],
    execution_actions: &["GetExecutionHistory"],
    token_actions: &["SendTaskSuccess", "SendTaskFailure"],
    warehouse_queue_actions: &[],
    event_bus_actions: &["PutEvents"],
};

/// Every Task state of the state machine (one function, dispatched on the `step` field). It
/// puts the public event of each change it makes in the outbox.
pub const STEPS: FunctionSpec = FunctionSpec {
    logical: "StepsFunction",
    binary: "orders-steps",
    tables: &[ORDERS, OUTBOX, INVENTORY, VOUCHERS, SAGA],
    dynamodb_actions: &["GetItem", "PutItem", "UpdateItem"],
    queried_tables: &[],
    env: &[
        PAYMENT_TRANSIENT_RATE_ENV,
        NOTIFICATION_FAILURE_RATE_ENV,
        RETENTION_DAYS_ENV,
        PAYMENT_PROVIDER_URL_ENV,
        PAYMENT_PROVIDER_KEY_ENV,
    ],
    states_actions: &[],
    execution_actions: &[],
    token_actions: &[],
    warehouse_queue_actions: &[],
    event_bus_actions: &[],
};

/// The warehouse worker on the warehouse queue (SQS event source): heartbeats, packs, and
/// completes each shipment request's task. The queue actions are what Lambda's SQS poller
/// calls with the function's role.
pub const WAREHOUSE: FunctionSpec = FunctionSpec {
    logical: "WarehouseFunction",
    binary: "orders-warehouse",
    tables: &[],
    dynamodb_actions: &[],
    queried_tables: &[],
    env: &[WAREHOUSE_PACKING_MS_ENV],
    states_actions: &[],
    execution_actions: &[],
    token_actions: &["SendTaskHeartbeat", "SendTaskSuccess", "SendTaskFailure"],
    warehouse_queue_actions: &["ReceiveMessage", "DeleteMessage", "GetQueueAttributes"],
    event_bus_actions: &[],
};

/// The payment provider simulator (the `orders-payment-sim` binary under `lambda_http`,
/// behind a function URL), deployed when the template's `PaymentSimulator` is true: it
/// answers each charge with a signed webhook to the API and touches nothing of AWS.
pub const PAYMENT_SIMULATOR: FunctionSpec = FunctionSpec {
    logical: "PaymentSimulatorFunction",
    binary: "orders-payment-sim",
    tables: &[],
    dynamodb_actions: &[],
    queried_tables: &[],
    env: &[
        PAYMENT_WEBHOOK_URL_ENV,
        PAYMENT_WEBHOOK_SECRET_ENV,
        PAYMENT_PROVIDER_KEY_ENV,
        PAYMENT_SIM_DELAY_MS_ENV,
    ],
    states_actions: &[],
    execution_actions: &[],
    token_actions: &[],
    warehouse_queue_actions: &[],
    event_bus_actions: &[],
};

pub const FUNCTIONS: [FunctionSpec; 5] = [API, PROCESSOR, STEPS, WAREHOUSE, PAYMENT_SIMULATOR];
