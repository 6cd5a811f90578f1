//! The public events the changes write on DynamoDB: a publishing change is one transaction
//! with its event (a quiet one the update alone), the event at the version the winning write
//! made; a re-run, a refused write and a write that lost its race publish nothing; the
//! order's trace is kept at creation and continued by every later event.

use super::{AWAITING, Fx, PAID, fx, fx_with, webhook};
use crate::dynamodb::attr;
use crate::tables::attrs::order as oa;
use chrono::Utc;
use orders_domain::event::{PublicEvent, Traceparent};
use orders_domain::lifecycle::{PaymentResult, Shipment, WebhookOutcome};
use orders_domain::store::OrderStore;
use orders_domain::{Cents, CustomerId, OrderId, OrderStatus, OutboxMessage, VoucherCode};
use orders_workflow::steps::store::{NewVoucher, OrderAt, StatusChange, StepResult};
use orders_workflow::steps::{Progress, Shipments, Step, StepStoreError, Vouchers};

const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

impl Fx {
    /// The public events in the outbox for `id` (`order.created` included), by sequence.
    pub async fn events(&self, id: OrderId) -> Vec<PublicEvent> {
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
            if let OutboxMessage::Signal(_) = OutboxMessage::decode(json.as_bytes()).unwrap() {
                continue;
            }
            let event = PublicEvent::decode(json.as_bytes()).unwrap();
            if event.subject == id {
                found.push(event);
            }
        }
        found.sort_by_key(|e| e.sequence_number());
        found
    }

    /// The type and sequence of each of the order's public events.
    pub async fn published(&self, id: OrderId) -> Vec<(String, u64)> {
        let events = self.events(id).await;
        let shown = events
            .into_iter()
            .map(|e| (e.event_type.clone(), e.sequence_number()));
        shown.map(|(t, s)| (t, s.unwrap())).collect()
    }

    async fn ship(&self, id: OrderId, tracking: &str) -> StepResult<StatusChange> {
        let parcel = Shipment {
            tracking_number: tracking.into(),
            shipped_at: Utc::now(),
        };
        let at = OrderAt::now(id);
        self.steps
            .mark_shipped(at, Step::MarkShipped, &parcel)
            .await
    }

    async fn issue(&self, id: OrderId, code: &str) -> StepResult<VoucherCode> {
        let customer = CustomerId::parse("c-life").unwrap();
        let code = VoucherCode::from_trusted(code.into());
        let new = NewVoucher {
            customer: &customer,
            code: &code,
            discount: Cents(1_000),
        };
        self.steps.issue_voucher(OrderAt::now(id), &new).await
    }
}

fn published(types: &[(&str, u64)]) -> Vec<(String, u64)> {
    types.iter().map(|(t, s)| ((*t).to_owned(), *s)).collect()
}

/// The happy path's changes, each counted: the quiet moves are one update, the publishing
/// ones one transaction, the re-runs a read; every event continues the order's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_publishing_change_is_one_transaction_with_its_event() {
    let fx = fx().await;
    let trace = Traceparent::parse(TRACE).unwrap();
    let (id, _) = fx.order_in(Some(trace.clone())).await;
    let item = fx.order_item(id).await;
    assert_eq!(attr::get_s(&item, oa::TRACEPARENT), Ok(TRACE));
    fx.steps
        .step_attempt(OrderAt::now(id), Step::ReserveInventory)
        .await
        .unwrap();
    fx.hook.take();
    let reserved = fx
        .mv(id, Step::ReserveInventory, OrderStatus::InventoryReserved)
        .await;
    assert_eq!(reserved, Ok(StatusChange::Changed { version: 2 }));
    assert_eq!(fx.hook.take(), ["GetItem", "UpdateItem"], "a quiet move");
    fx.walk(id, &AWAITING[1..]).await;
    fx.request(id, "tok").await;
    fx.hook.take();
    let w = webhook(id, "msg_paid", PaymentResult::Succeeded);
    let applied = fx.orders.apply_payment_webhook(&w).await;
    assert_eq!(applied, Ok(WebhookOutcome::Applied));
    assert_eq!(fx.hook.take(), ["TransactGetItems", "TransactWriteItems"]);
    assert_eq!(
        fx.ship(id, "TRK-1").await,
        Ok(StatusChange::Changed { version: 5 })
    );
    assert_eq!(fx.hook.take(), ["GetItem", "TransactWriteItems"]);
    assert_eq!(fx.ship(id, "TRK-2").await, Ok(StatusChange::Unchanged));
    assert_eq!(fx.hook.take(), ["GetItem"], "a re-run reads only");
    assert_eq!(fx.issue(id, "VCH-1").await.unwrap().as_str(), "VCH-1");
    assert_eq!(fx.hook.take(), ["GetItem", "TransactWriteItems"]);
    assert_eq!(fx.issue(id, "VCH-2").await.unwrap().as_str(), "VCH-1");
    assert_eq!(fx.hook.take(), ["GetItem"], "a re-run reads only");
    let done = fx.mv(id, Step::MarkCompleted, OrderStatus::Completed).await;
    assert_eq!(done, Ok(StatusChange::Changed { version: 7 }));
    assert_eq!(fx.hook.take(), ["GetItem", "TransactWriteItems"]);
    assert_eq!(fx.get(id).await.version, 7);

    assert_eq!(
        fx.published(id).await,
        published(&[
            ("order.created", 1),
            ("order.payment_processed", 4),
            ("order.shipped", 5),
            ("voucher.issued", 6),
            ("order.completed", 7),
        ])
    );
    let events = fx.events(id).await;
    assert_eq!(events[1].data["paymentId"], w.payment_id.as_str());
    assert_eq!(events[2].data["trackingNumber"], "TRK-1");
    assert_eq!(events[3].data["voucherCode"], "VCH-1");
    assert_eq!(events[3].data["discountCents"], 1_000);
    assert_eq!(events[4].data["totalCents"], 12_000);
    assert_eq!(events[0].traceparent.as_ref(), Some(&trace));
    for later in &events[1..] {
        let t = later.traceparent.as_ref().expect("the order's trace");
        assert_eq!(t.trace_id(), trace.trace_id(), "{}", later.event_type);
        assert_ne!(t.span_id(), trace.span_id(), "a span of its own");
    }
}

/// Another writer's version bump between the move's read and its transaction: the event of
/// the lost attempt is not written; the move is read again and publishes at the version it
/// made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_read_publishes_once_at_the_version_made() {
    let (fx, id) = fx_with(PAID).await;
    fx.before_order_update(
        "TransactWriteItems",
        id,
        "SET #v = #v + :one",
        vec![("#v", oa::VERSION)],
        vec![(":one", attr::n(1))],
    );
    assert_eq!(
        fx.ship(id, "TRK-1").await,
        Ok(StatusChange::Changed { version: 6 })
    );
    assert_eq!(
        fx.hook.take(),
        [
            "GetItem",
            "TransactWriteItems",
            "GetItem",
            "TransactWriteItems"
        ]
    );
    assert_eq!(
        fx.published(id).await,
        published(&[
            ("order.created", 1),
            ("order.payment_processed", 4),
            ("order.shipped", 6)
        ])
    );
}

/// A cancellation landing between the read and the transaction refuses the move from the
/// cancellation's old image, with no event; compensation then publishes `order.cancelled`
/// with the customer's reason (and COMPENSATING, on the way, nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_refused_by_its_condition_publishes_nothing() {
    let (fx, id) = fx_with(PAID).await;
    fx.before_order_update(
        "TransactWriteItems",
        id,
        "SET #c = :c, #r = :r",
        vec![("#c", oa::CANCEL_REQUESTED_AT), ("#r", oa::CANCEL_REASON)],
        vec![
            (":c", attr::s("2026-01-01T00:00:00.000Z")),
            (":r", attr::s("changed my mind")),
        ],
    );
    let refused = fx.ship(id, "TRK-1").await;
    let reason = Some("changed my mind".to_owned());
    assert_eq!(refused, Err(StepStoreError::Cancelled { reason }));
    assert_eq!(fx.hook.take(), ["GetItem", "TransactWriteItems"]);
    assert_eq!(fx.get(id).await.status, OrderStatus::PaymentProcessed);
    let before = published(&[("order.created", 1), ("order.payment_processed", 4)]);
    assert_eq!(fx.published(id).await, before);
    fx.walk(
        id,
        &[
            (Step::BeginCompensation, OrderStatus::Compensating),
            (Step::MarkCancelled, OrderStatus::Cancelled),
        ],
    )
    .await;
    let events = fx.events(id).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.event_type.as_str(), last.sequence_number()),
        ("order.cancelled", Some(6))
    );
    assert_eq!(last.data["cancellationReason"], "changed my mind");
    assert_eq!(events.len(), 3);
}

/// Issuing a voucher: a stale read is read again and published at the version made; a voucher
/// issued by another writer meanwhile is found in the cancellation's old image and returned,
/// with nothing written or published by this call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voucher_is_published_once_whoever_wins() {
    let (fx, id) = fx_with(PAID).await;
    fx.before_order_update(
        "TransactWriteItems",
        id,
        "SET #v = #v + :one",
        vec![("#v", oa::VERSION)],
        vec![(":one", attr::n(1))],
    );
    assert_eq!(fx.issue(id, "VCH-1").await.unwrap().as_str(), "VCH-1");
    assert_eq!(
        fx.hook.take(),
        [
            "GetItem",
            "TransactWriteItems",
            "GetItem",
            "TransactWriteItems"
        ]
    );
    let item = fx.order_item(id).await;
    assert_eq!(attr::get_n(&item, oa::VERSION), Ok(6));
    assert_eq!(attr::get_s(&item, oa::VOUCHER_ISSUED), Ok("VCH-1"));
    let events = fx.events(id).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.event_type.as_str(), last.sequence_number()),
        ("voucher.issued", Some(6))
    );
    assert_eq!(events.len(), 3);

    let other = fx.order_at(PAID).await;
    fx.before_order_update(
        "TransactWriteItems",
        other,
        "SET #i = :code, #v = #v + :one",
        vec![("#i", oa::VOUCHER_ISSUED), ("#v", oa::VERSION)],
        vec![(":code", attr::s("VCH-THEIRS")), (":one", attr::n(1))],
    );
    assert_eq!(
        fx.issue(other, "VCH-MINE").await.unwrap().as_str(),
        "VCH-THEIRS"
    );
    assert_eq!(
        fx.hook.take(),
        ["GetItem", "TransactWriteItems"],
        "no re-read"
    );
    let mine = fx
        .raw
        .get_item()
        .table_name(&fx.names.vouchers)
        .key(crate::tables::attrs::voucher::CODE, attr::s("VCH-MINE"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(mine.item, None, "the cancelled transaction put no voucher");
    assert!(
        !fx.published(other)
            .await
            .iter()
            .any(|(t, _)| t == "voucher.issued")
    );
}
