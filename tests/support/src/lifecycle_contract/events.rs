//! The events contract: the public events every store writes with the changes they report.
//! One order's lifecycle writes exactly `order.created`, `order.payment_processed`,
//! `order.shipped`, `voucher.issued` and `order.completed`, each at the order's version after
//! its change (`sequence`), with the snapshot of the order as the change left it and the
//! order's trace continued; a failed or cancelled order ends with its event and its reason;
//! a re-run, a refused move and a concurrent duplicate write nothing more.
//!
//! Each implementation's test file provides an [`EventsFixture`] (its lifecycle fixture and a
//! look at the public events its outbox holds) and invokes `events_contract_tests!(factory)`.

use super::{LifecycleFixture, TO_AWAITING, TOTAL, parcel, read, requested, webhook};
use crate::contract::new_order;
use crate::saga_contract::{at, step};
use async_trait::async_trait;
use chrono::Utc;
use orders_domain::event::{PublicEvent, Traceparent};
use orders_domain::idempotency::StoredResponse;
use orders_domain::lifecycle::{PaymentResult, WebhookOutcome};
use orders_domain::store::{CancelOrder, CancelOutcome, OrderRecord};
use orders_domain::{Cents, CustomerId, OrderId, OrderStatus, PaymentId, VoucherCode};
use orders_workflow::steps::store::{NewVoucher, StatusChange, StatusMove};
use orders_workflow::steps::{Step, StepStoreError};
use serde_json::json;
use std::collections::HashSet;

/// A lifecycle fixture that can also show the public events its outbox holds.
#[async_trait]
pub trait EventsFixture: LifecycleFixture {
    /// The order's public events (`order.created` included, no internal signal), in the order
    /// the store wrote them where it keeps one, else by `sequence`.
    async fn events(&self, order: OrderId) -> Vec<PublicEvent>;
}

const CUSTOMER: &str = "c-events";
const DISCOUNT: Cents = Cents(1_000);

fn types(events: &[PublicEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

fn sequences(events: &[PublicEvent]) -> Vec<i64> {
    let seq = |e: &PublicEvent| e.sequence_number().expect("a sequence") as i64;
    events.iter().map(seq).collect()
}

/// The voucher code the case issues for `order`.
fn voucher_code(order: OrderId) -> VoucherCode {
    VoucherCode::from_trusted(format!("VCH-{}", &order.to_string()[..8]))
}

/// An `order.*` event's snapshot: the order as the change left it.
fn assert_snapshot(e: &PublicEvent, status: &str) {
    assert_eq!(e.data["status"], status, "{}", e.event_type);
    assert_eq!(e.data["version"], e.sequence_number().unwrap());
    assert_eq!(e.data["totalCents"], TOTAL.0);
    assert_eq!(e.data["customerId"], CUSTOMER);
    assert_eq!(e.data["currency"], "EUR");
}

/// A new order of 120.00 EUR (it earns a voucher), created in `trace`.
async fn created_in(fx: &dyn EventsFixture, trace: Option<Traceparent>) -> OrderId {
    let mut cmd = new_order(CUSTOMER, TOTAL.0);
    cmd.event = cmd.event.in_trace(trace);
    let order = cmd.order.id;
    fx.orders().create_order(cmd).await.expect("create order");
    order
}

/// The saga's move of the order to `to` by `step`, writing `reason`.
async fn mark(
    fx: &dyn EventsFixture,
    order: OrderId,
    (step, to): (Step, OrderStatus),
    reason: Option<&'static str>,
) -> Result<StatusChange, StepStoreError> {
    let steps = fx.steps();
    let change = StatusMove { step, to, reason };
    step!(steps, s => s.set_status(at(order, Utc::now()), change))
}

async fn ship(fx: &dyn EventsFixture, order: OrderId) -> Result<StatusChange, StepStoreError> {
    let steps = fx.steps();
    step!(steps, s => s.mark_shipped(at(order, Utc::now()), Step::MarkShipped, &parcel()))
}

async fn issue(fx: &dyn EventsFixture, order: OrderId, code: VoucherCode) -> VoucherCode {
    let (steps, customer) = (fx.steps(), CustomerId::parse(CUSTOMER).unwrap());
    let issued = step!(steps, s => s.issue_voucher(
        at(order, Utc::now()),
        &NewVoucher { customer: &customer, code: &code, discount: DISCOUNT },
    ));
    issued.expect("issue voucher")
}

fn changed(moved: Result<StatusChange, StepStoreError>) -> i64 {
    match moved {
        Ok(StatusChange::Changed { version }) => version,
        other => panic!("the move was not made: {other:?}"),
    }
}

const COMPLETE: (Step, OrderStatus) = (Step::MarkCompleted, OrderStatus::Completed);

/// The happy path, the way the saga and the provider take it; the order's version after each
/// publishing change (creation first).
async fn completed(fx: &dyn EventsFixture, trace: Option<Traceparent>) -> (OrderId, Vec<i64>) {
    let order = created_in(fx, trace).await;
    let mut versions = vec![read(fx, order).await.version];
    for path in TO_AWAITING {
        changed(mark(fx, order, path, None).await);
    }
    requested(fx, order, "token-events").await;
    let paid = webhook("msg-events", order, PaymentResult::Succeeded);
    let outcome = fx.orders().apply_payment_webhook(&paid).await;
    assert_eq!(outcome, Ok(WebhookOutcome::Applied));
    versions.push(read(fx, order).await.version);
    versions.push(changed(ship(fx, order).await));
    assert_eq!(
        issue(fx, order, voucher_code(order)).await,
        voucher_code(order)
    );
    versions.push(read(fx, order).await.version);
    versions.push(changed(mark(fx, order, COMPLETE, None).await));
    (order, versions)
}

pub async fn a_lifecycle_publishes_each_change_once_in_sequence(fx: &dyn EventsFixture) {
    let trace = Traceparent::new_root();
    let (order, versions) = completed(fx, Some(trace.clone())).await;
    let events = fx.events(order).await;
    assert_eq!(
        types(&events),
        [
            "order.created",
            "order.payment_processed",
            "order.shipped",
            "voucher.issued",
            "order.completed"
        ]
    );
    assert_eq!(sequences(&events), versions, "each at its change's version");
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert_eq!(versions[0], 1);
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "one id per event");
    assert!(events.iter().all(|e| e.subject == order));
    assert_eq!(events[0].data["totalCents"], TOTAL.0);
    assert_snapshot(&events[1], "PAYMENT_PROCESSED");
    assert_snapshot(&events[2], "SHIPPED");
    assert_snapshot(&events[4], "COMPLETED");
    let pay = PaymentId::for_order(order);
    assert_eq!(events[1].data["paymentId"], json!(pay));
    assert_eq!(events[2].data["trackingNumber"], parcel().tracking_number);
    assert!(
        events[2].data.get("paymentId").is_none(),
        "only its own detail"
    );
    let voucher = &events[3].data;
    assert_eq!(voucher["voucherCode"], voucher_code(order).as_str());
    assert_eq!(voucher["discountCents"], DISCOUNT.0);
    assert_eq!(voucher["customerId"], CUSTOMER);
    // One trace from the request to the last change, each change a span of its own.
    assert_eq!(events[0].traceparent.as_ref(), Some(&trace));
    for later in &events[1..] {
        let t = later.traceparent.as_ref().expect("the order's trace");
        assert_eq!(t.trace_id(), trace.trace_id(), "{}", later.event_type);
        assert_ne!(t.span_id(), trace.span_id(), "{}", later.event_type);
    }
}

pub async fn re_runs_and_duplicates_publish_nothing_more(fx: &dyn EventsFixture) {
    let (order, _) = completed(fx, None).await;
    let before = fx.events(order).await;
    let paid = webhook("msg-events", order, PaymentResult::Succeeded);
    let again = fx.orders().apply_payment_webhook(&paid).await;
    assert_eq!(again, Ok(WebhookOutcome::Duplicate));
    let other = webhook("msg-events-2", order, PaymentResult::Succeeded);
    let other = fx.orders().apply_payment_webhook(&other).await;
    assert!(matches!(other, Ok(WebhookOutcome::Ignored(_))), "{other:?}");
    assert_eq!(ship(fx, order).await, Ok(StatusChange::Unchanged));
    let another = VoucherCode::from_trusted("VCH-ANOTHER".into());
    assert_eq!(issue(fx, order, another).await, voucher_code(order));
    assert_eq!(
        mark(fx, order, COMPLETE, None).await,
        Ok(StatusChange::Unchanged)
    );
    assert_eq!(fx.events(order).await, before, "re-runs write no event");

    // Concurrent runs of one publishing move: one makes it, one event.
    let order = created_in(fx, None).await;
    let paid = [
        TO_AWAITING[0],
        TO_AWAITING[1],
        (Step::RequestPayment, OrderStatus::PaymentProcessed),
    ];
    for path in paid {
        changed(mark(fx, order, path, None).await);
    }
    changed(ship(fx, order).await);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let steps = fx.steps();
            let change = StatusMove {
                step: COMPLETE.0,
                to: COMPLETE.1,
                reason: None,
            };
            tokio::spawn(
                async move { step!(steps, s => s.set_status(at(order, Utc::now()), change)) },
            )
        })
        .collect();
    let mut made = 0;
    for run in runs {
        match run.await.unwrap() {
            Ok(StatusChange::Changed { .. }) => made += 1,
            Ok(StatusChange::Unchanged) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(made, 1);
    let events = fx.events(order).await;
    let completions = types(&events)
        .into_iter()
        .filter(|t| *t == "order.completed");
    assert_eq!(completions.count(), 1, "{:?}", types(&events));
}

pub async fn a_failed_order_publishes_order_failed_with_its_reason(fx: &dyn EventsFixture) {
    let order = created_in(fx, None).await;
    changed(mark(fx, order, TO_AWAITING[0], None).await);
    let why = "PaymentDeclined: card declined";
    let compensate = (Step::BeginCompensation, OrderStatus::Compensating);
    changed(mark(fx, order, compensate, Some(why)).await);
    // MarkFailed writes no reason of its own: the compensation's stands.
    let failed = changed(mark(fx, order, (Step::MarkFailed, OrderStatus::Failed), None).await);
    let events = fx.events(order).await;
    assert_eq!(types(&events), ["order.created", "order.failed"]);
    assert_eq!(sequences(&events), [1, failed]);
    let data = &events[1].data;
    assert_eq!(data["failureReason"], why);
    assert_eq!(data["status"], "FAILED");
    assert!(data.get("cancellationReason").is_none());
    assert_eq!(read(fx, order).await.version, failed);
}

pub async fn a_cancelled_order_publishes_order_cancelled_with_the_reason(fx: &dyn EventsFixture) {
    let order = created_in(fx, None).await;
    changed(mark(fx, order, TO_AWAITING[0], None).await);
    let reason = "no longer needed";
    let cmd = CancelOrder {
        order,
        reason: Some(reason.into()),
        idempotency: None,
        ttl: chrono::Duration::minutes(10),
        now: Utc::now(),
    };
    let respond = |_: &OrderRecord| StoredResponse {
        status: 202,
        location: None,
        body: "{}".into(),
    };
    let accepted = fx.orders().cancel_order(cmd, &respond).await;
    assert!(
        matches!(accepted, Ok(CancelOutcome::Accepted(_))),
        "{accepted:?}"
    );
    // Refused moves write nothing: a forward one once cancelled, one the lifecycle forbids.
    let refused = mark(fx, order, TO_AWAITING[1], None).await;
    let cancelled = StepStoreError::Cancelled {
        reason: Some(reason.into()),
    };
    assert_eq!(refused, Err(cancelled));
    assert!(mark(fx, order, COMPLETE, None).await.is_err());
    assert_eq!(types(&fx.events(order).await), ["order.created"]);
    let compensate = (Step::BeginCompensation, OrderStatus::Compensating);
    changed(mark(fx, order, compensate, Some("cancelled by the customer")).await);
    let end = (Step::MarkCancelled, OrderStatus::Cancelled);
    let version = changed(mark(fx, order, end, None).await);
    let events = fx.events(order).await;
    assert_eq!(types(&events), ["order.created", "order.cancelled"]);
    assert_eq!(sequences(&events), [1, version]);
    assert_eq!(events[1].data["cancellationReason"], reason);
    assert!(events[1].data.get("failureReason").is_none());
}

/// `events_contract_tests!(factory)` runs every case against the fixtures `factory` builds.
#[macro_export]
macro_rules! events_contract_tests {
    ($factory:expr) => {
        $crate::events_contract_tests!(@cases $factory;
            a_lifecycle_publishes_each_change_once_in_sequence,
            re_runs_and_duplicates_publish_nothing_more,
            a_failed_order_publishes_order_failed_with_its_reason,
            a_cancelled_order_publishes_order_cancelled_with_the_reason);
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
