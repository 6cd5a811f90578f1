//! The deployed functions and what each may touch: its binary, the tables it reads and
//! writes, the DynamoDB actions it calls and the environment it reads. The binaries load their
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
    /// DynamoDB actions (IAM names, without the `dynamodb:` prefix), on those tables and
    /// their indexes. `TransactWriteItems` needs no action of its own: IAM checks each write
    /// inside it (`PutItem`, `UpdateItem`) against the item's table.
    pub dynamodb_actions: &'static [&'static str],
    /// Environment variables it reads besides the tables' (which come from `tables`).
    pub env: &'static [&'static str],
    /// Step Functions actions, on the saga state machine.
    pub states_actions: &'static [&'static str],
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

/// The HTTP API (the `orders` binary under `lambda_http`).
pub const API: FunctionSpec = FunctionSpec {
    logical: "ApiFunction",
    binary: "orders",
    tables: &[ORDERS, OUTBOX, IDEMPOTENCY, INVENTORY, VOUCHERS],
    dynamodb_actions: &["GetItem", "PutItem", "UpdateItem", "Query"],
    env: &[
        IDEMPOTENCY_TTL_ENV,
        REQUIRE_IDEMPOTENCY_KEY_ENV,
        BODY_LIMIT_ENV,
        AUTH_ENV,
        ADMIN_SCOPE_ENV,
        ADMIN_GROUP_ENV,
    ],
    states_actions: &[],
};

/// The DynamoDB Streams consumer of the outbox: starts one execution per event.
pub const PROCESSOR: FunctionSpec = FunctionSpec {
    logical: "ProcessorFunction",
    binary: "orders-processor",
    tables: &[],
    dynamodb_actions: &[],
    env: &[STATE_MACHINE_ARN_ENV],
    states_actions: &["StartExecution"],
};

/// Every Task state of the state machine (one function, dispatched on the `step` field).
pub const STEPS: FunctionSpec = FunctionSpec {
    logical: "StepsFunction",
    binary: "orders-steps",
    tables: &[ORDERS, INVENTORY, VOUCHERS, SAGA],
    dynamodb_actions: &["GetItem", "PutItem", "UpdateItem"],
    env: &[PAYMENT_TRANSIENT_RATE_ENV, NOTIFICATION_FAILURE_RATE_ENV],
    states_actions: &[],
};

pub const FUNCTIONS: [FunctionSpec; 3] = [API, PROCESSOR, STEPS];
