//! The saga store contract suite against the SQLite store. Its fixture is also the store the
//! step handler tests (`saga_steps`) run on, so both look at the data the same way.

use orders_domain::store::StockLevel;
use orders_test_support as common;
use orders_test_support::saga_contract;

use async_trait::async_trait;
use chrono::Utc;
use common::contract::new_order;
use orders_domain::lifecycle::{PaymentStatus, Shipment};
use orders_domain::store::OrderStore;
use orders_domain::time::format_millis as format_ts;
use orders_domain::time::parse_ts;
use orders_domain::{Cents, PaymentId};
use orders_domain::{OrderId, OrderStatus, ProductId, VoucherCode};
use orders_sqlite::SqliteStore;
use orders_workflow::steps::Step;
use rusqlite::OptionalExtension;
use saga_contract::{PaymentView, SagaFixture, StepView, VoucherView};
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

    /// The payload of every outbox row of the order, in the order they were written.
    pub(crate) fn outbox_payloads(&self, order: orders_domain::OrderId) -> Vec<String> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT payload FROM outbox WHERE order_id = ?1 ORDER BY seq")
            .unwrap();
        st.query_map([order.to_string()], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
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

    async fn payment(&self, id: OrderId) -> Option<PaymentView> {
        self.conn()
            .query_row(
                "SELECT payment_id, status, amount_cents, task_token FROM payments WHERE order_id = ?1",
                [id.to_string()],
                |r| {
                    Ok(PaymentView {
                        payment_id: PaymentId::from_trusted(r.get(0)?),
                        status: r.get::<_, String>(1)?.parse().unwrap(),
                        amount: Cents(r.get(2)?),
                        token: r.get(3)?,
                    })
                },
            )
            .optional()
            .unwrap()
    }

    async fn settle_payment(&self, id: OrderId, status: PaymentStatus) {
        let changed = self
            .conn()
            .execute(
                "UPDATE payments SET status = ?2 WHERE order_id = ?1 AND status = 'REQUESTED'",
                [id.to_string(), status.as_str().to_owned()],
            )
            .expect("settle payment");
        assert_eq!(changed, 1, "a REQUESTED payment to settle");
    }

    async fn request_cancel(&self, id: OrderId, reason: Option<&str>) {
        let changed = self
            .conn()
            .execute(
                "UPDATE orders SET cancel_requested_at = ?2, cancel_reason = ?3, version = version + 1
                 WHERE order_id = ?1",
                rusqlite::params![id.to_string(), format_ts(Utc::now()), reason],
            )
            .expect("request cancel");
        assert_eq!(changed, 1, "an order to cancel");
    }

    async fn shipment(&self, id: OrderId) -> Option<Shipment> {
        self.conn()
            .query_row(
                "SELECT tracking_number, shipped_at FROM shipments WHERE order_id = ?1",
                [id.to_string()],
                |r| {
                    Ok(Shipment {
                        tracking_number: r.get(0)?,
                        shipped_at: parse_ts(&r.get::<_, String>(1)?).unwrap(),
                    })
                },
            )
            .optional()
            .unwrap()
    }
}

orders_test_support::saga_contract_tests!(sqlite);

/// The lifecycle and events contracts on the same store: the API's side and the steps' side
/// of one file.
mod lifecycle {
    use super::{Sqlite, sqlite};
    use async_trait::async_trait;
    use orders_domain::OrderId;
    use orders_domain::event::{OutboxMessage, PublicEvent, SignalEvent};
    use orders_domain::store::OrderStore;
    use orders_test_support::lifecycle_contract::{EventsFixture, LifecycleFixture};
    use orders_test_support::saga_contract::{Driver, SagaFixture};
    use std::sync::Arc;

    #[async_trait]
    impl LifecycleFixture for Sqlite {
        fn orders(&self) -> Arc<dyn OrderStore> {
            self.store.clone()
        }

        fn steps(&self) -> Driver {
            SagaFixture::store(self)
        }

        async fn signals(&self, order: OrderId) -> Vec<SignalEvent> {
            let payloads = self.outbox_payloads(order);
            payloads
                .iter()
                .filter_map(
                    |p| match OutboxMessage::decode(p.as_bytes()).expect("decodes") {
                        OutboxMessage::Signal(s) => Some(s),
                        OutboxMessage::OrderCreated(_) | OutboxMessage::Published(_) => None,
                    },
                )
                .collect()
        }
    }

    orders_test_support::lifecycle_contract_tests!(sqlite);

    /// The public events: the outbox rows of the order in the order they were written.
    #[async_trait]
    impl EventsFixture for Sqlite {
        async fn events(&self, order: OrderId) -> Vec<PublicEvent> {
            let payloads = self.outbox_payloads(order);
            payloads
                .iter()
                .filter(|p| {
                    let row = OutboxMessage::decode(p.as_bytes()).expect("decodes");
                    !matches!(row, OutboxMessage::Signal(_))
                })
                .map(|p| PublicEvent::decode(p.as_bytes()).expect("a public event"))
                .collect()
        }
    }

    orders_test_support::events_contract_tests!(sqlite);
}
