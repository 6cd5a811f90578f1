//! The cancellation decoding, case by case, on hand-built `CancellationReasons`: the
//! priority between a live key, our own committed order, contention and a refused voucher.

use super::*;
use orders_domain::idempotency::{IdempotencyKey, StoredResponse};
use orders_domain::store::{NewIdempotencyRecord, NewOrder};
use orders_domain::{
    Cents, CustomerId, EventId, OrderId, OutboxEvent, PaymentMethod, SagaInput, VoucherCode,
};

fn cmd() -> CreateOrder {
    let now = chrono::Utc::now();
    let id = OrderId::new();
    let customer = CustomerId::parse("c1").unwrap();
    let event = OutboxEvent::order_created(
        EventId::new(),
        now,
        SagaInput {
            order_id: id,
            customer_id: customer.clone(),
            items: vec![],
            total_cents: Cents(100),
            payment_method: PaymentMethod::DEFAULT.into(),
            voucher_code: None,
        },
    );
    CreateOrder {
        order: NewOrder {
            id,
            customer_id: customer,
            items: vec![],
            subtotal: Cents(100),
            discount: Cents::ZERO,
            total: Cents(100),
            payment_method: PaymentMethod::default(),
            voucher_code: Some(VoucherCode::parse("V1").unwrap()),
            created_at: now,
        },
        event,
        idempotency: Some(NewIdempotencyRecord {
            key: IdempotencyKey::parse("k").unwrap(),
            fingerprint: "fp".into(),
            response: StoredResponse {
                status: 201,
                location: None,
                body: "{}".into(),
            },
            expires_at: now + chrono::Duration::minutes(10),
        }),
        now,
    }
}

const LAYOUT: Layout = Layout {
    idempotency: Some(2),
    voucher: Some(3),
};

fn reason(code: &str, item: Option<Item>) -> CancellationReason {
    CancellationReason::builder()
        .code(code)
        .set_item(item)
        .build()
}

/// What the first request with the key answered (it named another order than `cmd()`'s).
/// What `decide` made of the reasons, when it came to an outcome.
fn outcome(c: &CreateOrder, reasons: &[CancellationReason]) -> Option<CreateOutcome> {
    match decide(c, &LAYOUT, reasons) {
        Decision::Outcome(outcome) => Some(outcome),
        _ => None,
    }
}

/// The four items' reasons with only the one at `position` failed.
fn only(position: usize, failed: CancellationReason) -> Vec<CancellationReason> {
    let mut reasons = vec![reason("None", None); 4];
    reasons[position] = failed;
    reasons
}

fn first_response() -> StoredResponse {
    StoredResponse {
        status: 201,
        location: Some("/orders/first".into()),
        body: r#"{"orderId":"first"}"#.into(),
    }
}

fn stored(fingerprint: &str) -> Item {
    let mut rec = cmd().idempotency.unwrap();
    rec.fingerprint = fingerprint.into();
    rec.response = first_response();
    super::idempotency_item(&rec)
}

fn voucher(customer: &str) -> Item {
    Item::from([(va::CUSTOMER.to_owned(), s(customer))])
}

#[test]
fn a_live_key_wins_over_a_refused_voucher() {
    let c = cmd();
    let reasons = [
        reason("None", None),
        reason("None", None),
        reason(CONDITION_FAILED, Some(stored("fp"))),
        reason(CONDITION_FAILED, Some(voucher("c1"))),
    ];
    let expected = first_response();
    assert_eq!(
        outcome(&c, &reasons),
        Some(CreateOutcome::Replayed(expected))
    );
    let reasons = only(2, reason(CONDITION_FAILED, Some(stored("other"))));
    assert_eq!(outcome(&c, &reasons), Some(CreateOutcome::KeyReused));
}

#[test]
fn a_voucher_refusal_is_read_from_the_old_item() {
    let c = cmd();
    let with = |old: Option<Item>| {
        let reasons = only(3, reason(CONDITION_FAILED, old));
        match decide(&c, &LAYOUT, &reasons) {
            Decision::Fail(StoreError::VoucherUnavailable { reason, .. }) => reason,
            _ => panic!("expected a voucher refusal"),
        }
    };
    assert_eq!(with(None), VoucherRefusal::Unknown);
    assert_eq!(with(Some(voucher("c2"))), VoucherRefusal::OtherCustomer);
    assert_eq!(with(Some(voucher("c1"))), VoucherRefusal::NotReady);
}

#[test]
fn contention_is_retried_before_a_voucher_is_refused() {
    let c = cmd();
    let reasons = [
        reason("None", None),
        reason("None", None),
        reason("TransactionConflict", None),
        reason(CONDITION_FAILED, Some(voucher("c1"))),
    ];
    assert!(matches!(decide(&c, &LAYOUT, &reasons), Decision::Retry(_)));
    let reasons = [reason("ThrottlingError", None), reason("None", None)];
    assert!(matches!(decide(&c, &LAYOUT, &reasons), Decision::Retry(_)));
}

#[test]
fn our_own_committed_attempt_counts_as_created() {
    let c = cmd();
    let ours = super::idempotency_item(c.idempotency.as_ref().unwrap());
    let reasons = [
        reason(
            CONDITION_FAILED,
            Some(super::new_order_item(&c.order).unwrap()),
        ),
        reason(CONDITION_FAILED, None),
        reason(CONDITION_FAILED, Some(ours)),
        reason("None", None),
    ];
    assert_eq!(outcome(&c, &reasons), Some(CreateOutcome::Created));
}

#[test]
fn the_order_already_written_by_this_request_counts_as_created() {
    let c = cmd();
    let ours = super::new_order_item(&c.order).unwrap();
    let reasons = [reason(CONDITION_FAILED, Some(ours)), reason("None", None)];
    assert_eq!(outcome(&c, &reasons), Some(CreateOutcome::Created));
    let mut other = cmd();
    other.order.id = c.order.id;
    other.order.created_at = c.order.created_at - chrono::Duration::seconds(1);
    let theirs = super::new_order_item(&other.order).unwrap();
    let reasons = [reason(CONDITION_FAILED, Some(theirs))];
    assert!(matches!(
        decide(&c, &LAYOUT, &reasons),
        Decision::Fail(StoreError::Backend(_))
    ));
}

#[test]
fn anything_else_is_a_backend_failure_naming_the_reasons() {
    let c = cmd();
    let reasons = [reason("None", None), reason("ValidationError", None)];
    assert!(matches!(
        decide(&c, &LAYOUT, &reasons),
        Decision::Fail(StoreError::Backend(m)) if m.contains("#1 ValidationError")
    ));
}
