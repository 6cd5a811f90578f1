//! The webhook and cancellation transactions: each rule of their doc comments, the records
//! they keep, and the races their conditions decide (another writer injected between the
//! read and the transaction).

use super::{AWAITING, PAID, PENDING, fx, fx_awaiting, fx_with, webhook};
use crate::dynamodb::attr;
use crate::tables::attrs::{order as oa, saga as sa};
use orders_domain::lifecycle::{PAYMENT_DECLINED, PaymentResult, WebhookOutcome};
use orders_domain::store::{CancelOutcome, OrderStore};
use orders_domain::{Cents, OrderId, OrderStatus, PaymentStatus, TaskSignal};
use orders_workflow::steps::Step;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_fails_the_waiting_task_and_moves_nothing() {
    let (fx, id) = fx_awaiting("tok").await;
    let w = webhook(id, "msg_d", PaymentResult::Failed);
    assert_eq!(
        fx.orders.apply_payment_webhook(&w).await,
        Ok(WebhookOutcome::Applied)
    );
    let order = fx.get(id).await;
    assert_eq!(
        (order.status, order.version),
        (OrderStatus::AwaitingPayment, 3)
    );
    assert_eq!(order.payment.unwrap().status, PaymentStatus::Failed);
    let signals = fx.signals(id).await;
    assert_eq!(
        signals.iter().map(|s| s.data.clone()).collect::<Vec<_>>(),
        [TaskSignal::Fail {
            token: "tok".into(),
            error: PAYMENT_DECLINED.into(),
            cause: "card declined".into(),
        }]
    );
}

/// Unknown order, wrong amount, wrong payment id: recorded (a second delivery is a
/// duplicate) and ignored, the payment untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_that_match_nothing_are_recorded_and_ignored() {
    let fx = fx().await;
    let ghost = webhook(OrderId::new(), "msg_ghost", PaymentResult::Succeeded);
    assert!(matches!(fx.orders.apply_payment_webhook(&ghost).await,
        Ok(WebhookOutcome::Ignored(why)) if why.contains("unknown order")));
    assert_eq!(
        fx.orders.apply_payment_webhook(&ghost).await,
        Ok(WebhookOutcome::Duplicate)
    );
    let id = fx.order_at(AWAITING).await;
    fx.request(id, "tok").await;
    let mut wrong = webhook(id, "msg_amount", PaymentResult::Succeeded);
    wrong.amount = Cents(1);
    assert!(matches!(fx.orders.apply_payment_webhook(&wrong).await,
        Ok(WebhookOutcome::Ignored(why)) if why.contains("amount")));
    let mut other = webhook(id, "msg_other", PaymentResult::Succeeded);
    other.payment_id = orders_domain::PaymentId::parse("pay_other").unwrap();
    assert!(matches!(
        fx.orders.apply_payment_webhook(&other).await,
        Ok(WebhookOutcome::Ignored(_))
    ));
    assert_eq!(fx.payment_record(id).await.0, "REQUESTED");
    assert_eq!(fx.get(id).await.status, OrderStatus::AwaitingPayment);
    assert!(fx.signals(id).await.is_empty());
}

/// Cancelled while waiting: the cancel signal names the saga execution; a success arriving
/// after it is refunded in its own transaction, with no signal and no move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_after_the_cancellation_is_refunded_at_once() {
    let (fx, id) = fx_awaiting("tok").await;
    let execution = attr::get_s(&fx.order_item(id).await, oa::EXECUTION)
        .unwrap()
        .to_owned();
    fx.hook.take();
    let CancelOutcome::Accepted(after) = fx.cancel(id, None).await.unwrap() else {
        panic!("accepted")
    };
    assert_eq!(fx.hook.take(), ["GetItem", "TransactWriteItems"]);
    assert_eq!(after.version, 4);
    assert_eq!(
        after,
        fx.get(id).await,
        "the record answered is the one stored"
    );
    assert_eq!(
        fx.signals(id)
            .await
            .into_iter()
            .map(|s| s.data)
            .collect::<Vec<_>>(),
        [TaskSignal::CancelWaiting {
            execution,
            reason: Some("changed my mind".into())
        }]
    );
    let w = webhook(id, "msg_late", PaymentResult::Succeeded);
    assert_eq!(
        fx.orders.apply_payment_webhook(&w).await,
        Ok(WebhookOutcome::Refunded)
    );
    let order = fx.get(id).await;
    assert_eq!(
        (order.status, order.version),
        (OrderStatus::AwaitingPayment, 4)
    );
    assert_eq!(order.payment.unwrap().status, PaymentStatus::Refunded);
    assert_eq!(fx.signals(id).await.len(), 1, "only the cancel signal");
}

/// The token replaced by a retried RequestPayment between the webhook's read and its write:
/// the condition on the token loses, the webhook reads again and signals the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_replaced_after_the_read_is_signalled_after_a_re_read() {
    let (fx, id) = fx_awaiting("tok-old").await;
    let (saga, order) = (fx.names.saga.clone(), id);
    fx.hook.before("TransactWriteItems", &fx.raw, move |raw| {
        Box::pin(async move {
            raw.update_item()
                .table_name(saga)
                .key(sa::ORDER, attr::s(order.to_string()))
                .key(sa::RECORD, attr::s(sa::PAYMENT))
                .update_expression("SET #t = :t")
                .expression_attribute_names("#t", sa::TASK_TOKEN)
                .expression_attribute_values(":t", attr::s("tok-new"))
                .send()
                .await
                .unwrap();
        })
    });
    fx.hook.take();
    let w = webhook(id, "msg_race", PaymentResult::Succeeded);
    assert_eq!(
        fx.orders.apply_payment_webhook(&w).await,
        Ok(WebhookOutcome::Applied)
    );
    assert_eq!(
        fx.hook.take(),
        [
            "TransactGetItems",
            "TransactWriteItems",
            "TransactGetItems",
            "TransactWriteItems"
        ]
    );
    let signals = fx.signals(id).await;
    assert!(matches!(&signals[..], [s] if matches!(&s.data,
        TaskSignal::Succeed { token, .. } if token == "tok-new")));
    let published = fx.published(id).await;
    let paid = ("order.payment_processed".to_owned(), 4);
    assert_eq!(
        published[1..],
        [paid],
        "the lost attempt's event is not written"
    );
}

/// A cancellation racing the webhook's success: the cancellation lands after the webhook's
/// read, the version condition loses, and the webhook decides again: refunded, no signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_after_the_webhooks_read_turns_its_success_into_a_refund() {
    let (fx, id) = fx_awaiting("tok").await;
    fx.before_order_update(
        "TransactWriteItems",
        id,
        "SET #c = :c, #v = #v + :one",
        vec![("#c", oa::CANCEL_REQUESTED_AT), ("#v", oa::VERSION)],
        vec![
            (":c", attr::s("2026-01-01T00:00:00.000Z")),
            (":one", attr::n(1)),
        ],
    );
    let w = webhook(id, "msg_cancel_race", PaymentResult::Succeeded);
    assert_eq!(
        fx.orders.apply_payment_webhook(&w).await,
        Ok(WebhookOutcome::Refunded)
    );
    assert_eq!(fx.get(id).await.status, OrderStatus::AwaitingPayment);
    assert!(fx.signals(id).await.is_empty());
    assert_eq!(fx.published(id).await, [("order.created".to_owned(), 1)]);
}

/// The idempotency rules of a cancellation: the first response replayed, another payload
/// refused, another key answered `AlreadyRequested` (and kept); too late: nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_honour_idempotency_keys() {
    let (fx, id) = fx_with(PENDING).await;
    let CancelOutcome::Accepted(first) = fx.cancel(id, Some(("k1", "fp"))).await.unwrap() else {
        panic!("accepted")
    };
    fx.hook.take();
    let replay = fx.cancel(id, Some(("k1", "fp"))).await.unwrap();
    let CancelOutcome::Replayed(stored) = replay else {
        panic!("{replay:?}")
    };
    assert_eq!(stored.body, format!("PENDING v{}", first.version));
    assert_eq!(
        fx.hook.take(),
        ["TransactGetItems"],
        "a replay writes nothing"
    );
    assert_eq!(
        fx.cancel(id, Some(("k1", "other"))).await,
        Ok(CancelOutcome::KeyReused)
    );
    assert!(matches!(
        fx.cancel(id, Some(("k2", "fp"))).await,
        Ok(CancelOutcome::AlreadyRequested(_))
    ));
    assert!(matches!(
        fx.cancel(id, Some(("k2", "fp"))).await,
        Ok(CancelOutcome::Replayed(_))
    ));
    assert!(matches!(
        fx.cancel(id, None).await,
        Ok(CancelOutcome::AlreadyRequested(_))
    ));
    assert_eq!(fx.signals(id).await.len(), 1, "one signal");
    assert_eq!(
        fx.cancel(OrderId::new(), None).await,
        Ok(CancelOutcome::NotFound)
    );

    let late = fx.order_at(PAID).await;
    fx.walk(late, &[(Step::MarkShipped, OrderStatus::Shipped)])
        .await;
    assert!(matches!(fx.cancel(late, Some(("k3", "fp"))).await,
        Ok(CancelOutcome::NotCancellable(r)) if r.status == OrderStatus::Shipped));
    assert!(
        matches!(
            fx.cancel(late, Some(("k3", "fp"))).await,
            Ok(CancelOutcome::NotCancellable(_))
        ),
        "no record was kept for the key"
    );
}

/// The order shipped between the cancellation's read and its write: the version condition
/// loses, the decision is made again: not cancellable, nothing written, no signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_racing_the_shipment_loses_cleanly() {
    let (fx, id) = fx_with(PAID).await;
    fx.before_order_update(
        "TransactWriteItems",
        id,
        "SET #s = :s, #v = #v + :one",
        vec![("#s", oa::STATUS), ("#v", oa::VERSION)],
        vec![(":s", attr::s("SHIPPED")), (":one", attr::n(1))],
    );
    let outcome = fx.cancel(id, Some(("k", "fp"))).await.unwrap();
    assert!(
        matches!(&outcome, CancelOutcome::NotCancellable(r) if r.status == OrderStatus::Shipped),
        "{outcome:?}"
    );
    let order = fx.get(id).await;
    assert_eq!(order.cancellation, None);
    assert!(fx.signals(id).await.is_empty());
}

/// An order created before its execution name was kept: the request is recorded, the signal
/// skipped (the saga's next step sees the request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_without_its_execution_name_is_cancelled_without_a_signal() {
    let (fx, id) = fx_with(PENDING).await;
    fx.raw
        .update_item()
        .table_name(&fx.names.orders)
        .key(oa::ID, attr::s(id.to_string()))
        .update_expression("REMOVE #e")
        .expression_attribute_names("#e", oa::EXECUTION)
        .send()
        .await
        .unwrap();
    assert!(matches!(
        fx.cancel(id, None).await,
        Ok(CancelOutcome::Accepted(_))
    ));
    assert!(fx.get(id).await.cancellation.is_some());
    assert!(fx.signals(id).await.is_empty());
}
