//! The DynamoDB store beyond the shared contract, on moto server: how many requests a POST
//! costs (counted by an SDK interceptor, through the real router), what a refused voucher
//! leaves behind (nothing), that a replay is the first response byte for byte, and the items
//! a created order writes, attribute by attribute. (Requests reach the emulator one at a time:
//! `support_dynamodb` explains why.)

use orders_test_support as common;
use orders_test_support::dynamodb as support_dynamodb;
use orders_test_support::requests;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::contract::{new_order, with_key};
use orders::clock::SystemClock;
use orders::http::{ApiSettings, AppState, router};
use orders_aws::TableNames;
use orders_aws::dynamodb::DynamoStore;
use orders_aws::dynamodb::attr::{Item, get_n, get_s};
use orders_aws::moto::{self, MotoSession};
use orders_aws::tables::attrs::{idempotency as ia, order as oa, outbox as xa, voucher as va};
use orders_domain::VoucherCode;
use orders_domain::store::{CreateOutcome, OrderStore, StoreError, VoucherRefusal};
use requests::Requests;
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

struct Env {
    store: Arc<DynamoStore>,
    router: Router,
    requests: Requests,
    /// An uncounted client, for looking at the tables directly.
    raw: Client,
    names: TableNames,
    _moto: MotoSession,
}

async fn env() -> Env {
    let moto = moto::session().await;
    let requests = Requests::default();
    let counter = requests.clone();
    let stack = support_dynamodb::stack(&moto, "store-", |c| c.interceptor(counter)).await;
    requests.take();
    let router = router(AppState {
        store: stack.store.clone(),
        clock: Arc::new(SystemClock),
        settings: Arc::new(ApiSettings::default()),
    });
    Env {
        store: stack.store,
        router,
        requests,
        raw: stack.raw,
        names: stack.names,
        _moto: moto,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Env {
    async fn post(&self, key: &str, body: &str) -> Reply {
        let req = Request::post("/orders")
            .header("content-type", "application/json")
            .header("x-idempotency-key", key)
            .body(Body::from(body.to_owned()))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn count(&self, table: &str) -> i32 {
        self.raw
            .scan()
            .table_name(table)
            .select(Select::Count)
            .send()
            .await
            .unwrap()
            .count
    }

    async fn only_item(&self, table: &str) -> Item {
        let mut items = self
            .raw
            .scan()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        assert_eq!(items.len(), 1, "{table}: {items:?}");
        items.pop().unwrap()
    }

    async fn put_voucher(&self, code: &str, customer: &str, status: &str) {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let earned_by = orders_domain::OrderId::new().to_string();
        self.raw
            .put_item()
            .table_name(&self.names.vouchers)
            .set_item(Some(HashMap::from([
                (va::CODE.to_owned(), s(code)),
                (va::CUSTOMER.to_owned(), s(customer)),
                (
                    va::CREATED_KEY.to_owned(),
                    s(&format!("2026-01-01T00:00:00.000Z#{code}")),
                ),
                (va::DISCOUNT.to_owned(), AttributeValue::N("500".into())),
                (va::STATUS.to_owned(), s(status)),
                (va::EARNED_BY.to_owned(), s(&earned_by)),
                (va::CREATED_AT.to_owned(), s("2026-01-01T00:00:00.000Z")),
                (va::UPDATED_AT.to_owned(), s("2026-01-01T00:00:00.000Z")),
            ])))
            .send()
            .await
            .unwrap();
    }

    async fn voucher(&self, code: &str) -> Item {
        self.raw
            .get_item()
            .table_name(&self.names.vouchers)
            .key(va::CODE, AttributeValue::S(code.to_owned()))
            .send()
            .await
            .unwrap()
            .item
            .expect("voucher exists")
    }
}

const ONE_TRANSACTION: [&str; 1] = ["TransactWriteItems"];

#[tokio::test]
async fn every_post_is_one_request_and_a_replay_is_the_first_response_byte_for_byte() {
    let env = env().await;
    let first = env.post("key-count", common::LAPTOP).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(env.requests.take(), ONE_TRANSACTION, "new order");

    // Same payload with other key order and spacing: the same request.
    let same = r#"{ "items":[{"price":1299.99,"quantity":1,"productId":"laptop"}], "customerId":"customer-123" }"#;
    let replay = env.post("key-count", same).await;
    assert_eq!(env.requests.take(), ONE_TRANSACTION, "replay");
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, first.body, "the stored body, byte for byte");
    assert_eq!(replay.headers["location"], first.headers["location"]);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert!(first.headers.get("idempotent-replayed").is_none());

    let other = common::LAPTOP.replace("1299.99", "1.00");
    let reused = env.post("key-count", &other).await;
    assert_eq!(env.requests.take(), ONE_TRANSACTION, "key reuse");
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(env.count(&env.names.orders).await, 1);
    assert_eq!(env.count(&env.names.outbox).await, 1);
    assert_eq!(env.count(&env.names.idempotency).await, 1);
}

#[tokio::test]
async fn a_refused_voucher_stores_nothing_and_says_why() {
    let env = env().await;
    env.put_voucher("V-OTHER", "someone-else", "READY").await;
    env.put_voucher("V-USED", "c-voucher", "USED").await;
    let cases = [
        ("V-NONE", VoucherRefusal::Unknown),
        ("V-OTHER", VoucherRefusal::OtherCustomer),
        ("V-USED", VoucherRefusal::NotReady),
    ];
    for (code, reason) in cases {
        let mut cmd = with_key(new_order("c-voucher", 10_000), code, "fp");
        cmd.order.voucher_code = Some(VoucherCode::parse(code).unwrap());
        assert_eq!(
            env.store.create_order(cmd).await.unwrap_err(),
            StoreError::VoucherUnavailable {
                code: code.into(),
                reason
            },
        );
        assert_eq!(env.requests.take(), ONE_TRANSACTION, "{code}");
    }
    let body = r#"{"customerId":"c-voucher","voucherCode":"V-USED","items":[{"productId":"laptop","quantity":1,"price":100}]}"#;
    let refused = env.post("key-http", body).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(env.requests.take(), ONE_TRANSACTION);

    assert_eq!(env.count(&env.names.orders).await, 0);
    assert_eq!(env.count(&env.names.outbox).await, 0);
    assert_eq!(env.count(&env.names.idempotency).await, 0);
    let other = env.voucher("V-OTHER").await;
    assert_eq!(get_s(&other, va::STATUS).unwrap(), "READY");
    assert!(!other.contains_key(va::REDEEMED_BY));
}

#[tokio::test]
async fn a_created_order_writes_the_items_of_the_table_contract() {
    let env = env().await;
    env.put_voucher("V-MINE", "c-items", "READY").await;
    let mut cmd = with_key(new_order("c-items", 10_000), "key-items", "fp");
    cmd.order.voucher_code = Some(VoucherCode::parse("V-MINE").unwrap());
    let id = cmd.order.id.to_string();
    let created = orders_domain::time::format_millis(cmd.order.created_at);
    assert_eq!(
        env.store.create_order(cmd.clone()).await.unwrap(),
        CreateOutcome::Created
    );

    let order = env.only_item(&env.names.orders).await;
    assert_eq!(get_s(&order, oa::STATUS).unwrap(), "PENDING");
    assert_eq!(get_n(&order, oa::VERSION).unwrap(), 1);
    assert_eq!(order[oa::STEPS], AttributeValue::M(HashMap::new()));
    assert_eq!(
        get_s(&order, oa::CREATED_KEY).unwrap(),
        format!("{created}#{id}")
    );
    assert_eq!(get_s(&order, oa::VOUCHER_CODE).unwrap(), "V-MINE");
    assert_eq!(get_n(&order, oa::TOTAL).unwrap(), 10_000);

    let outbox = env.only_item(&env.names.outbox).await;
    assert_eq!(get_s(&outbox, xa::ID).unwrap(), cmd.event.id.to_string());
    assert_eq!(get_s(&outbox, xa::ORDER).unwrap(), id);
    assert_eq!(
        get_s(&outbox, xa::EVENT).unwrap(),
        serde_json::to_string(&cmd.event).unwrap(),
        "the CloudEvent exactly as serialized"
    );

    let idem = env.only_item(&env.names.idempotency).await;
    let expires = cmd.idempotency.as_ref().unwrap().expires_at;
    assert_eq!(
        get_s(&idem, ia::EXPIRES_AT).unwrap(),
        orders_domain::time::format_millis(expires)
    );
    let ms = expires.timestamp_millis();
    assert_eq!(
        get_n(&idem, ia::EXPIRATION).unwrap(),
        (ms + 999).div_euclid(1000),
        "TTL seconds rounded up"
    );

    let voucher = env.voucher("V-MINE").await;
    assert_eq!(get_s(&voucher, va::STATUS).unwrap(), "USED");
    assert_eq!(get_s(&voucher, va::REDEEMED_BY).unwrap(), id);

    // The same request again finds its voucher USED: the key decides, so it is a replay.
    let mut again = with_key(new_order("c-items", 10_000), "key-items", "fp");
    again.order.voucher_code = Some(VoucherCode::parse("V-MINE").unwrap());
    assert_eq!(
        env.store.create_order(again).await.unwrap(),
        CreateOutcome::Replayed(cmd.idempotency.unwrap().response)
    );
    assert_eq!(env.count(&env.names.orders).await, 1);

    let read = env.store.get_order(cmd.order.id).await.unwrap().unwrap();
    assert_eq!(
        read.order.voucher_code.as_ref().map(|c| c.as_str()),
        Some("V-MINE")
    );
    assert!(read.steps.is_empty() && read.voucher_issued.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_with_one_key_create_one_order_and_all_get_its_response() {
    let env = Arc::new(env().await);
    let posts: Vec<_> = (0..8)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move { env.post("key-race", common::LAPTOP).await })
        })
        .collect();
    let mut replies = Vec::new();
    for p in posts {
        replies.push(p.await.unwrap());
    }
    assert!(replies.iter().all(|r| r.status == StatusCode::CREATED));
    let bodies: Vec<_> = replies
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every reply is the first response: {bodies:#?}"
    );
    let fresh = replies
        .iter()
        .filter(|r| r.headers.get("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "exactly one request created the order");
    assert_eq!(env.count(&env.names.orders).await, 1);
    assert_eq!(env.count(&env.names.outbox).await, 1);
}
