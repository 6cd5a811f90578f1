//! The saga store contract: what every `StepStore` implementation must do, because the step
//! handlers rely on it. Each implementation's test file provides a [`SagaFixture`] (the store
//! plus a way to set up and look at its data without the trait) and invokes
//! `saga_contract_tests!(async_factory)`, which expands to one test per case below, so a
//! failure names the case and the implementation.
//!
//! Every case runs an operation twice where a re-run can happen in production (a redelivered
//! task, a resumed saga) and checks the effect happened once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::lifecycle::{PaymentStatus, Shipment};
use orders_domain::{
    Cents, OrderId, OrderStatus, PaymentId, ProductId, SagaItem, VoucherCode, VoucherStatus,
};
use orders_sqlite::SqliteStore;
use orders_workflow::steps::store::{NewVoucher, Notice, OrderAt, Reservation};
use orders_workflow::steps::{Step, StepStore, StepStoreError};
use std::future::Future;
use std::sync::Arc;

mod lifecycle;
mod status;
pub use lifecycle::*;
pub use status::*;

/// One entry of an order's step history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepView {
    pub status: String,
    pub attempts: i64,
    pub error: Option<String>,
}

/// An order's payment as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentView {
    pub payment_id: PaymentId,
    pub status: PaymentStatus,
    pub amount: Cents,
    /// The task token the provider's webhook completes.
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherView {
    pub status: VoucherStatus,
    pub redeemed_by: Option<String>,
}

/// How the suite reaches a store: the way production drives it, so the suite checks the code
/// path production takes.
#[derive(Clone)]
pub enum Driver {
    /// Each call awaited on the store (the step Lambda over DynamoDB).
    Direct(Arc<dyn StepStore>),
    /// Each call as one writer job over the open transaction, polled once (the local executor
    /// over SQLite runs a whole step this way).
    SqliteJob(Arc<SqliteStore>),
}

impl Driver {
    pub async fn call<T, F, Fut>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn StepStore>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send,
    {
        match self {
            Driver::Direct(store) => f(store.clone()).await,
            Driver::SqliteJob(db) => db.step_job(f).await.expect("the writer job"),
        }
    }
}

/// `step!(driver, s => s.method(args))`: one store call through the driver; the arguments
/// are moved into the call (`step!(driver, [a, b] s => ...)` moves clones of `a` and `b`).
macro_rules! step {
    ($driver:expr, $s:ident => $call:expr) => {
        $driver.call(move |$s| async move { $call.await }).await
    };
    ($driver:expr, [$($keep:ident),*] $s:ident => $call:expr) => {{
        $(let $keep = $keep.clone();)*
        $driver.call(move |$s| async move { $call.await }).await
    }};
}
pub(crate) use step;

/// A store under test with direct access to its data.
#[async_trait]
pub trait SagaFixture: Send + Sync {
    fn store(&self) -> Driver;
    /// A new PENDING order of `customer`.
    async fn new_order(&self, customer: &str) -> OrderId;
    async fn set_stock(&self, product: &str, available: i64);
    async fn stock(&self, product: &str) -> Option<i64>;
    /// Status, version and failure reason.
    async fn order(&self, id: OrderId) -> (OrderStatus, i64, Option<String>);
    async fn step(&self, id: OrderId, step: Step) -> Option<StepView>;
    async fn voucher(&self, code: &VoucherCode) -> Option<VoucherView>;
    /// A voucher of `customer` that order `by` redeemed (USED).
    async fn redeemed_voucher(&self, code: &VoucherCode, customer: &str, by: OrderId);
    /// The order's payment, once one was requested.
    async fn payment(&self, id: OrderId) -> Option<PaymentView>;
    /// The provider's answer to the order's REQUESTED payment (SUCCEEDED or FAILED), written
    /// as its webhook would write it.
    async fn settle_payment(&self, id: OrderId, status: PaymentStatus);
    /// The customer's cancellation (reason, now; version + 1), as `PATCH` records it.
    async fn request_cancel(&self, id: OrderId, reason: Option<&str>);
    /// The order's shipment, once recorded.
    async fn shipment(&self, id: OrderId) -> Option<Shipment>;
}

/// The order `order`, at `now`.
pub fn at(order: OrderId, now: DateTime<Utc>) -> OrderAt {
    OrderAt { order, now }
}

/// Sets the stock of each product, as a case starts.
pub async fn set_stocks(fx: &dyn SagaFixture, stock: &[(&str, i64)]) {
    for (product, available) in stock {
        fx.set_stock(product, *available).await;
    }
}

pub fn item(product: &str, quantity: u32) -> SagaItem {
    SagaItem {
        product_id: ProductId::parse(product).unwrap(),
        quantity,
    }
}

fn code(s: &str) -> VoucherCode {
    VoucherCode::from_trusted(s.to_owned())
}

/// The reserve step's store call for `items`, now.
async fn reserve(
    store: &Driver,
    order: OrderId,
    items: &[SagaItem],
) -> Result<Reservation, StepStoreError> {
    let items = items.to_vec();
    step!(store, s => s.reserve(at(order, Utc::now()), &items))
}

/// What the reserve step is told when `product` has `available` of the `requested`.
fn short(product: &str, available: i64, requested: u32) -> Reservation {
    Reservation::Short {
        product: ProductId::parse(product).unwrap(),
        available,
        requested,
    }
}

/// The reserve step, which must hold the whole of `items` for the order afterwards.
async fn must_reserve(store: &Driver, order: OrderId, items: &[SagaItem]) {
    assert_eq!(
        reserve(store, order, items).await,
        Ok(Reservation::Reserved)
    );
}

pub async fn reserve_is_all_or_none(fx: &dyn SagaFixture) {
    let store = fx.store();
    set_stocks(fx, &[("p-a", 5), ("p-b", 1)]).await;
    let order = fx.new_order("c-all").await;
    let too_many = reserve(&store, order, &[item("p-a", 2), item("p-b", 2)]).await;
    assert_eq!(too_many, Ok(short("p-b", 1, 2)));
    assert_eq!(fx.stock("p-a").await, Some(5), "nothing taken");
    assert_eq!(fx.stock("p-b").await, Some(1));
    let unknown = reserve(&store, order, &[item("p-a", 1), item("p-ghost", 1)]).await;
    assert_eq!(unknown, Ok(short("p-ghost", 0, 1)));
    assert_eq!(fx.stock("p-a").await, Some(5));
    // A refused reservation holds nothing, so a later one with stock succeeds.
    fx.set_stock("p-b", 2).await;
    must_reserve(&store, order, &[item("p-a", 2), item("p-b", 2)]).await;
    assert_eq!(fx.stock("p-a").await, Some(3));
    assert_eq!(fx.stock("p-b").await, Some(0));
}

pub async fn reserve_twice_takes_stock_once(fx: &dyn SagaFixture) {
    let store = fx.store();
    fx.set_stock("p-a", 10).await;
    let order = fx.new_order("c-twice").await;
    // One product listed twice is one quantity of 4.
    let items = [item("p-a", 3), item("p-a", 1)];
    must_reserve(&store, order, &items).await;
    assert_eq!(fx.stock("p-a").await, Some(6));
    must_reserve(&store, order, &items).await;
    assert_eq!(fx.stock("p-a").await, Some(6), "second run took nothing");
    // The order holds its reservation even when stock has since run out.
    fx.set_stock("p-a", 0).await;
    must_reserve(&store, order, &items).await;
    assert_eq!(fx.stock("p-a").await, Some(0));
}

/// Duplicate deliveries running at once: stock is taken once. A run may lose a write
/// conflict (`Unavailable`, retried by the state machine), never take stock a second time.
pub async fn concurrent_reserves_take_stock_once(fx: &dyn SagaFixture) {
    let store = fx.store();
    set_stocks(fx, &[("p-a", 10), ("p-b", 10)]).await;
    let order = fx.new_order("c-dup").await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let items = [item("p-a", 2), item("p-b", 3)];
            tokio::spawn(async move { reserve(&store, order, &items).await })
        })
        .collect();
    let mut reserved = 0;
    for run in runs {
        match run.await.unwrap() {
            Ok(r) => {
                assert_eq!(r, Reservation::Reserved);
                reserved += 1;
            }
            Err(e) => assert!(matches!(e, StepStoreError::Unavailable(_)), "{e}"),
        }
    }
    assert!(reserved >= 1);
    assert_eq!(fx.stock("p-a").await, Some(8));
    assert_eq!(fx.stock("p-b").await, Some(7));
}

pub async fn release_twice_returns_stock_once(fx: &dyn SagaFixture) {
    let store = fx.store();
    set_stocks(fx, &[("p-a", 10), ("p-b", 4)]).await;
    let order = fx.new_order("c-release").await;
    assert!(
        !step!(store, s => s.release(at(order, Utc::now()))).unwrap(),
        "nothing held yet"
    );
    let items = [item("p-a", 3), item("p-b", 4)];
    must_reserve(&store, order, &items).await;
    assert_eq!(fx.stock("p-b").await, Some(0));
    assert!(step!(store, s => s.release(at(order, Utc::now()))).unwrap());
    assert_eq!(fx.stock("p-a").await, Some(10));
    assert_eq!(fx.stock("p-b").await, Some(4));
    assert!(!step!(store, s => s.release(at(order, Utc::now()))).unwrap());
    assert_eq!(fx.stock("p-a").await, Some(10), "returned once");
    assert_eq!(fx.stock("p-b").await, Some(4));
    // A released reservation is still the order's: a late re-run of the reserve step must
    // not take stock again for an order being compensated.
    must_reserve(&store, order, &items).await;
    assert_eq!(fx.stock("p-a").await, Some(10));
}

pub async fn notification_is_recorded_once_per_kind(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-notify").await;
    let customer = orders_domain::CustomerId::parse("c-notify").unwrap();
    let now = Utc::now();
    // Whether the store recorded a new notification of this kind.
    let notify = async |kind: &'static str, message: &'static str| {
        let customer = customer.clone();
        step!(store, s => s.notify(at(order, now), &Notice { customer: &customer, kind, message }))
            .unwrap()
    };
    assert!(notify("order-confirmed", "hello").await);
    assert!(!notify("order-confirmed", "hello").await);
    assert!(notify("order-failed", "sorry").await);
}

pub async fn voucher_is_issued_once_withdrawn_and_restored(fx: &dyn SagaFixture) {
    let store = fx.store();
    let order = fx.new_order("c-voucher").await;
    let customer = orders_domain::CustomerId::parse("c-voucher").unwrap();
    let now = Utc::now();
    assert!(
        !step!(store, s => s.withdraw_voucher(at(order, now))).unwrap(),
        "none issued yet"
    );
    // The code the order's voucher has once the store was asked to issue `candidate`.
    let issue = async |candidate: &'static str| {
        let customer = customer.clone();
        let candidate = code(candidate);
        let discount = Cents(500);
        step!(store, s => s.issue_voucher(
            at(order, now),
            &NewVoucher { customer: &customer, code: &candidate, discount },
        ))
        .unwrap()
    };
    assert_eq!(issue("VCH-FIRST").await, code("VCH-FIRST"));
    assert_eq!(
        issue("VCH-SECOND").await,
        code("VCH-FIRST"),
        "one voucher per order"
    );
    assert_eq!(fx.voucher(&code("VCH-SECOND")).await, None);
    assert_eq!(
        fx.voucher(&code("VCH-FIRST")).await.map(|v| v.status),
        Some(VoucherStatus::Ready)
    );
    assert!(step!(store, s => s.withdraw_voucher(at(order, now))).unwrap());
    assert_eq!(
        fx.voucher(&code("VCH-FIRST")).await.map(|v| v.status),
        Some(VoucherStatus::Disabled)
    );
    assert!(!step!(store, s => s.withdraw_voucher(at(order, now))).unwrap());

    let redeemer = fx.new_order("c-voucher").await;
    let other = fx.new_order("c-voucher").await;
    fx.redeemed_voucher(&code("VCH-USED"), "c-voucher", redeemer)
        .await;
    assert!(
        !step!(store, s => s.restore_voucher(at(other, now), &code("VCH-USED"))).unwrap(),
        "only the order that redeemed it may restore it"
    );
    assert!(step!(store, s => s.restore_voucher(at(redeemer, now), &code("VCH-USED"))).unwrap());
    assert_eq!(
        fx.voucher(&code("VCH-USED")).await,
        Some(VoucherView {
            status: VoucherStatus::Ready,
            redeemed_by: None
        })
    );
    assert!(!step!(store, s => s.restore_voucher(at(redeemer, now), &code("VCH-USED"))).unwrap());
}

/// `saga_contract_tests!(factory)` runs every case against the stores `factory` builds; the
/// `concurrent_*` cases race writers against one item.
#[macro_export]
macro_rules! saga_contract_tests {
    ($factory:expr) => {
        $crate::saga_contract_tests!(@cases $factory;
            concurrent_reserves_take_stock_once, concurrent_status_changes_apply_once,
            reserve_is_all_or_none, reserve_twice_takes_stock_once,
            release_twice_returns_stock_once, payment_is_requested_then_refunded_once,
            a_settled_payment_is_kept, cancellation_stops_every_forward_move,
            cancellation_is_read_back, mark_shipped_records_once_and_moves,
            mark_shipped_is_refused_when_cancelled_or_early,
            notification_is_recorded_once_per_kind,
            voucher_is_issued_once_withdrawn_and_restored,
            status_changes_are_conditional_and_mark_the_step, step_history_counts_attempts);
    };
    (@cases $factory:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fx = $factory().await;
                $crate::saga_contract::$case(&fx).await;
            }
        )*
    };
}
