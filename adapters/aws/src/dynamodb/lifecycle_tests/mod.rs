//! The lifecycle's writes on DynamoDB (moto server): the steps' cancel guard, the payment
//! record, the shipment, and the webhook and cancellation transactions, with the races each
//! condition exists for injected between a read and its write (`Hook`), and the requests each
//! operation costs.

mod guard;
mod payments;
mod webhook_cancel;

use crate::TableNames;
use crate::dynamodb::attr::{self, Item};
use crate::dynamodb::{DynamoStepStore, DynamoStore};
use crate::moto::MotoSession;
use crate::tables::attrs::order as oa;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use chrono::Utc;
use orders_domain::idempotency::StoredResponse;
use orders_domain::store::{CancelOrder, CancelOutcome, CreateOrder, NewOrder, OrderRecord};
use orders_domain::store::{OrderStore, StoreError};
use orders_domain::{Cents, CustomerId, OrderId, OrderStatus, OutboxMessage, PaymentMethod};
use orders_domain::{OrderItem, ProductId, SignalEvent};
use orders_workflow::steps::store::{OrderAt, StatusChange, StatusMove, StepResult};
use orders_workflow::steps::{Progress, Step};
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

impl Fx {
    /// A new PENDING order of 120.00 EUR; its id and its saga execution's name.
    pub async fn order(&self) -> (OrderId, String) {
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
        let cmd = CreateOrder::new(order, None, response, chrono::Duration::minutes(10));
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
pub(super) fn raw_update(
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
