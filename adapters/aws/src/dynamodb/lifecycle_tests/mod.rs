//! The lifecycle's writes on DynamoDB (moto server): the steps' cancel guard, the payment
//! record, the shipment, the webhook and cancellation transactions, and the public events the
//! changes write with them, with the races each
//! condition exists for injected between a read and its write (`Hook`), and the requests each
//! operation costs.
//!
//! Every case starts from [`fx`] (the emulator, the tables, both stores on one hooked client)
//! and most from one order already moved along a path ([`fx_with`], [`fx_awaiting`]): the
//! setup lives here, each case file keeps only what it checks.

mod events;
mod guard;
mod payments;
mod retention;
mod webhook_cancel;

use crate::TableNames;
use crate::dynamodb::attr::{self, Item};
use crate::dynamodb::{DynamoStepStore, DynamoStore};
use crate::moto::MotoSession;
use crate::tables::attrs::{order as oa, saga as sa};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use chrono::Utc;
use orders_domain::event::Traceparent;
use orders_domain::idempotency::StoredResponse;
use orders_domain::lifecycle::{PaymentResult, PaymentWebhook};
use orders_domain::store::{CancelOrder, CancelOutcome, CreateOrder, NewOrder, OrderRecord};
use orders_domain::store::{OrderStore, StoreError};
use orders_domain::{Cents, CustomerId, OrderId, OrderStatus, OutboxMessage, PaymentMethod};
use orders_domain::{OrderItem, PaymentId, PaymentStatus, ProductId, SignalEvent};
use orders_workflow::steps::store::StepResult;
use orders_workflow::steps::store::{OrderAt, PaymentRequest, StatusChange, StatusMove};
use orders_workflow::steps::{Payments, Progress, Step};
use std::sync::{Arc, Mutex};

type Action = Box<dyn FnOnce() + Send>;
/// The operations seen so far, and the armed operation with the action to run before it.
type HookState = (Vec<String>, Option<(&'static str, Action)>);

/// Notes every operation the stores send, and runs an armed action (a write of another
/// writer) just before the first request of the armed operation goes out: the race between a
/// store's read and its conditional write, made to happen.
#[derive(Clone, Default)]
pub(super) struct Hook(Arc<Mutex<HookState>>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl Intercept for Hook {
    fn name(&self) -> &'static str {
        "LifecycleTestHook"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = ctx.request().headers().get("x-amz-target").unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        let action = {
            let mut g = self.0.lock().unwrap();
            g.0.push(op.clone());
            match g.1.take() {
                Some((armed, action)) if armed == op => Some(action),
                other => {
                    g.1 = other;
                    None
                }
            }
        };
        if let Some(action) = action {
            // Another writer on its own runtime, finished before this request is sent.
            std::thread::spawn(action)
                .join()
                .expect("the injected write");
        }
        Ok(())
    }
}

impl Hook {
    /// Runs `write` (on `raw`) just before the next `op` request.
    pub(super) fn before<F>(&self, op: &'static str, raw: &Client, write: F)
    where
        F: FnOnce(Client) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static,
    {
        let raw = raw.clone();
        let action: Action = Box::new(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(write(raw));
        });
        self.0.lock().unwrap().1 = Some((op, action));
    }

    /// The operations sent since the last call.
    pub(super) fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap().0)
    }
}

/// A path of moves (each the step that makes it, and the status it moves to).
type Path = &'static [(Step, OrderStatus)];

/// A new order, not moved: PENDING.
pub(super) const PENDING: Path = &[];
/// To INVENTORY_RESERVED.
pub(super) const RESERVED: Path = &[(Step::ReserveInventory, OrderStatus::InventoryReserved)];
/// To AWAITING_PAYMENT.
pub(super) const AWAITING: Path = &[
    (Step::ReserveInventory, OrderStatus::InventoryReserved),
    (Step::RequestPayment, OrderStatus::AwaitingPayment),
];
/// To PAYMENT_PROCESSED, which the webhook moves to, made here by the steps' store.
pub(super) const PAID: Path = &[
    (Step::ReserveInventory, OrderStatus::InventoryReserved),
    (Step::RequestPayment, OrderStatus::AwaitingPayment),
    (Step::RequestPayment, OrderStatus::PaymentProcessed),
];

pub(super) struct Fx {
    pub orders: DynamoStore,
    pub steps: DynamoStepStore,
    pub raw: Client,
    pub names: TableNames,
    pub hook: Hook,
    _moto: MotoSession,
}

pub(super) async fn fx() -> Fx {
    let moto = crate::moto::session().await;
    let sdk = moto.sdk_config().await;
    let raw = Client::new(&sdk);
    let names = TableNames::with_prefix("lc-");
    crate::provision::create_tables(&raw, &names).await.unwrap();
    let hook = Hook::default();
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(hook.clone())
        .build();
    let client = Client::from_conf(conf);
    Fx {
        orders: DynamoStore::new(client.clone(), names.clone()),
        steps: DynamoStepStore::new(client, names.clone()),
        raw,
        names,
        hook,
        _moto: moto,
    }
}

/// A fresh emulator holding one new order moved along `path`; the order's id.
pub(super) async fn fx_with(path: Path) -> (Fx, OrderId) {
    let fx = fx().await;
    let id = fx.order_at(path).await;
    (fx, id)
}

/// A fresh emulator holding one order AWAITING_PAYMENT, its payment requested with `token`.
pub(super) async fn fx_awaiting(token: &str) -> (Fx, OrderId) {
    let (fx, id) = fx_with(AWAITING).await;
    fx.request(id, token).await;
    (fx, id)
}

/// The provider's webhook for the order's payment of 120.00 EUR (a decline with its reason).
pub(super) fn webhook(id: OrderId, webhook_id: &str, result: PaymentResult) -> PaymentWebhook {
    PaymentWebhook {
        webhook_id: webhook_id.into(),
        result,
        payment_id: PaymentId::for_order(id),
        order_id: id,
        amount: Cents(12_000),
        reason: (result == PaymentResult::Failed).then(|| "card declined".into()),
        received_at: Utc::now(),
    }
}

impl Fx {
    /// A new PENDING order of 120.00 EUR; its id and its saga execution's name.
    pub async fn order(&self) -> (OrderId, String) {
        self.order_in(None).await
    }

    /// [`Fx::order`], created in the trace `trace`.
    pub async fn order_in(&self, trace: Option<Traceparent>) -> (OrderId, String) {
        let order = NewOrder {
            id: OrderId::new(),
            customer_id: CustomerId::parse("c-life").unwrap(),
            items: vec![OrderItem {
                product_id: ProductId::parse("laptop").unwrap(),
                quantity: 1,
                price: Cents(12_000),
            }],
            subtotal: Cents(12_000),
            discount: Cents::ZERO,
            total: Cents(12_000),
            payment_method: PaymentMethod::default(),
            voucher_code: None,
            created_at: Utc::now(),
        };
        let id = order.id;
        let response = StoredResponse {
            status: 201,
            location: None,
            body: "{}".into(),
        };
        let mut cmd = CreateOrder::new(order, None, response, chrono::Duration::minutes(10));
        cmd.event = cmd.event.in_trace(trace);
        let execution = cmd.event.id.to_string();
        self.orders.create_order(cmd).await.unwrap();
        self.hook.take();
        (id, execution)
    }

    /// The order moved along `path` by the steps' store (each step's attempt counted first).
    pub async fn walk(&self, id: OrderId, path: &[(Step, OrderStatus)]) {
        for (step, to) in path {
            self.steps
                .step_attempt(OrderAt::now(id), *step)
                .await
                .unwrap();
            let moved = self.mv(id, *step, *to).await.unwrap();
            assert!(matches!(moved, StatusChange::Changed { .. }), "{to}");
        }
        self.hook.take();
    }

    /// A new order moved along `path`; its id.
    pub async fn order_at(&self, path: Path) -> OrderId {
        let (id, _) = self.order().await;
        self.walk(id, path).await;
        id
    }

    /// RequestPayment's record of the order's payment of 120.00 EUR, waiting on `token`.
    pub async fn request(&self, id: OrderId, token: &str) -> PaymentStatus {
        let pay = PaymentId::for_order(id);
        let req = PaymentRequest {
            payment_id: &pay,
            amount: Cents(12_000),
            method: "pm_card_visa",
            token,
        };
        self.steps
            .request_payment(OrderAt::now(id), &req)
            .await
            .unwrap()
    }

    /// The payment record's status and task token, read from the saga table.
    pub async fn payment_record(&self, id: OrderId) -> (String, String) {
        let item = self
            .raw
            .get_item()
            .table_name(&self.names.saga)
            .key(sa::ORDER, attr::s(id.to_string()))
            .key(sa::RECORD, attr::s(sa::PAYMENT))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("payment record");
        (
            attr::get_s(&item, sa::STATUS).unwrap().to_owned(),
            attr::get_s(&item, sa::TASK_TOKEN).unwrap().to_owned(),
        )
    }

    /// Another writer's update of the order item (`set` with `names` and `values`), made just
    /// before the next `op` request the stores send.
    pub fn before_order_update(
        &self,
        op: &'static str,
        id: OrderId,
        set: &'static str,
        names: Vec<(&'static str, &'static str)>,
        values: Vec<(&'static str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) {
        let update = raw_update(self.names.orders.clone(), id, set, names, values);
        self.hook.before(op, &self.raw, update);
    }

    pub async fn mv(&self, id: OrderId, step: Step, to: OrderStatus) -> StepResult<StatusChange> {
        let change = StatusMove {
            step,
            to,
            reason: None,
        };
        self.steps.set_status(OrderAt::now(id), change).await
    }

    pub async fn get(&self, id: OrderId) -> OrderRecord {
        self.orders.get_order(id).await.unwrap().expect("the order")
    }

    pub async fn cancel(
        &self,
        id: OrderId,
        key: Option<(&str, &str)>,
    ) -> Result<CancelOutcome, StoreError> {
        let cmd = CancelOrder {
            order: id,
            reason: Some("changed my mind".into()),
            idempotency: key.map(|(k, fp)| {
                (
                    orders_domain::idempotency::IdempotencyKey::parse(k).unwrap(),
                    fp.to_owned(),
                )
            }),
            ttl: chrono::Duration::minutes(10),
            now: Utc::now(),
        };
        self.orders.cancel_order(cmd, &respond).await
    }

    pub async fn order_item(&self, id: OrderId) -> Item {
        self.raw
            .get_item()
            .table_name(&self.names.orders)
            .key(oa::ID, attr::s(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("order item")
    }

    /// The internal signals in the outbox for `id`.
    pub async fn signals(&self, id: OrderId) -> Vec<SignalEvent> {
        let out = self
            .raw
            .scan()
            .table_name(&self.names.outbox)
            .send()
            .await
            .unwrap();
        let mut found = Vec::new();
        for item in out.items() {
            let json = attr::get_s(item, crate::tables::attrs::outbox::EVENT).unwrap();
            if let OutboxMessage::Signal(s) = OutboxMessage::decode(json.as_bytes()).unwrap()
                && s.subject == id
            {
                found.push(s);
            }
        }
        found
    }
}

/// The response a cancellation keeps under its key: what it saw of the order.
fn respond(r: &OrderRecord) -> StoredResponse {
    StoredResponse {
        status: 202,
        location: None,
        body: format!("{} v{}", r.status, r.version),
    }
}

/// An update of the order item by another writer (`set` with `names` and `values`).
fn raw_update(
    table: String,
    id: OrderId,
    set: &'static str,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, aws_sdk_dynamodb::types::AttributeValue)>,
) -> impl FnOnce(Client) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static {
    move |raw: Client| {
        Box::pin(async move {
            let mut req = raw
                .update_item()
                .table_name(table)
                .key(oa::ID, attr::s(id.to_string()))
                .update_expression(set);
            for (k, v) in names {
                req = req.expression_attribute_names(k, v);
            }
            for (k, v) in values {
                req = req.expression_attribute_values(k, v);
            }
            req.send().await.expect("the other writer's update");
        })
    }
}
