//! The lifecycle contract: what every `OrderStore` must do with the outside actors' writes,
//! the provider's payment webhook (`apply_payment_webhook`) and the customer's cancellation
//! (`cancel_order`), each one atomic write with the outbox signal for the saga. Each
//! implementation's test file provides a [`LifecycleFixture`] (the API's store, the steps'
//! store on the same data, and a look at the signals its outbox holds) and invokes
//! `lifecycle_contract_tests!(async_factory)`, one test per case. The public events the same
//! changes write are the events contract (`events.rs`, `events_contract_tests!`).
//!
//! Orders are brought where a case needs them the way the saga brings them: created through
//! the API's store, moved and paid for through the steps' store.

use crate::contract::new_order;
use crate::saga_contract::{Driver, at, step};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::event::SignalEvent;
use orders_domain::lifecycle::{
    PAYMENT_DECLINED, PaymentResult, PaymentStatus, PaymentWebhook, Shipment, TaskSignal,
    WebhookOutcome,
};
use orders_domain::store::{OrderRecord, OrderStore};
use orders_domain::{Cents, OrderId, OrderStatus, PaymentId};
use orders_workflow::steps::Step;
use orders_workflow::steps::store::{PaymentRequest, StatusMove};
use serde_json::json;
use std::sync::Arc;

mod cancel;
mod events;
pub use cancel::*;
pub use events::*;

/// A store under test, seen from the API, from the steps and from its outbox.
#[async_trait]
pub trait LifecycleFixture: Send + Sync {
    /// The API's store.
    fn orders(&self) -> Arc<dyn OrderStore>;
    /// The steps' store on the same data, driven as production drives it.
    fn steps(&self) -> Driver;
    /// The internal signals the outbox holds for the order, oldest first.
    async fn signals(&self, order: OrderId) -> Vec<SignalEvent>;
}

/// What the cases' orders cost.
pub const TOTAL: Cents = Cents(12_000);

/// A new PENDING order of `customer` and its saga's execution name.
pub async fn created(fx: &dyn LifecycleFixture, customer: &str) -> (OrderId, String) {
    let cmd = new_order(customer, TOTAL.0);
    let (id, execution) = (cmd.order.id, cmd.event.id.to_string());
    fx.orders().create_order(cmd).await.expect("create order");
    (id, execution)
}

/// The order as GET shows it.
pub async fn read(fx: &dyn LifecycleFixture, order: OrderId) -> OrderRecord {
    let got = fx.orders().get_order(order).await.expect("get order");
    got.expect("the order exists")
}

/// The saga's moves of the order, in turn (each must be made).
pub async fn moved(fx: &dyn LifecycleFixture, order: OrderId, path: &[(Step, OrderStatus)]) {
    let steps = fx.steps();
    for &(step, to) in path {
        let change = StatusMove {
            step,
            to,
            reason: Some("a failure"),
        };
        let moved = step!(steps, s => s.set_status(at(order, Utc::now()), change));
        moved.unwrap_or_else(|e| panic!("move to {to}: {e}"));
    }
}

pub const TO_AWAITING: [(Step, OrderStatus); 2] = [
    (Step::ReserveInventory, OrderStatus::InventoryReserved),
    (Step::RequestPayment, OrderStatus::AwaitingPayment),
];

/// RequestPayment's record of the order's payment, waiting on `token`.
pub async fn requested(fx: &dyn LifecycleFixture, order: OrderId, token: &str) {
    let token = token.to_owned();
    let status = fx
        .steps()
        .call(move |s| async move {
            let payment_id = PaymentId::for_order(order);
            let request = PaymentRequest {
                payment_id: &payment_id,
                amount: TOTAL,
                method: "pm_card_visa",
                token: &token,
            };
            s.request_payment(at(order, Utc::now()), &request).await
        })
        .await;
    assert_eq!(status, Ok(PaymentStatus::Requested));
}

/// An order AWAITING_PAYMENT with its payment REQUESTED on `token`, as RequestPayment leaves it.
pub async fn awaiting_payment(fx: &dyn LifecycleFixture, customer: &str, token: &str) -> OrderId {
    let (order, _) = created(fx, customer).await;
    moved(fx, order, &TO_AWAITING).await;
    requested(fx, order, token).await;
    order
}

/// The provider's webhook `id` for the order's payment.
pub fn webhook(id: &str, order: OrderId, result: PaymentResult) -> PaymentWebhook {
    PaymentWebhook {
        webhook_id: id.to_owned(),
        result,
        payment_id: PaymentId::for_order(order),
        order_id: order,
        amount: TOTAL,
        reason: (result == PaymentResult::Failed).then(|| "card declined".to_owned()),
        received_at: whole_millis(Utc::now()),
    }
}

pub fn whole_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

async fn apply(fx: &dyn LifecycleFixture, w: &PaymentWebhook) -> WebhookOutcome {
    fx.orders()
        .apply_payment_webhook(w)
        .await
        .expect("apply webhook")
}

fn payment_status(o: &OrderRecord) -> Option<PaymentStatus> {
    o.payment.as_ref().map(|p| p.status)
}

fn signals_of(events: Vec<SignalEvent>) -> Vec<TaskSignal> {
    events.into_iter().map(|e| e.data).collect()
}

fn is_ignored(outcome: &WebhookOutcome) -> bool {
    matches!(outcome, WebhookOutcome::Ignored(_))
}

pub async fn a_success_moves_the_order_and_signals_once(fx: &dyn LifecycleFixture) {
    let order = awaiting_payment(fx, "c-hook-ok", "token-ok").await;
    let before = read(fx, order).await;
    let success = webhook("msg-ok", order, PaymentResult::Succeeded);
    assert_eq!(apply(fx, &success).await, WebhookOutcome::Applied);
    let after = read(fx, order).await;
    assert_eq!(after.status, OrderStatus::PaymentProcessed);
    assert_eq!(after.version, before.version + 1);
    let payment = after.payment.clone().expect("the payment");
    assert_eq!(payment.payment_id, PaymentId::for_order(order));
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    let events = fx.signals(order).await;
    assert_eq!(events.len(), 1, "exactly one signal: {events:?}");
    assert_eq!(events[0].subject, order);
    let output = json!({"paymentId": PaymentId::for_order(order), "amountCents": TOTAL.0});
    let token = "token-ok".to_owned();
    assert_eq!(events[0].data, TaskSignal::Succeed { token, output });
    // The same delivery again, and a second delivery of the same result under another id.
    assert_eq!(apply(fx, &success).await, WebhookOutcome::Duplicate);
    let again = webhook("msg-ok-2", order, PaymentResult::Succeeded);
    assert!(is_ignored(&apply(fx, &again).await), "already settled");
    assert_eq!(read(fx, order).await, after, "nothing changed");
    assert_eq!(fx.signals(order).await.len(), 1);
}

pub async fn a_failure_signals_the_decline(fx: &dyn LifecycleFixture) {
    let order = awaiting_payment(fx, "c-hook-declined", "token-declined").await;
    let before = read(fx, order).await;
    let failure = webhook("msg-declined", order, PaymentResult::Failed);
    assert_eq!(apply(fx, &failure).await, WebhookOutcome::Applied);
    let after = read(fx, order).await;
    assert_eq!(payment_status(&after), Some(PaymentStatus::Failed));
    assert_eq!(
        (after.status, after.version),
        (OrderStatus::AwaitingPayment, before.version),
        "compensation moves the order, not the webhook"
    );
    let signal = TaskSignal::Fail {
        token: "token-declined".into(),
        error: PAYMENT_DECLINED.into(),
        cause: "card declined".into(),
    };
    assert_eq!(signals_of(fx.signals(order).await), [signal]);
    assert_eq!(apply(fx, &failure).await, WebhookOutcome::Duplicate);
    let success = webhook("msg-after-decline", order, PaymentResult::Succeeded);
    assert!(is_ignored(&apply(fx, &success).await), "already settled");
    assert_eq!(read(fx, order).await, after);
    assert_eq!(fx.signals(order).await.len(), 1);
}

pub async fn a_late_success_is_refunded(fx: &dyn LifecycleFixture) {
    let compensate = [(Step::BeginCompensation, OrderStatus::Compensating)];
    let fail = [(Step::MarkFailed, OrderStatus::Failed)];
    let compensating = awaiting_payment(fx, "c-hook-late", "token-1").await;
    moved(fx, compensating, &compensate).await;
    let failed = awaiting_payment(fx, "c-hook-late", "token-2").await;
    moved(fx, failed, &compensate).await;
    moved(fx, failed, &fail).await;
    for order in [compensating, failed] {
        let before = read(fx, order).await;
        let late = webhook(
            &format!("msg-late-{order}"),
            order,
            PaymentResult::Succeeded,
        );
        assert_eq!(apply(fx, &late).await, WebhookOutcome::Refunded);
        let after = read(fx, order).await;
        assert_eq!(payment_status(&after), Some(PaymentStatus::Refunded));
        assert_eq!(
            (after.status, after.version),
            (before.status, before.version)
        );
        assert_eq!(fx.signals(order).await, [], "nobody waits for it");
        assert_eq!(apply(fx, &late).await, WebhookOutcome::Duplicate);
    }
    // A failure arriving late is recorded, and changes nothing else.
    let declined = awaiting_payment(fx, "c-hook-late", "token-3").await;
    moved(fx, declined, &compensate).await;
    let late = webhook("msg-late-declined", declined, PaymentResult::Failed);
    assert!(is_ignored(&apply(fx, &late).await));
    let after = read(fx, declined).await;
    assert_eq!(payment_status(&after), Some(PaymentStatus::Failed));
    assert_eq!(after.status, OrderStatus::Compensating);
    assert_eq!(fx.signals(declined).await, []);
}

pub async fn mismatched_webhooks_are_ignored_and_kept(fx: &dyn LifecycleFixture) {
    let order = awaiting_payment(fx, "c-hook-odd", "token-odd").await;
    let before = read(fx, order).await;
    let mut other_payment = webhook("msg-other-payment", order, PaymentResult::Succeeded);
    other_payment.payment_id = PaymentId::parse("pay_somethingelse").unwrap();
    let mut other_amount = webhook("msg-other-amount", order, PaymentResult::Succeeded);
    other_amount.amount = Cents(TOTAL.0 + 1);
    let unknown = webhook("msg-unknown", OrderId::new(), PaymentResult::Succeeded);
    for odd in [&other_payment, &other_amount, &unknown] {
        let outcome = apply(fx, odd).await;
        assert!(is_ignored(&outcome), "{}: {outcome:?}", odd.webhook_id);
    }
    let (unpaid, _) = created(fx, "c-hook-odd").await;
    let no_payment = webhook("msg-no-payment", unpaid, PaymentResult::Succeeded);
    assert!(is_ignored(&apply(fx, &no_payment).await));
    assert_eq!(read(fx, order).await, before, "nothing changed");
    assert_eq!(fx.signals(order).await, []);
    assert_eq!(read(fx, unpaid).await.payment, None);
    // Its id is kept all the same: the same id with a body that would apply has no effect.
    let mut fixed = other_amount.clone();
    fixed.amount = TOTAL;
    assert_eq!(apply(fx, &fixed).await, WebhookOutcome::Duplicate);
    assert_eq!(read(fx, order).await, before);
    assert_eq!(fx.signals(order).await, []);
}

pub async fn concurrent_deliveries_apply_once(fx: &dyn LifecycleFixture) {
    let order = awaiting_payment(fx, "c-hook-race", "token-race").await;
    let success = webhook("msg-race", order, PaymentResult::Succeeded);
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let (store, w) = (fx.orders(), success.clone());
            tokio::spawn(async move { store.apply_payment_webhook(&w).await })
        })
        .collect();
    let mut applied = 0;
    for run in runs {
        match run.await.unwrap().expect("apply webhook") {
            WebhookOutcome::Applied => applied += 1,
            WebhookOutcome::Duplicate => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(fx.signals(order).await.len(), 1);
    assert_eq!(read(fx, order).await.status, OrderStatus::PaymentProcessed);
}

/// A shipment the warehouse reports now.
pub fn parcel() -> Shipment {
    Shipment {
        tracking_number: "TRK-CONTRACT".into(),
        shipped_at: whole_millis(Utc::now()),
    }
}

/// `lifecycle_contract_tests!(factory)` runs every case against the fixtures `factory` builds.
#[macro_export]
macro_rules! lifecycle_contract_tests {
    ($factory:expr) => {
        $crate::lifecycle_contract_tests!(@cases $factory;
            a_success_moves_the_order_and_signals_once, a_failure_signals_the_decline,
            a_late_success_is_refunded, mismatched_webhooks_are_ignored_and_kept,
            concurrent_deliveries_apply_once, a_cancellation_is_accepted_once_with_one_signal,
            a_cancel_after_cancel_is_already_requested, a_cancel_refused_writes_nothing,
            a_cancel_of_an_unknown_order_writes_nothing, concurrent_cancels_accept_once,
            a_success_after_a_cancel_is_refunded);
    };
    (@cases $factory:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fx = $factory().await;
                $crate::lifecycle_contract::$case(&fx).await;
            }
        )*
    };
}
