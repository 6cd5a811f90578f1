//! The saga's step handlers over the DynamoDB store, invoked as the Lambda is (`{step, input}`,
//! a task token for RequestPayment): a completed order run forward twice, and an out-of-stock
//! order compensated the way the state machine's Catch runs it.

use super::{Dynamo, dynamodb, saga_input};
use orders_test_support::saga_contract::{self, SagaFixture, VoucherView, assert_step};

use chrono::Utc;
use orders_aws::dynamodb::attr;
use orders_aws::tables::attrs;
use orders_domain::event::{OutboxMessage, PublicEvent};
use orders_domain::lifecycle::{PaymentResult, PaymentWebhook, WebhookOutcome};
use orders_domain::store::OrderStore;
use orders_domain::{OrderId, OrderStatus, VoucherCode};
use orders_workflow::steps::{Step, StepError, StepSettings, Steps};
use serde_json::{Value, json};

const FORWARD: [Step; 6] = [
    Step::ReserveInventory,
    Step::RequestPayment,
    Step::SendNotification,
    Step::MarkShipped,
    Step::IssueVoucher,
    Step::MarkCompleted,
];

const COMPENSATION: [Step; 5] = [
    Step::BeginCompensation,
    Step::RefundPayment,
    Step::ReleaseInventory,
    Step::RestoreVoucher,
    Step::MarkFailed,
];

/// The public events the steps wrote to the outbox for `order`, by sequence.
async fn public_events(fx: &Dynamo, order: OrderId) -> Vec<PublicEvent> {
    let scanned = fx
        .client
        .scan()
        .table_name(&fx.names.outbox)
        .consistent_read(true)
        .send()
        .await
        .expect("scan the outbox");
    let mut events: Vec<PublicEvent> = scanned
        .items()
        .iter()
        .map(|item| attr::get_s(item, attrs::outbox::EVENT).expect("event text"))
        .filter(|text| {
            let row = OutboxMessage::decode(text.as_bytes()).expect("an outbox row");
            !matches!(row, OutboxMessage::Signal(_))
        })
        .map(|text| PublicEvent::decode(text.as_bytes()).expect("a public event"))
        .filter(|e| e.subject == order)
        .collect();
    events.sort_by_key(|e| e.sequence_number());
    events
}

/// A fresh emulator with each of `stock`'s products stocked.
async fn stocked(stock: &[(&str, i64)]) -> Dynamo {
    let fx = dynamodb().await;
    saga_contract::set_stocks(&fx, stock).await;
    fx
}

fn steps_over(fx: &Dynamo) -> Steps {
    Steps {
        store: fx.store.clone(),
        settings: StepSettings::default(),
    }
}

async fn invoke(steps: &Steps, step: Step, input: &Value) -> Result<Value, StepError> {
    let mut payload = json!({"step": step.name(), "input": input});
    if step == Step::RequestPayment {
        payload["taskToken"] = json!(format!("tok-{}", fastrand::u32(..)));
    }
    steps.invoke(payload).await
}

/// A saga over 100 EUR, run forward twice (a full redelivery) with the provider's webhook
/// after RequestPayment and the warehouse's shipment before MarkShipped: COMPLETED once,
/// stock taken once, one payment (the provider asked in the first round only), one shipment,
/// one voucher, each public event once, every step SUCCEEDED after two attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_on_dynamodb_complete_an_order_and_issue_its_voucher_once() {
    let fx = stocked(&[("laptop", 10), ("mouse", 10)]).await;
    let items = json!([
        {"productId": "laptop", "quantity": 1},
        {"productId": "mouse", "quantity": 2},
        {"productId": "laptop", "quantity": 1}
    ]);
    let mut input = saga_input("c-e2e", items, 260_000, None);
    let order = fx.put_order(&input).await;
    input["shipment"] =
        json!({"trackingNumber": "TRK-E2E", "shippedAt": "2026-03-04T05:06:07.890Z"});
    let steps = steps_over(&fx);
    let api = orders_aws::dynamodb::DynamoStore::new(fx.client.clone(), fx.names.clone());
    let webhook = PaymentWebhook {
        webhook_id: "msg_e2e".into(),
        result: PaymentResult::Succeeded,
        payment_id: orders_domain::PaymentId::for_order(order),
        order_id: order,
        amount: orders_domain::Cents(260_000),
        reason: None,
        received_at: Utc::now(),
    };
    for round in 1..=2 {
        for step in FORWARD {
            let out = invoke(&steps, step, &input)
                .await
                .unwrap_or_else(|e| panic!("round {round}, {}: {}: {e}", step.name(), e.name()));
            if step == Step::RequestPayment {
                assert_eq!(out["charge"].is_null(), round == 2, "asked once: {out}");
                let applied = api.apply_payment_webhook(&webhook).await.unwrap();
                let expected = match round {
                    1 => WebhookOutcome::Applied,
                    _ => WebhookOutcome::Duplicate,
                };
                assert_eq!(applied, expected);
            }
        }
    }
    // Six moves and the voucher, which is a change of the order too.
    assert_eq!(fx.order(order).await, (OrderStatus::Completed, 7, None));
    let events = public_events(&fx, order).await;
    let published: Vec<_> = events
        .iter()
        .map(|e| (e.event_type.as_str(), e.sequence_number().unwrap()))
        .collect();
    assert_eq!(
        published,
        [
            ("order.payment_processed", 4),
            ("order.shipped", 5),
            ("voucher.issued", 6),
            ("order.completed", 7)
        ],
        "each change once, the second round none"
    );
    assert_eq!(events[1].data["trackingNumber"], "TRK-E2E");
    assert_eq!(events[3].data["totalCents"], 260_000);
    assert_eq!(fx.stock("laptop").await, Some(8));
    assert_eq!(fx.stock("mouse").await, Some(8));
    for step in FORWARD {
        assert_step(&fx, order, step, "SUCCEEDED", 2, None).await;
    }
    let shown = api.get_order(order).await.unwrap().expect("the order");
    let payment = shown.payment.expect("payment shown");
    assert_eq!(payment.status, orders_domain::PaymentStatus::Succeeded);
    assert_eq!(shown.shipment.expect("shipment").tracking_number, "TRK-E2E");
    let item = fx.order_item(order).await;
    let code = attr::get_s(&item, attrs::order::VOUCHER_ISSUED).expect("voucher issued");
    let voucher = fx
        .get(&fx.names.vouchers, attrs::voucher::CODE, code)
        .await
        .expect("voucher item");
    assert_eq!(attr::get_s(&voucher, attrs::voucher::STATUS), Ok("READY"));
    assert_eq!(
        attr::get_s(&voucher, attrs::voucher::EARNED_BY),
        Ok(order.to_string().as_str())
    );
    assert_eq!(attr::get_n(&voucher, attrs::voucher::DISCOUNT), Ok(500));
    let vouchers = fx
        .client
        .scan()
        .table_name(&fx.names.vouchers)
        .send()
        .await
        .unwrap();
    assert_eq!(vouchers.count(), 1, "one voucher after two runs");
}

/// One item short: ReserveInventory fails OutOfStock, nothing is taken from the other item,
/// the compensation path (as the state machine's Catch runs it) restores the voucher the
/// order redeemed and ends the order FAILED with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_on_dynamodb_compensate_an_out_of_stock_order() {
    let fx = stocked(&[("keyboard", 5), ("sold-out", 0)]).await;
    let items = json!([
        {"productId": "keyboard", "quantity": 1},
        {"productId": "sold-out", "quantity": 1}
    ]);
    let redeemed = VoucherCode::from_trusted("VCH-REDEEMED".into());
    let mut input = saga_input("c-short", items, 4_500, Some(redeemed.as_str()));
    let order = fx.put_order(&input).await;
    fx.redeemed_voucher(&redeemed, "c-short", order).await;
    let steps = steps_over(&fx);

    let err = invoke(&steps, Step::ReserveInventory, &input)
        .await
        .expect_err("sold-out is short");
    assert_eq!(err.name(), "OutOfStock");
    assert_eq!(fx.stock("keyboard").await, Some(5), "all or none");
    let reserve = fx.step(order, Step::ReserveInventory).await.unwrap();
    assert_eq!(reserve.status, "FAILED");
    assert!(
        reserve
            .error
            .unwrap()
            .starts_with("OutOfStock: product sold-out")
    );

    // What the Catch hands on: the input plus the error under $.error.
    input["error"] = json!({"Error": err.name(), "Cause": err.to_string()});
    for step in COMPENSATION {
        let out = invoke(&steps, step, &input)
            .await
            .unwrap_or_else(|e| panic!("{}: {}: {e}", step.name(), e.name()));
        match step {
            Step::RefundPayment => assert_eq!(out["refunded"], json!(false), "never charged"),
            Step::ReleaseInventory => assert_eq!(out["released"], json!(false), "never held"),
            Step::RestoreVoucher => assert_eq!(out["restored"], json!(true)),
            _ => {}
        }
    }
    let (status, version, reason) = fx.order(order).await;
    assert_eq!((status, version), (OrderStatus::Failed, 3));
    let reason = reason.unwrap();
    assert!(reason.starts_with("OutOfStock: product sold-out"));
    let events = public_events(&fx, order).await;
    assert_eq!(events.len(), 1, "COMPENSATING publishes nothing");
    assert_eq!(events[0].event_type, "order.failed");
    assert_eq!(events[0].sequence_number(), Some(3));
    assert_eq!(events[0].data["failureReason"], reason.as_str());
    assert_eq!(fx.stock("keyboard").await, Some(5));
    assert_eq!(fx.stock("sold-out").await, Some(0));
    assert_eq!(
        fx.voucher(&redeemed).await,
        Some(VoucherView {
            status: orders_domain::VoucherStatus::Ready,
            redeemed_by: None
        })
    );
    for step in COMPENSATION {
        assert_eq!(
            fx.step(order, step).await.map(|s| s.status).as_deref(),
            Some("SUCCEEDED"),
            "{}",
            step.name()
        );
    }
}
