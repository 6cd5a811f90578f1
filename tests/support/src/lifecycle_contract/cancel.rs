//! The contract's cancellation cases: accepted once (the request, one signal for the order's
//! saga, the idempotency record of the response), asked again, refused with nothing written,
//! raced, and raced against the provider's success.

use super::{
    LifecycleFixture, TO_AWAITING, apply, awaiting_payment, created, moved, parcel, read,
    signals_of, webhook,
};
use crate::saga_contract::at;
use chrono::{Duration, Utc};
use orders_domain::idempotency::{IdempotencyKey, StoredResponse};
use orders_domain::lifecycle::{PaymentResult, PaymentStatus, TaskSignal, WebhookOutcome};
use orders_domain::store::{CancelOrder, CancelOutcome, OrderRecord};
use orders_domain::{OrderId, OrderStatus};
use orders_workflow::steps::Step;

/// The response the caller builds from the order a cancellation leaves: what it shows must
/// be what the outcome's order says.
fn respond(o: &OrderRecord) -> StoredResponse {
    StoredResponse {
        status: 202,
        location: None,
        body: format!(
            r#"{{"orderId":"{}","version":{},"cancellationRequested":{}}}"#,
            o.order.id,
            o.version,
            o.cancellation.is_some()
        ),
    }
}

fn command(order: OrderId, key: Option<(&str, &str)>, reason: Option<&str>) -> CancelOrder {
    CancelOrder {
        order,
        reason: reason.map(str::to_owned),
        idempotency: key.map(|(k, fp)| (IdempotencyKey::parse(k).unwrap(), fp.to_owned())),
        ttl: Duration::minutes(10),
        now: Utc::now(),
    }
}

async fn cancel_with(fx: &dyn LifecycleFixture, cmd: CancelOrder) -> CancelOutcome {
    let outcome = fx.orders().cancel_order(cmd, &respond).await;
    outcome.expect("cancel order")
}

async fn cancel(
    fx: &dyn LifecycleFixture,
    order: OrderId,
    key: Option<(&str, &str)>,
    reason: Option<&str>,
) -> CancelOutcome {
    cancel_with(fx, command(order, key, reason)).await
}

fn cancel_signal(execution: &str, reason: Option<&str>) -> TaskSignal {
    TaskSignal::CancelWaiting {
        execution: execution.to_owned(),
        reason: reason.map(str::to_owned),
    }
}

pub async fn a_cancellation_is_accepted_once_with_one_signal(fx: &dyn LifecycleFixture) {
    let paid = (Step::RequestPayment, OrderStatus::PaymentProcessed);
    let paths: [&[(Step, OrderStatus)]; 4] = [
        &[],
        &TO_AWAITING[..1],
        &TO_AWAITING,
        &[TO_AWAITING[0], TO_AWAITING[1], paid],
    ];
    for path in paths {
        let (order, execution) = created(fx, "c-cancel").await;
        moved(fx, order, path).await;
        let before = read(fx, order).await;
        let key = format!("cancel-{order}");
        let reason = Some("changed my mind");
        let asked = Utc::now();
        let outcome = cancel(fx, order, Some((&key, "fp")), reason).await;
        let CancelOutcome::Accepted(after) = outcome else {
            panic!("{:?}: {outcome:?}", before.status);
        };
        assert_eq!(
            read(fx, order).await,
            after,
            "the order as it is after the write"
        );
        assert_eq!(
            (after.status, after.version),
            (before.status, before.version + 1)
        );
        let request = after.cancellation.clone().expect("the request");
        assert_eq!(request.reason.as_deref(), reason);
        let skew = Duration::seconds(1);
        assert!(request.requested_at > asked - skew && request.requested_at < Utc::now() + skew);
        let events = fx.signals(order).await;
        assert_eq!(events.len(), 1, "exactly one signal: {events:?}");
        assert_eq!(events[0].subject, order);
        assert_eq!(signals_of(events), [cancel_signal(&execution, reason)]);
        // The record holds the response of the order after the write.
        let replay = cancel(fx, order, Some((&key, "fp")), reason).await;
        assert_eq!(replay, CancelOutcome::Replayed(respond(&after)));
        let other = cancel(fx, order, Some((&key, "fp-other")), None).await;
        assert_eq!(other, CancelOutcome::KeyReused);
        let unkeyed = cancel(fx, order, None, Some("again")).await;
        assert_eq!(unkeyed, CancelOutcome::AlreadyRequested(after.clone()));
        assert_eq!(read(fx, order).await, after, "asked again: nothing changed");
        assert_eq!(fx.signals(order).await.len(), 1);
    }
}

pub async fn a_cancel_after_cancel_is_already_requested(fx: &dyn LifecycleFixture) {
    let compensate = (Step::BeginCompensation, OrderStatus::Compensating);
    // Cancelled by an earlier request, now compensating.
    let (asked, _) = created(fx, "c-cancel-again").await;
    let first = cancel(fx, asked, None, None).await;
    assert!(matches!(first, CancelOutcome::Accepted(_)), "{first:?}");
    moved(fx, asked, &[compensate]).await;
    // CANCELLED with no request on record.
    let (ended, _) = created(fx, "c-cancel-again").await;
    moved(
        fx,
        ended,
        &[compensate, (Step::MarkCancelled, OrderStatus::Cancelled)],
    )
    .await;
    for order in [asked, ended] {
        let before = read(fx, order).await;
        let signals = fx.signals(order).await.len();
        let key = format!("again-{order}");
        let outcome = cancel(fx, order, Some((&key, "fp")), Some("why")).await;
        assert_eq!(outcome, CancelOutcome::AlreadyRequested(before.clone()));
        assert_eq!(read(fx, order).await, before, "nothing changed");
        assert_eq!(fx.signals(order).await.len(), signals, "no new signal");
        // Its idempotency record is written too, and expires like any other.
        let replay = cancel(fx, order, Some((&key, "fp")), Some("why")).await;
        assert_eq!(replay, CancelOutcome::Replayed(respond(&before)));
        let mut later = command(order, Some((&key, "fp-other")), None);
        later.now = Utc::now() + Duration::minutes(11);
        let expired = cancel_with(fx, later).await;
        assert_eq!(expired, CancelOutcome::AlreadyRequested(before));
    }
}

pub async fn a_cancel_refused_writes_nothing(fx: &dyn LifecycleFixture) {
    let compensate = (Step::BeginCompensation, OrderStatus::Compensating);
    let paid = [
        TO_AWAITING[0],
        TO_AWAITING[1],
        (Step::RequestPayment, OrderStatus::PaymentProcessed),
    ];
    let shipped = created(fx, "c-cancel-late").await.0;
    moved(fx, shipped, &paid).await;
    let steps = fx.steps();
    let change = steps
        .call(move |s| async move {
            s.mark_shipped(at(shipped, Utc::now()), Step::MarkShipped, &parcel())
                .await
        })
        .await;
    change.expect("mark shipped");
    let completed = created(fx, "c-cancel-late").await.0;
    moved(fx, completed, &paid).await;
    let done = (Step::MarkCompleted, OrderStatus::Completed);
    let ship = (Step::MarkShipped, OrderStatus::Shipped);
    moved(fx, completed, &[ship, done]).await;
    let failing = created(fx, "c-cancel-late").await.0;
    moved(fx, failing, &[compensate]).await;
    let failed = created(fx, "c-cancel-late").await.0;
    moved(
        fx,
        failed,
        &[compensate, (Step::MarkFailed, OrderStatus::Failed)],
    )
    .await;
    for order in [shipped, completed, failing, failed] {
        let before = read(fx, order).await;
        let key = format!("late-{order}");
        let outcome = cancel(fx, order, Some((&key, "fp")), Some("too late")).await;
        assert_eq!(outcome, CancelOutcome::NotCancellable(before.clone()));
        assert_eq!(read(fx, order).await, before, "nothing changed");
        assert_eq!(fx.signals(order).await, [], "no signal");
        // No idempotency record either: the key is still free for another body.
        let other = cancel(fx, order, Some((&key, "fp-other")), None).await;
        assert_eq!(other, CancelOutcome::NotCancellable(before));
    }
}

pub async fn a_cancel_of_an_unknown_order_writes_nothing(fx: &dyn LifecycleFixture) {
    let missing = OrderId::new();
    let key = format!("missing-{missing}");
    let outcome = cancel(fx, missing, Some((&key, "fp")), None).await;
    assert_eq!(outcome, CancelOutcome::NotFound);
    let (order, _) = created(fx, "c-cancel-missing").await;
    let accepted = cancel(fx, order, Some((&key, "fp-other")), None).await;
    assert!(
        matches!(accepted, CancelOutcome::Accepted(_)),
        "the key was not taken: {accepted:?}"
    );
}

pub async fn concurrent_cancels_accept_once(fx: &dyn LifecycleFixture) {
    for keyed in [false, true] {
        let (order, _) = created(fx, "c-cancel-race").await;
        moved(fx, order, &TO_AWAITING).await;
        let key = format!("race-{order}");
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let store = fx.orders();
                let cmd = command(order, keyed.then_some((key.as_str(), "fp")), None);
                tokio::spawn(async move { store.cancel_order(cmd, &respond).await })
            })
            .collect();
        let (mut accepted, mut others) = (Vec::new(), Vec::new());
        for run in runs {
            match run.await.unwrap().expect("cancel order") {
                CancelOutcome::Accepted(o) => accepted.push(o),
                other => others.push(other),
            }
        }
        assert_eq!(accepted.len(), 1, "keyed {keyed}: {others:?}");
        let after = accepted.remove(0);
        let again = match keyed {
            true => CancelOutcome::Replayed(respond(&after)),
            false => CancelOutcome::AlreadyRequested(after.clone()),
        };
        assert!(others.iter().all(|o| *o == again), "{others:?}");
        assert_eq!(fx.signals(order).await.len(), 1, "one signal");
        assert_eq!(read(fx, order).await, after);
    }
}

pub async fn a_success_after_a_cancel_is_refunded(fx: &dyn LifecycleFixture) {
    let order = awaiting_payment(fx, "c-cancel-paid", "token-paid").await;
    let outcome = cancel(fx, order, None, Some("no longer needed")).await;
    let CancelOutcome::Accepted(after) = outcome else {
        panic!("{outcome:?}");
    };
    let success = webhook("msg-after-cancel", order, PaymentResult::Succeeded);
    assert_eq!(apply(fx, &success).await, WebhookOutcome::Refunded);
    let now = read(fx, order).await;
    assert_eq!(now.payment.map(|p| p.status), Some(PaymentStatus::Refunded));
    assert_eq!((now.status, now.version), (after.status, after.version));
    let signals = signals_of(fx.signals(order).await);
    assert_eq!(signals.len(), 1, "only the cancellation's: {signals:?}");
    assert!(
        matches!(&signals[0], TaskSignal::CancelWaiting { reason: Some(r), .. } if r == "no longer needed"),
        "{signals:?}"
    );
}
