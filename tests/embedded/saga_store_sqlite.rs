//! The saga store contract suite against the SQLite store. Its fixture is also the store the
//! step handler tests (`saga_steps`) run on, so both look at the data the same way.

use orders_domain::store::StockLevel;
use orders_test_support as common;
use orders_test_support::saga_contract;

use async_trait::async_trait;
use chrono::Utc;
use common::contract::new_order;
use orders_domain::store::OrderStore;
use orders_domain::time::format_millis as format_ts;
use orders_domain::{OrderId, OrderStatus, ProductId, VoucherCode};
use orders_sqlite::SqliteStore;
use orders_workflow::steps::Step;
use rusqlite::OptionalExtension;
use saga_contract::{SagaFixture, StepView, VoucherView};
use std::sync::Arc;
use tempfile::TempDir;

pub(crate) struct Sqlite {
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) dir: TempDir,
}

impl Sqlite {
    pub(crate) fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("orders.db")).expect("open db")
    }
}

pub(crate) async fn sqlite() -> Sqlite {
    let (store, dir) = common::temp_store();
    Sqlite { store, dir }
}

#[async_trait]
impl SagaFixture for Sqlite {
    fn store(&self) -> saga_contract::Driver {
        saga_contract::Driver::SqliteJob(self.store.clone())
    }

    async fn new_order(&self, customer: &str) -> OrderId {
        let cmd = new_order(customer, 12_000);
        let id = cmd.order.id;
        self.store.create_order(cmd).await.expect("create order");
        id
    }

    async fn set_stock(&self, product: &str, available: i64) {
        let product = ProductId::parse(product).unwrap();
        self.store
            .set_inventory(StockLevel {
                product,
                available,
                at: Utc::now(),
            })
            .await
            .expect("set stock");
    }

    async fn stock(&self, product: &str) -> Option<i64> {
        let p = ProductId::parse(product).unwrap();
        self.store.get_inventory(&p).await.expect("read stock")
    }

    async fn order(&self, id: OrderId) -> (OrderStatus, i64, Option<String>) {
        let o = self.store.get_order(id).await.unwrap().expect("order");
        (o.status, o.version, o.failure_reason)
    }

    async fn step(&self, id: OrderId, step: Step) -> Option<StepView> {
        let o = self.store.get_order(id).await.unwrap().expect("order");
        o.steps
            .into_iter()
            .find(|s| s.step == step.name())
            .map(|s| StepView {
                status: s.status,
                attempts: i64::from(s.attempts),
                error: s.error,
            })
    }

    async fn voucher(&self, code: &VoucherCode) -> Option<VoucherView> {
        self.conn()
            .query_row(
                "SELECT status, redeemed_by_order FROM vouchers WHERE code = ?1",
                [code.as_str()],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()
            .unwrap()
            .map(|(status, redeemed_by)| VoucherView {
                status: status.parse().unwrap(),
                redeemed_by,
            })
    }

    async fn redeemed_voucher(&self, code: &VoucherCode, customer: &str, by: OrderId) {
        let now = format_ts(Utc::now());
        self.conn()
            .execute(
                "INSERT INTO vouchers (code, customer_id, discount_cents, status, issued_for_order, redeemed_by_order, created_at, updated_at)
                 VALUES (?1, ?2, 500, 'USED', ?3, ?4, ?5, ?5)",
                rusqlite::params![code.as_str(), customer, OrderId::new().to_string(), by.to_string(), now],
            )
            .expect("insert voucher");
    }
}

orders_test_support::saga_contract_tests!(sqlite);
