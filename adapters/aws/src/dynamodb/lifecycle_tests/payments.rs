//! The payment record: requested once with its token, the token replaced while REQUESTED,
//! never once settled; the webhook settling it; refunded once; GET showing it from the order
//! item alone.

use super::{AWAITING, fx_with, webhook};
use orders_domain::lifecycle::{PaymentResult, WebhookOutcome};
use orders_domain::store::OrderStore;
use orders_domain::{OrderStatus, PaymentId, PaymentStatus, TaskSignal};
use orders_workflow::steps::Payments;
use orders_workflow::steps::store::OrderAt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_requested_once_settled_by_its_webhook_and_refunded_once() {
    let (fx, id) = fx_with(AWAITING).await;
    let pay = PaymentId::for_order(id);
    assert!(
        !fx.steps.refund(OrderAt::now(id)).await.unwrap(),
        "nothing to refund"
    );
    fx.hook.take();
    assert_eq!(fx.request(id, "tok-1").await, PaymentStatus::Requested);
    assert_eq!(fx.hook.take(), ["TransactWriteItems"]);
    // A retried RequestPayment waits on a new token.
    assert_eq!(fx.request(id, "tok-2").await, PaymentStatus::Requested);
    assert_eq!(fx.hook.take(), ["TransactWriteItems", "UpdateItem"]);
    assert_eq!(
        fx.payment_record(id).await,
        ("REQUESTED".into(), "tok-2".into())
    );
    let order = fx.get(id).await;
    let shown = order.payment.expect("payment shown");
    assert_eq!(
        (shown.payment_id, shown.status),
        (pay.clone(), PaymentStatus::Requested)
    );
    assert_eq!(fx.hook.take(), ["GetItem"], "GET is one read");

    let w = webhook(id, "msg_1", PaymentResult::Succeeded);
    assert_eq!(
        fx.orders.apply_payment_webhook(&w).await,
        Ok(WebhookOutcome::Applied)
    );
    assert_eq!(fx.hook.take(), ["TransactGetItems", "TransactWriteItems"]);
    let order = fx.get(id).await;
    assert_eq!(
        (order.status, order.version),
        (OrderStatus::PaymentProcessed, 4)
    );
    assert_eq!(order.payment.unwrap().status, PaymentStatus::Succeeded);
    let signals = fx.signals(id).await;
    assert_eq!(signals.len(), 1);
    assert_eq!(
        signals[0].data,
        TaskSignal::Succeed {
            token: "tok-2".into(),
            output: json!({"paymentId": pay, "amountCents": 12_000}),
        }
    );
    // Settled: a late re-run of RequestPayment learns it and keeps the token.
    assert_eq!(fx.request(id, "tok-3").await, PaymentStatus::Succeeded);
    assert_eq!(
        fx.payment_record(id).await,
        ("SUCCEEDED".into(), "tok-2".into())
    );
    // The same webhook again, and another one for the settled payment.
    fx.hook.take();
    assert_eq!(
        fx.orders.apply_payment_webhook(&w).await,
        Ok(WebhookOutcome::Duplicate)
    );
    assert_eq!(fx.hook.take(), ["TransactGetItems"]);
    let late = webhook(id, "msg_2", PaymentResult::Failed);
    assert!(matches!(
        fx.orders.apply_payment_webhook(&late).await,
        Ok(WebhookOutcome::Ignored(why)) if why.contains("SUCCEEDED")
    ));
    assert_eq!(fx.signals(id).await.len(), 1, "no second signal");

    assert!(fx.steps.refund(OrderAt::now(id)).await.unwrap());
    assert!(
        !fx.steps.refund(OrderAt::now(id)).await.unwrap(),
        "refunded once"
    );
    assert_eq!(
        fx.get(id).await.payment.unwrap().status,
        PaymentStatus::Refunded
    );
    assert_eq!(fx.payment_record(id).await.0, "REFUNDED");
}
