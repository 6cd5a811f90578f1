//! The DynamoDB tables: names of keys, indexes, stream and TTL, and the environment variable
//! that carries each table's deployed name.
//!
//! Every key attribute is a string. Sort keys that order by time are `<UTC timestamp>#<id>`
//! strings: timestamps are fixed-width RFC 3339 with milliseconds, so string order is time
//! order and the id breaks ties, which is what keyset pagination needs.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// Logical name; also the suffix of the default physical name.
    pub logical: &'static str,
    /// Where a deployed function finds the physical name.
    pub env_var: &'static str,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
    /// Global secondary indexes, all projecting ALL attributes.
    pub indexes: &'static [IndexSpec],
    /// Whether the table has a stream of NEW_IMAGE records (the outbox).
    pub stream_new_image: bool,
    pub ttl_attribute: Option<&'static str>,
}

/// Orders: the live order, its version, status and step history.
pub const ORDERS: TableSpec = TableSpec {
    logical: "orders",
    env_var: "ORDERS_TABLE_ORDERS",
    partition_key: "orderId",
    sort_key: None,
    indexes: &[IndexSpec {
        name: "byCustomer",
        partition_key: "customerId",
        sort_key: Some("createdKey"),
    }],
    stream_new_image: false,
    ttl_attribute: None,
};

/// Outbox: one CloudEvent per item (an order has several); its stream feeds the processor.
/// Retention: `expiration` (epoch seconds, creation plus `ORDERS_RETENTION_DAYS`) is the TTL.
pub const OUTBOX: TableSpec = TableSpec {
    logical: "outbox",
    env_var: "ORDERS_TABLE_OUTBOX",
    partition_key: "eventId",
    sort_key: None,
    indexes: &[],
    stream_new_image: true,
    ttl_attribute: Some("expiration"),
};

/// Idempotency records; `expiration` (epoch seconds) is both the TTL and the condition's bound.
pub const IDEMPOTENCY: TableSpec = TableSpec {
    logical: "idempotency",
    env_var: "ORDERS_TABLE_IDEMPOTENCY",
    partition_key: "id",
    sort_key: None,
    indexes: &[],
    stream_new_image: false,
    ttl_attribute: Some("expiration"),
};

pub const INVENTORY: TableSpec = TableSpec {
    logical: "inventory",
    env_var: "ORDERS_TABLE_INVENTORY",
    partition_key: "productId",
    sort_key: None,
    indexes: &[],
    stream_new_image: false,
    ttl_attribute: None,
};

/// Vouchers by code; customers list theirs through `byCustomer`.
pub const VOUCHERS: TableSpec = TableSpec {
    logical: "vouchers",
    env_var: "ORDERS_TABLE_VOUCHERS",
    partition_key: "voucherCode",
    sort_key: None,
    indexes: &[IndexSpec {
        name: "byCustomer",
        partition_key: "customerId",
        sort_key: Some("createdKey"),
    }],
    stream_new_image: false,
    ttl_attribute: None,
};

/// What the saga steps record per order (`record`: `reservation`, `payment`,
/// `notification#<kind>`): the marks that make each step idempotent; and the payment
/// webhooks seen (`webhook#<webhook-id>`), which make each webhook apply once.
pub const SAGA: TableSpec = TableSpec {
    logical: "saga",
    env_var: "ORDERS_TABLE_SAGA",
    partition_key: "orderId",
    sort_key: Some("record"),
    indexes: &[],
    stream_new_image: false,
    ttl_attribute: None,
};

pub const TABLES: [TableSpec; 6] = [ORDERS, OUTBOX, IDEMPOTENCY, INVENTORY, VOUCHERS, SAGA];

/// Environment variable of the Step Functions state machine the processor starts.
pub const STATE_MACHINE_ARN_ENV: &str = "ORDERS_STATE_MACHINE_ARN";

/// Physical table names, one per [`TABLES`] entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub orders: String,
    pub outbox: String,
    pub idempotency: String,
    pub inventory: String,
    pub vouchers: String,
    pub saga: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {0} (a DynamoDB table name) is not set or empty")]
pub struct MissingTable(pub &'static str);

impl TableNames {
    /// `<prefix><logical>` for every table: what tests and local set-ups use.
    pub fn with_prefix(prefix: &str) -> Self {
        let n = |t: TableSpec| format!("{prefix}{}", t.logical);
        TableNames {
            orders: n(ORDERS),
            outbox: n(OUTBOX),
            idempotency: n(IDEMPOTENCY),
            inventory: n(INVENTORY),
            vouchers: n(VOUCHERS),
            saga: n(SAGA),
        }
    }

    /// Reads the names of `wanted` tables from their environment variables; the others are
    /// left empty, because a function gets only the tables it uses.
    pub fn from_env(wanted: &[TableSpec]) -> Result<Self, MissingTable> {
        let mut names = TableNames::with_prefix("");
        for spec in wanted {
            let value = std::env::var(spec.env_var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or(MissingTable(spec.env_var))?;
            *names.slot(*spec) = value;
        }
        for spec in TABLES.iter().filter(|t| !wanted.contains(t)) {
            names.slot(*spec).clear();
        }
        Ok(names)
    }

    pub fn name_of(&self, spec: TableSpec) -> &str {
        match spec.logical {
            "orders" => &self.orders,
            "outbox" => &self.outbox,
            "idempotency" => &self.idempotency,
            "inventory" => &self.inventory,
            "vouchers" => &self.vouchers,
            _ => &self.saga,
        }
    }

    fn slot(&mut self, spec: TableSpec) -> &mut String {
        match spec.logical {
            "orders" => &mut self.orders,
            "outbox" => &mut self.outbox,
            "idempotency" => &mut self.idempotency,
            "inventory" => &mut self.inventory,
            "vouchers" => &mut self.vouchers,
            _ => &mut self.saga,
        }
    }
}

/// Attribute names of the items, shared by every component that reads or writes them (the API
/// writes orders and redeems vouchers; the steps move orders, stock and vouchers along).
/// Timestamps are RFC 3339 UTC strings with milliseconds; money is integer cents (`N`).
pub mod attrs {
    /// orders: `items` is the JSON array of order items; `steps` is a map from step name to
    /// `{status, attempts, startedAt, finishedAt?, error?}`; `voucherIssued` is the code of
    /// the voucher the order earned.
    pub mod order {
        pub const ID: &str = "orderId";
        pub const CUSTOMER: &str = "customerId";
        pub const CREATED_KEY: &str = "createdKey";
        pub const CREATED_AT: &str = "createdAt";
        pub const UPDATED_AT: &str = "updatedAt";
        pub const ITEMS: &str = "items";
        pub const SUBTOTAL: &str = "subtotalCents";
        pub const DISCOUNT: &str = "discountCents";
        pub const TOTAL: &str = "totalCents";
        pub const PAYMENT_METHOD: &str = "paymentMethod";
        pub const VOUCHER_CODE: &str = "voucherCode";
        pub const STATUS: &str = "status";
        pub const VERSION: &str = "version";
        pub const FAILURE_REASON: &str = "failureReason";
        pub const VOUCHER_ISSUED: &str = "voucherIssued";
        pub const STEPS: &str = "steps";
        /// Inside one `steps` entry.
        pub const STEP_STATUS: &str = "status";
        pub const STEP_ATTEMPTS: &str = "attempts";
        pub const STEP_STARTED_AT: &str = "startedAt";
        pub const STEP_FINISHED_AT: &str = "finishedAt";
        pub const STEP_ERROR: &str = "error";
        /// The saga execution's name (the order.created event id), for the cancel signal.
        pub const EXECUTION: &str = "executionName";
        /// The payment as GET shows it, kept beside the saga table's payment record in the
        /// same writes, so a GET needs no second read.
        pub const PAYMENT_ID: &str = "paymentId";
        pub const PAYMENT_STATUS: &str = "paymentStatus";
        /// The warehouse's shipment, written with the move to SHIPPED.
        pub const TRACKING_NUMBER: &str = "trackingNumber";
        pub const SHIPPED_AT: &str = "shippedAt";
        /// The customer's cancellation: its presence is what the steps' cancel guard tests.
        pub const CANCEL_REQUESTED_AT: &str = "cancelRequestedAt";
        pub const CANCEL_REASON: &str = "cancelReason";
        /// The W3C trace the order was created in (absent when the request had none): every
        /// later event of the order continues it.
        pub const TRACEPARENT: &str = "traceparent";
    }
    /// outbox: `event` is the CloudEvents 1.0 envelope as JSON text, exactly as published:
    /// `order.created`, an internal signal, or a public event of a later change, each written
    /// in the transaction of what it reports.
    pub mod outbox {
        pub const ID: &str = "eventId";
        pub const ORDER: &str = "orderId";
        pub const EVENT: &str = "event";
        pub const CREATED_AT: &str = "createdAt";
        /// Epoch seconds: the TTL attribute, the creation plus the retention period.
        pub const EXPIRATION: &str = "expiration";
    }
    /// idempotency: the stored first response and the payload fingerprint.
    pub mod idempotency {
        pub const ID: &str = "id";
        pub const FINGERPRINT: &str = "fingerprint";
        pub const STATUS: &str = "status";
        pub const BODY: &str = "body";
        pub const LOCATION: &str = "location";
        /// Epoch seconds: the TTL attribute (DynamoDB deletes the record some time after).
        pub const EXPIRATION: &str = "expiration";
        /// The exact expiry (RFC 3339, ms): the bound of the liveness condition, and for reads.
        pub const EXPIRES_AT: &str = "expiresAt";
    }
    pub mod inventory {
        pub const ID: &str = "productId";
        pub const AVAILABLE: &str = "available";
        pub const UPDATED_AT: &str = "updatedAt";
    }
    /// vouchers: `orderId` is the order that earned it, `redeemedBy` the one that used it.
    pub mod voucher {
        pub const CODE: &str = "voucherCode";
        pub const CUSTOMER: &str = "customerId";
        pub const CREATED_KEY: &str = "createdKey";
        pub const DISCOUNT: &str = "discountCents";
        pub const STATUS: &str = "status";
        pub const EARNED_BY: &str = "orderId";
        pub const REDEEMED_BY: &str = "redeemedBy";
        pub const CREATED_AT: &str = "createdAt";
        pub const UPDATED_AT: &str = "updatedAt";
    }
    /// saga: one item per effect a step made for an order, and one per payment webhook seen.
    pub mod saga {
        pub const ORDER: &str = "orderId";
        pub const RECORD: &str = "record";
        /// `record` values; a notification's is `notification#<kind>`.
        pub const RESERVATION: &str = "reservation";
        pub const PAYMENT: &str = "payment";
        pub const NOTIFICATION_PREFIX: &str = "notification#";
        /// reservation: JSON array of `{productId, quantity}`; state `HELD` or `RELEASED`.
        pub const ITEMS: &str = "items";
        pub const STATE: &str = "state";
        /// payment: `status` is a `PaymentStatus`; `taskToken` the token its webhook
        /// completes; `reason` the provider's, when it failed.
        pub const PAYMENT_ID: &str = "paymentId";
        pub const STATUS: &str = "status";
        pub const AMOUNT: &str = "amountCents";
        pub const PAYMENT_METHOD: &str = "paymentMethod";
        pub const TASK_TOKEN: &str = "taskToken";
        pub const REASON: &str = "reason";
        /// A payment webhook's dedup record: `orderId` is `webhook#<webhook-id>` (never an
        /// order id, which is a UUID), `record` is `webhook`; it keeps what it came to.
        pub const WEBHOOK_PREFIX: &str = "webhook#";
        pub const WEBHOOK: &str = "webhook";
        pub const WEBHOOK_ORDER: &str = "forOrder";
        pub const WEBHOOK_RESULT: &str = "result";
        pub const WEBHOOK_OUTCOME: &str = "outcome";
        /// notification
        pub const CUSTOMER: &str = "customerId";
        pub const MESSAGE: &str = "message";
        pub const CREATED_AT: &str = "createdAt";
        pub const UPDATED_AT: &str = "updatedAt";
    }
}
