//! The steps that meet the outside actors, each run twice: RequestPayment records one payment
//! (its token replaced while the provider has not answered, the provider never asked again
//! once it has), MarkShipped ships once, and the steps after them count the webhook's move.
//! The webhook is applied through the store, as `POST /webhooks/payments` applies it.

use super::{Fx, Order};
use chrono::Utc;
use orders_domain::lifecycle::{PaymentResult, PaymentWebhook, WebhookOutcome};
use orders_domain::store::OrderStore;
use orders_domain::{Cents, OrderStatus, PaymentId};
use orders_test_support::saga_contract::SagaFixture;
use serde_json::{Value, json};

impl Fx {
    /// RequestPayment with the task token `token`.
    async fn request_payment(&self, o: &Order, token: &str) -> Value {
        let payload = json!({"step": "RequestPayment", "input": o.input, "taskToken": token});
        self.run(payload)
            .await
            .unwrap_or_else(|e| panic!("RequestPayment: {}: {e}", e.name()))
    }

    /// The provider's `payment.succeeded` for the order's payment, applied by the store.
    async fn paid(&self, o: &Order, cents: i64) -> WebhookOutcome {
        let webhook = PaymentWebhook {
            webhook_id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            result: PaymentResult::Succeeded,
            payment_id: PaymentId::for_order(o.id),
            order_id: o.id,
            amount: Cents(cents),
            reason: None,
            received_at: Utc::now(),
        };
        self.db.store.apply_payment_webhook(&webhook).await.unwrap()
    }

    fn token_of(&self, o: &Order) -> String {
        self.value(
            "SELECT task_token FROM payments WHERE order_id = ?1 AND ?2 = ?2",
            o,
            "",
        )
    }

    /// Reserved, asked for and paid: PAYMENT_PROCESSED at version 4.
    async fn paid_order(&self, cents: i64) -> Order {
        let o = self.order(cents).await;
        self.ok("ReserveInventory", &o).await;
        self.request_payment(&o, "token-1").await;
        assert_eq!(self.paid(&o, cents).await, WebhookOutcome::Applied);
        self.assert_status(&o, OrderStatus::PaymentProcessed, 4, None)
            .await;
        o
    }

    /// The order's input as MarkShipped gets it: with the warehouse's answer in `$.shipment`.
    fn shipped_input(o: &Order) -> Order {
        let mut input = o.input.clone();
        input["shipment"] =
            json!({"trackingNumber": "TRK-0123456789AB", "shippedAt": "2026-12-01T10:00:00.000Z"});
        Order { id: o.id, input }
    }
}

#[tokio::test]
async fn request_payment_twice_records_one_payment_and_keeps_the_latest_token() {
    let (fx, o) = Fx::with_order(129_999).await;
    fx.ok("ReserveInventory", &o).await;
    let a = fx.request_payment(&o, "token-1").await;
    let b = fx.request_payment(&o, "token-1").await;
    let payment_id = PaymentId::for_order(o.id);
    assert_eq!(a["paymentId"], payment_id.as_str());
    assert_eq!(a["charge"]["amountCents"], 129_999, "{a}");
    assert_eq!(a["charge"]["paymentId"], payment_id.as_str());
    assert_eq!(
        b, a,
        "a re-run asks again for the same payment (the provider dedups by id)"
    );
    assert_eq!(fx.rows("payments", &o), 1);
    assert_eq!(fx.attempts("RequestPayment", &o), 2);
    fx.assert_status(&o, OrderStatus::AwaitingPayment, 3, None)
        .await;
    // A retry waits on a new token: the webhook must answer that one.
    fx.request_payment(&o, "token-2").await;
    assert_eq!(fx.token_of(&o), "token-2");

    assert_eq!(fx.paid(&o, 129_999).await, WebhookOutcome::Applied);
    fx.assert_status(&o, OrderStatus::PaymentProcessed, 4, None)
        .await;
    // Answered: a late re-run neither asks the provider nor moves anything.
    let late = fx.request_payment(&o, "token-3").await;
    assert_eq!(late["charge"], Value::Null, "{late}");
    assert_eq!(fx.token_of(&o), "token-2");
    fx.assert_status(&o, OrderStatus::PaymentProcessed, 4, None)
        .await;
}

#[tokio::test]
async fn request_payment_without_its_token_is_refused() {
    let (fx, o) = Fx::with_order(129_999).await;
    fx.ok("ReserveInventory", &o).await;
    let err = fx.invoke("RequestPayment", &o.input).await.unwrap_err();
    assert_eq!(err.name(), "InvalidInput", "{err}");
    assert_eq!(fx.rows("payments", &o), 0);
    fx.assert_status(&o, OrderStatus::InventoryReserved, 2, None)
        .await;
}

#[tokio::test]
async fn mark_shipped_twice_ships_once_and_then_completes() {
    let fx = Fx::new().await;
    let o = fx.paid_order(129_999).await;
    let shipped = Fx::shipped_input(&o);
    let (a, b) = fx.twice("MarkShipped", &shipped).await;
    assert_eq!(a, json!({"trackingNumber": "TRK-0123456789AB"}));
    assert_eq!(b, a);
    assert_eq!(fx.rows("shipments", &o), 1);
    fx.assert_status(&o, OrderStatus::Shipped, 5, None).await;
    let order = fx.db.store.get_order(o.id).await.unwrap().unwrap();
    let shipment = order.shipment.expect("the shipment is on the order");
    assert_eq!(shipment.tracking_number, "TRK-0123456789AB");

    fx.twice("MarkCompleted", &o).await;
    fx.assert_status(&o, OrderStatus::Completed, 6, None).await;
}

#[tokio::test]
async fn mark_shipped_without_the_warehouse_answer_is_refused() {
    let fx = Fx::new().await;
    let o = fx.paid_order(129_999).await;
    let err = fx.invoke("MarkShipped", &o.input).await.unwrap_err();
    assert_eq!(err.name(), "InvalidInput", "{err}");
    let mut bad = Fx::shipped_input(&o);
    bad.input["shipment"]["trackingNumber"] = json!("has spaces");
    let err = fx.invoke("MarkShipped", &bad.input).await.unwrap_err();
    assert_eq!(err.name(), "InvalidInput", "{err}");
    assert_eq!(fx.rows("shipments", &o), 0);
    fx.assert_status(&o, OrderStatus::PaymentProcessed, 4, None)
        .await;
}

#[tokio::test]
async fn refund_payment_twice_refunds_once() {
    let fx = Fx::new().await;
    let o = fx.paid_order(129_999).await;
    let (a, b) = fx.twice("RefundPayment", &o).await;
    assert_eq!(a, json!({"refunded": true}));
    assert_eq!(b, json!({"refunded": false}));
    assert_eq!(
        fx.count(
            "SELECT COUNT(*) FROM payments WHERE order_id = ?1 AND status = 'REFUNDED'",
            &o
        ),
        1
    );
    assert_eq!(fx.all_rows("payments"), 1);
}

#[tokio::test]
async fn a_step_about_to_act_on_a_cancelled_order_stops_with_order_cancelled() {
    let fx = Fx::new().await;
    let o = fx.order(129_999).await;
    fx.db.request_cancel(o.id, Some("changed my mind")).await;
    for step in ["ReserveInventory", "SendNotification"] {
        let err = fx.invoke(step, &o.input).await.unwrap_err();
        assert_eq!(err.name(), "OrderCancelled", "{step}: {err}");
        assert_eq!(err.to_string(), "changed my mind");
    }
    assert_eq!(fx.rows("reservations", &o), 0);
    assert_eq!(fx.rows("notifications", &o), 0);
    let err = fx
        .run(json!({"step": "RequestPayment", "input": o.input, "taskToken": "t"}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "OrderCancelled", "{err}");
    assert_eq!(
        fx.rows("payments", &o),
        0,
        "no payment asked for a cancelled order"
    );
    // A failure that overtook the cancellation still ends the order CANCELLED.
    let mut failing = Order {
        id: o.id,
        input: o.input.clone(),
    };
    failing.input["error"] = json!({"Error": "OutOfStock", "Cause": "none left"});
    fx.ok("BeginCompensation", &failing).await;
    fx.ok("MarkFailed", &failing).await;
    assert_eq!(fx.status(&o).await.0, OrderStatus::Cancelled);
}
