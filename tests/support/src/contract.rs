//! The store contract: what every `OrderStore` implementation must do. Each implementation's
//! test file invokes `store_contract_tests!(async_factory)`, which expands to one test per
//! case below, so a failure names the case and the implementation.

use chrono::{Duration, Utc};
use orders::clock::{Clock, SystemClock};
use orders_domain::access::Caller;
use orders_domain::idempotency::{IdempotencyKey, StoredResponse};
use orders_domain::store::StockLevel;
use orders_domain::store::{
    CreateOrder, CreateOutcome, ListCursor, ListOrders, NewIdempotencyRecord, NewOrder, OrderStore,
    StoreError, VoucherRefusal,
};
use orders_domain::{
    Cents, CustomerId, EventId, OrderId, OrderItem, OrderStatus, OutboxEvent, PaymentMethod,
    ProductId, SagaInput, SagaItem, VoucherCode,
};
use std::sync::Arc;

/// How many orders `customer` has (at most 100).
async fn count_orders(store: &Arc<dyn OrderStore>, customer: &str) -> usize {
    let page = store.list_orders(&page_of(customer, 100, None)).await;
    page.expect("list orders").orders.len()
}

/// The query for one page of `customer`'s orders.
pub fn page_of(customer: &str, limit: u32, after: Option<ListCursor>) -> ListOrders {
    ListOrders {
        customer: CustomerId::parse(customer).unwrap(),
        limit,
        after,
    }
}

pub fn new_order(customer: &str, cents: i64) -> CreateOrder {
    let now = SystemClock.now();
    let id = OrderId::new();
    let customer_id = CustomerId::parse(customer).unwrap();
    let items = vec![OrderItem {
        product_id: ProductId::parse("laptop").unwrap(),
        quantity: 1,
        price: Cents(cents),
    }];
    let event = OutboxEvent::order_created(
        EventId::new(),
        now,
        SagaInput {
            order_id: id,
            customer_id: customer_id.clone(),
            items: vec![SagaItem {
                product_id: ProductId::parse("laptop").unwrap(),
                quantity: 1,
            }],
            total_cents: Cents(cents),
            payment_method: PaymentMethod::DEFAULT.into(),
            voucher_code: None,
        },
    );
    CreateOrder {
        order: NewOrder {
            id,
            customer_id,
            items,
            subtotal: Cents(cents),
            discount: Cents::ZERO,
            total: Cents(cents),
            payment_method: PaymentMethod::default(),
            voucher_code: None,
            created_at: now,
        },
        event,
        idempotency: None,
        now,
    }
}

pub fn with_key(mut cmd: CreateOrder, key: &str, fingerprint: &str) -> CreateOrder {
    cmd.idempotency = Some(NewIdempotencyRecord {
        key: IdempotencyKey::parse(key).unwrap(),
        fingerprint: fingerprint.into(),
        response: StoredResponse {
            status: 201,
            location: Some(format!("/orders/{}", cmd.order.id)),
            body: format!(r#"{{"orderId":"{}"}}"#, cmd.order.id),
        },
        expires_at: cmd.now + Duration::minutes(10),
    });
    cmd
}

pub async fn create_then_read(store: Arc<dyn OrderStore>) {
    let cmd = new_order("c-read", 129_999);
    let id = cmd.order.id;
    assert_eq!(
        store.create_order(cmd.clone()).await,
        Ok(CreateOutcome::Created)
    );
    let o = store.get_order(id).await.unwrap().expect("stored");
    assert_eq!(o.status, OrderStatus::Pending);
    assert_eq!(o.version, 1);
    assert_eq!(o.order.total, Cents(129_999));
    assert_eq!(o.order, cmd.order, "the order reads back as it was created");
    assert!(store.get_order(OrderId::new()).await.unwrap().is_none());
}

pub async fn same_key_replays_without_a_second_order(store: Arc<dyn OrderStore>) {
    let first = with_key(new_order("c-replay", 100), "key-replay", "fp1");
    let response = first.idempotency.clone().unwrap().response;
    assert_eq!(store.create_order(first).await, Ok(CreateOutcome::Created));
    let again = with_key(new_order("c-replay", 100), "key-replay", "fp1");
    assert_eq!(
        store.create_order(again).await.unwrap(),
        CreateOutcome::Replayed(response.clone())
    );
    assert_eq!(count_orders(&store, "c-replay").await, 1);
}

/// The same key from two callers is two keys (`Caller::scope`): two orders, each replaying
/// only its own response; the anonymous scope (identity off) is a third, the raw key as stored
/// before identity existed.
pub async fn keys_are_scoped_to_their_caller(store: Arc<dyn OrderStore>) {
    let caller = |id: &str| Caller::Customer {
        id: CustomerId::parse(id).unwrap(),
        admin: false,
    };
    let scoped = |cmd: CreateOrder, who: &Caller| {
        let mut cmd = with_key(cmd, "key-shared", "fp-same");
        let record = cmd.idempotency.as_mut().unwrap();
        record.key = who.scope(record.key.clone());
        cmd
    };
    let (alice, bob) = (caller("c-scope-a"), caller("c-scope-b"));
    let a = scoped(new_order("c-scope-a", 100), &alice);
    let a_response = a.idempotency.clone().unwrap().response;
    assert_eq!(store.create_order(a).await, Ok(CreateOutcome::Created));
    let b = scoped(new_order("c-scope-b", 100), &bob);
    assert_eq!(store.create_order(b).await, Ok(CreateOutcome::Created));
    let anonymous = scoped(new_order("c-scope-anon", 100), &Caller::Anonymous);
    assert_eq!(
        store.create_order(anonymous).await,
        Ok(CreateOutcome::Created)
    );
    assert_eq!(
        store
            .create_order(scoped(new_order("c-scope-a", 100), &alice))
            .await,
        Ok(CreateOutcome::Replayed(a_response))
    );
    for customer in ["c-scope-a", "c-scope-b", "c-scope-anon"] {
        assert_eq!(count_orders(&store, customer).await, 1, "{customer}");
    }
}

pub async fn same_key_other_payload_is_refused(store: Arc<dyn OrderStore>) {
    store
        .create_order(with_key(
            new_order("c-mismatch", 100),
            "key-mismatch",
            "fp1",
        ))
        .await
        .unwrap();
    let other = with_key(new_order("c-mismatch", 200), "key-mismatch", "fp2");
    assert_eq!(
        store.create_order(other).await,
        Ok(CreateOutcome::KeyReused)
    );
    assert_eq!(count_orders(&store, "c-mismatch").await, 1);
}

pub async fn expired_record_is_absent(store: Arc<dyn OrderStore>) {
    let first = with_key(new_order("c-expiry", 100), "key-expiry", "fp1");
    let expires = first.idempotency.as_ref().unwrap().expires_at;
    store.create_order(first).await.unwrap();
    // Just before its expiry the record still holds the key.
    let mut before = with_key(new_order("c-expiry", 200), "key-expiry", "fp2");
    before.now = expires - Duration::seconds(1);
    assert_eq!(
        store.create_order(before).await,
        Ok(CreateOutcome::KeyReused)
    );
    // Past the TTL the key is free again, deleted or not: even another payload creates a new
    // order.
    let mut later = with_key(new_order("c-expiry", 300), "key-expiry", "fp2");
    later.now = expires + Duration::seconds(1);
    later.idempotency.as_mut().unwrap().expires_at = later.now + Duration::minutes(10);
    assert_eq!(store.create_order(later).await, Ok(CreateOutcome::Created));
    assert_eq!(count_orders(&store, "c-expiry").await, 2);
}

pub async fn unknown_voucher_is_refused_and_nothing_is_stored(store: Arc<dyn OrderStore>) {
    let mut cmd = with_key(new_order("c-voucher", 10_000), "key-voucher", "fp1");
    cmd.order.voucher_code = Some(VoucherCode::parse("NOPE").unwrap());
    let id = cmd.order.id;
    let err = store.create_order(cmd).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::VoucherUnavailable {
            code: "NOPE".into(),
            reason: VoucherRefusal::Unknown
        }
    );
    assert!(store.get_order(id).await.unwrap().is_none());
    // A refused order stores no record: the key is still free for another body.
    let retry = with_key(new_order("c-voucher", 10_000), "key-voucher", "fp2");
    assert_eq!(
        store.create_order(retry).await.unwrap(),
        CreateOutcome::Created,
        "a refused order stores no record"
    );
}

pub async fn concurrent_same_key_creates_one_order(store: Arc<dyn OrderStore>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_order(with_key(new_order("c-race", 100), "key-race", "fp"))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    let mut replayed = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            CreateOutcome::Created => created += 1,
            CreateOutcome::Replayed(r) => replayed.push(r),
            CreateOutcome::KeyReused => panic!("same fingerprint must not be refused"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(replayed.len(), 49);
    assert!(
        replayed.windows(2).all(|w| w[0] == w[1]),
        "every replay is the first response"
    );
    assert_eq!(count_orders(&store, "c-race").await, 1);
}

pub async fn lists_newest_first_with_a_cursor(store: Arc<dyn OrderStore>) {
    let customer = CustomerId::parse("c-list").unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut cmd = new_order("c-list", 100 + i);
        // Two orders share a timestamp: the cursor must still neither skip nor repeat.
        cmd.order.created_at = Utc::now() + Duration::milliseconds((i / 2) * 10);
        ids.push(cmd.order.id);
        store.create_order(cmd).await.unwrap();
    }
    store
        .create_order(new_order("someone-else", 1))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_orders(&page_of(customer.as_str(), 2, cursor))
            .await
            .unwrap();
        assert!(page.orders.len() <= 2);
        seen.extend(page.orders.iter().map(|o| (o.order.created_at, o.order.id)));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first: {seen:?}"
    );
    let mut got: Vec<_> = seen.iter().map(|(_, id)| *id).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
}

pub async fn inventory_and_vouchers(store: Arc<dyn OrderStore>) {
    let laptop = ProductId::parse("laptop").unwrap();
    assert!(
        store.get_inventory(&laptop).await.unwrap().unwrap() > 1000,
        "catalogue is seeded"
    );
    assert_eq!(
        store
            .get_inventory(&ProductId::parse("sold-out").unwrap())
            .await
            .unwrap(),
        Some(0)
    );
    let p = ProductId::parse("contract-product").unwrap();
    assert_eq!(store.get_inventory(&p).await.unwrap(), None);
    for available in [7, 0] {
        let level = StockLevel {
            product: p.clone(),
            available,
            at: Utc::now(),
        };
        store.set_inventory(level).await.unwrap();
        assert_eq!(store.get_inventory(&p).await.unwrap(), Some(available));
    }
    assert!(
        store
            .list_vouchers(&CustomerId::parse("nobody").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    store.ping().await.unwrap();
}

#[macro_export]
macro_rules! store_contract_tests {
    ($factory:expr) => {
        $crate::store_contract_tests!(@cases $factory;
            create_then_read, same_key_replays_without_a_second_order, keys_are_scoped_to_their_caller,
            same_key_other_payload_is_refused,
            expired_record_is_absent, unknown_voucher_is_refused_and_nothing_is_stored,
            concurrent_same_key_creates_one_order, lists_newest_first_with_a_cursor, inventory_and_vouchers);
    };
    (@cases $factory:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $factory().await;
                $crate::contract::$case(store).await;
            }
        )*
    };
}
