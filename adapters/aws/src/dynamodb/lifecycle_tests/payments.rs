//! The payment record: requested once with its token, the token replaced while REQUESTED,
//! never once settled; the webhook settling it; refunded once; GET showing it from the order
//! item alone.

use super::{Fx, fx};
use crate::dynamodb::attr;
use crate::tables::attrs::saga as sa;
use chrono::Utc;
use orders_domain::lifecycle::{PaymentResult, PaymentWebhook, WebhookOutcome};
use orders_domain::store::OrderStore;
use orders_domain::{Cents, OrderId, OrderStatus, PaymentId, PaymentStatus, TaskSignal};
use orders_workflow::steps::store::{OrderAt, PaymentRequest};
use orders_workflow::steps::{Payments, Step};
use serde_json::json;

/// An order AWAITING_PAYMENT; its id and its payment's id.
pub(super) async fn awaiting(fx: &Fx) -> (OrderId, PaymentId) {
    let (id, _) = fx.order().await;
    fx.walk(
        id,
        &[
            (Step::ReserveInventory, OrderStatus::InventoryReserved),
            (Step::RequestPayment, OrderStatus::AwaitingPayment),
        ],
    )
    .await;
    (id, PaymentId::for_order(id))
}

pub(super) async fn request(fx: &Fx, id: OrderId, token: &str) -> PaymentStatus {
    let pay = PaymentId::for_order(id);
    let req = PaymentRequest {
        payment_id: &pay,
        amount: Cents(12_000),
        method: "pm_card_visa",
        token,
    };
    fx.steps
        .request_payment(OrderAt::now(id), &req)
        .await
        .unwrap()
}

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

pub(super) async fn token_of(fx: &Fx, id: OrderId) -> (String, String) {
    let item = fx
        .raw
        .get_item()
        .table_name(&fx.names.saga)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_requested_once_settled_by_its_webhook_and_refunded_once() {
    let fx = fx().await;
    let (id, pay) = awaiting(&fx).await;
    assert!(
        !fx.steps.refund(OrderAt::now(id)).await.unwrap(),
        "nothing to refund"
    );
    fx.hook.take();
    assert_eq!(request(&fx, id, "tok-1").await, PaymentStatus::Requested);
    assert_eq!(fx.hook.take(), ["TransactWriteItems"]);
    // A retried RequestPayment waits on a new token.
    assert_eq!(request(&fx, id, "tok-2").await, PaymentStatus::Requested);
    assert_eq!(fx.hook.take(), ["TransactWriteItems", "UpdateItem"]);
    assert_eq!(
        token_of(&fx, id).await,
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
    assert_eq!(request(&fx, id, "tok-3").await, PaymentStatus::Succeeded);
    assert_eq!(
        token_of(&fx, id).await,
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
    assert_eq!(token_of(&fx, id).await.0, "REFUNDED");
}
