//! Each saga step handler against the SQLite `StepStore`, invoked twice with the same input
//! (as a redelivery or a crash-resume would): the effect must happen once.

use orders_test_support as common;

use common::contract::new_order;
use common::{count_rows, temp_store};
use orders_domain::store::OrderStore;
use orders_domain::{
    Cents, CustomerId, OrderId, OrderStatus, ProductId, VoucherCode, VoucherStatus,
};
use orders_sqlite::SqliteStore;
use orders_workflow::steps::{StepError, StepSettings};
use serde_json::{Value, json};
use std::sync::Arc;
use tempfile::TempDir;

struct Fx {
    store: Arc<SqliteStore>,
    dir: TempDir,
}

/// One stored order and its saga input (as the outbox event carries it).
struct Order {
    id: OrderId,
    input: Value,
}

impl Fx {
    fn new() -> Fx {
        let (store, dir) = temp_store();
        Fx { store, dir }
    }

    async fn order(&self, cents: i64) -> Order {
        let cmd = new_order("cust-steps", cents);
        let order = Order {
            id: cmd.order.id,
            input: serde_json::to_value(&cmd.event.data).unwrap(),
        };
        self.store.create_order(cmd).await.expect("create order");
        order
    }

    /// The step as the local executor runs it: one writer job (`SqliteStore::run_step`).
    async fn invoke(&self, step: &str, input: &Value) -> Result<Value, StepError> {
        self.store
            .run_step(
                StepSettings::default(),
                json!({"step": step, "input": input}),
            )
            .await
            .expect("the step's writer job")
    }

    async fn ok(&self, step: &str, o: &Order) -> Value {
        self.invoke(step, &o.input)
            .await
            .unwrap_or_else(|e| panic!("{step}: {}: {e}", e.name()))
    }

    /// Runs the step twice; both succeed and both attempts are in the step history.
    async fn twice(&self, step: &str, o: &Order) -> (Value, Value) {
        let first = self.ok(step, o).await;
        let second = self.ok(step, o).await;
        assert_eq!(self.attempts(step, o), 2, "{step} attempts");
        assert_eq!(
            self.text(
                "SELECT status FROM saga_steps WHERE order_id = ?1 AND step = ?2",
                o,
                step
            ),
            "SUCCEEDED"
        );
        (first, second)
    }

    fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("orders.db")).unwrap()
    }

    fn count(&self, sql: &str, o: &Order) -> i64 {
        self.conn()
            .query_row(sql, [o.id.to_string()], |r| r.get(0))
            .unwrap()
    }

    fn text(&self, sql: &str, o: &Order, arg: &str) -> String {
        self.conn()
            .query_row(sql, [o.id.to_string(), arg.to_owned()], |r| r.get(0))
            .unwrap()
    }

    fn attempts(&self, step: &str, o: &Order) -> i64 {
        self.conn()
            .query_row(
                "SELECT attempts FROM saga_steps WHERE order_id = ?1 AND step = ?2",
                [o.id.to_string(), step.to_owned()],
                |r| r.get(0),
            )
            .unwrap()
    }

    async fn status(&self, o: &Order) -> (OrderStatus, i64, Option<String>) {
        let r = self.store.get_order(o.id).await.unwrap().expect("order");
        (r.status, r.version, r.failure_reason)
    }

    async fn stock(&self, product: &str) -> i64 {
        let p = ProductId::parse(product).unwrap();
        self.store
            .get_inventory(&p)
            .await
            .unwrap()
            .expect("product")
    }

    async fn set_stock(&self, product: &str, n: i64) {
        let p = ProductId::parse(product).unwrap();
        self.store
            .set_inventory(&p, n, chrono::Utc::now())
            .await
            .unwrap();
    }
}

fn out_of_stock() -> Value {
    json!({"Error": "OutOfStock", "Cause": "product laptop: 1 requested, 0 available"})
}

#[tokio::test]
async fn reserve_inventory_twice_takes_stock_once() {
    let fx = Fx::new();
    let o = fx.order(129_999).await;
    let before = fx.stock("laptop").await;
    let (a, b) = fx.twice("ReserveInventory", &o).await;
    assert_eq!(a, json!({"reserved": 1}));
    assert_eq!(b, a);
    assert_eq!(fx.stock("laptop").await, before - 1);
    assert_eq!(
        fx.count("SELECT COUNT(*) FROM reservations WHERE order_id = ?1", &o),
        1
    );
    assert_eq!(
        fx.status(&o).await,
        (OrderStatus::InventoryReserved, 2, None)
    );
}

#[tokio::test]
async fn process_payment_twice_charges_once() {
    let fx = Fx::new();
    let o = fx.order(129_999).await;
    fx.ok("ReserveInventory", &o).await;
    let (a, b) = fx.twice("ProcessPayment", &o).await;
    assert!(a["chargeId"].as_str().unwrap().starts_with("ch_"), "{a}");
    assert_eq!(b["chargeId"], a["chargeId"]);
    assert_eq!(a["amountCents"], 129_999);
    assert_eq!(
        fx.count("SELECT COUNT(*) FROM payments WHERE order_id = ?1", &o),
        1
    );
    assert_eq!(
        fx.text(
            "SELECT charge_id FROM payments WHERE order_id = ?1 AND status = ?2",
            &o,
            "CHARGED"
        ),
        a["chargeId"].as_str().unwrap()
    );
    assert_eq!(
        fx.status(&o).await,
        (OrderStatus::PaymentProcessed, 3, None)
    );
}

#[tokio::test]
async fn send_notification_twice_notifies_once() {
    let fx = Fx::new();
    let o = fx.order(129_999).await;
    let (a, b) = fx.twice("SendNotification", &o).await;
    assert_eq!(
        (a, b),
        (json!({"notified": true}), json!({"notified": true}))
    );
    assert_eq!(
        fx.count("SELECT COUNT(*) FROM notifications WHERE order_id = ?1", &o),
        1
    );
    assert_eq!(
        count_rows(&fx.dir.path().join("orders.db"), "notifications"),
        1
    );
}

#[tokio::test]
async fn issue_voucher_twice_issues_one_voucher() {
    let fx = Fx::new();
    let o = fx.order(20_000).await;
    let (a, b) = fx.twice("IssueVoucher", &o).await;
    let code = a["voucherCode"].as_str().expect("a code");
    assert_eq!(b["voucherCode"], code);
    let vouchers = fx
        .store
        .list_vouchers(&CustomerId::parse("cust-steps").unwrap())
        .await
        .unwrap();
    assert_eq!(vouchers.len(), 1);
    assert_eq!(vouchers[0].code.as_str(), code);
    assert_eq!(vouchers[0].status, VoucherStatus::Ready);
    assert_eq!(vouchers[0].discount, Cents(500));
    assert_eq!(vouchers[0].order_id, o.id);

    // Exactly 100.00 earns nothing, however often it runs.
    let o = fx.order(10_000).await;
    let (a, _) = fx.twice("IssueVoucher", &o).await;
    assert_eq!(a, json!({"voucherCode": null}));
    assert_eq!(count_rows(&fx.dir.path().join("orders.db"), "vouchers"), 1);
}

#[tokio::test]
async fn mark_completed_twice_bumps_the_version_once() {
    let fx = Fx::new();
    let o = fx.order(129_999).await;
    fx.ok("ReserveInventory", &o).await;
    fx.ok("ProcessPayment", &o).await;
    assert_eq!(fx.status(&o).await.1, 3);
    fx.twice("MarkCompleted", &o).await;
    assert_eq!(fx.status(&o).await, (OrderStatus::Completed, 4, None));
}

#[tokio::test]
async fn refund_payment_twice_refunds_once() {
    let fx = Fx::new();
    let o = fx.order(129_999).await;
    fx.ok("ReserveInventory", &o).await;
    fx.ok("ProcessPayment", &o).await;
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
    assert_eq!(count_rows(&fx.dir.path().join("orders.db"), "payments"), 1);
}

#[tokio::test]
async fn release_inventory_twice_restores_stock_once() {
    let fx = Fx::new();
    let o = fx.order(129_999).await;
    let before = fx.stock("laptop").await;
    fx.ok("ReserveInventory", &o).await;
    assert_eq!(fx.stock("laptop").await, before - 1);
    let (a, b) = fx.twice("ReleaseInventory", &o).await;
    assert_eq!(a, json!({"released": true}));
    assert_eq!(b, json!({"released": false}));
    assert_eq!(fx.stock("laptop").await, before);
    assert_eq!(
        fx.count(
            "SELECT COUNT(*) FROM reservations WHERE order_id = ?1 AND status = 'RELEASED'",
            &o
        ),
        1
    );
}

#[tokio::test]
async fn restore_voucher_twice_makes_it_ready_once() {
    let fx = Fx::new();
    let earner = fx.order(20_000).await;
    let code = fx.ok("IssueVoucher", &earner).await["voucherCode"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second order of the same customer redeems it in its create transaction.
    let mut cmd = new_order("cust-steps", 1_000);
    let voucher = VoucherCode::parse(&code).unwrap();
    cmd.order.voucher_code = Some(voucher.clone());
    cmd.order.discount = Cents(500);
    cmd.order.total = Cents(500);
    cmd.event.data.voucher_code = Some(voucher);
    cmd.event.data.total_cents = Cents(500);
    let o = Order {
        id: cmd.order.id,
        input: serde_json::to_value(&cmd.event.data).unwrap(),
    };
    fx.store.create_order(cmd).await.unwrap();
    let status = |fx: &Fx| {
        fx.conn()
            .query_row(
                "SELECT status FROM vouchers WHERE code = ?1",
                [&code],
                |r| r.get::<_, String>(0),
            )
            .unwrap()
    };
    assert_eq!(status(&fx), "USED");
    let (a, b) = fx.twice("RestoreVoucher", &o).await;
    assert_eq!(a, json!({"restored": true, "withdrawn": false}));
    assert_eq!(b, json!({"restored": false, "withdrawn": false}));
    assert_eq!(status(&fx), "READY");
    // Compensating the earning order withdraws the voucher it earned (it never redeemed it).
    let (a, b) = fx.twice("RestoreVoucher", &earner).await;
    assert_eq!(a, json!({"restored": false, "withdrawn": true}));
    assert_eq!(b, json!({"restored": false, "withdrawn": false}));
    assert_eq!(status(&fx), "DISABLED");
}

#[tokio::test]
async fn begin_compensation_and_mark_failed_change_status_once_each() {
    let fx = Fx::new();
    let mut o = fx.order(129_999).await;
    fx.ok("ReserveInventory", &o).await;
    o.input["error"] = out_of_stock();
    let (a, b) = fx.twice("BeginCompensation", &o).await;
    let reason = "OutOfStock: product laptop: 1 requested, 0 available";
    assert_eq!(a, json!({"reason": reason}));
    assert_eq!(b, a);
    assert_eq!(
        fx.status(&o).await,
        (OrderStatus::Compensating, 3, Some(reason.to_owned()))
    );
    fx.twice("MarkFailed", &o).await;
    assert_eq!(
        fx.status(&o).await,
        (OrderStatus::Failed, 4, Some(reason.to_owned()))
    );
}

#[tokio::test]
async fn reserve_of_several_items_is_all_or_none() {
    let fx = Fx::new();
    fx.set_stock("widget", 1).await;
    let laptops = fx.stock("laptop").await;
    for items in [
        json!([{"productId": "laptop", "quantity": 1}, {"productId": "widget", "quantity": 2}]),
        // One product listed twice: the quantities add up.
        json!([{"productId": "laptop", "quantity": 1}, {"productId": "widget", "quantity": 1},
               {"productId": "widget", "quantity": 1}]),
    ] {
        let mut o = fx.order(129_999).await;
        o.input["items"] = items;
        let err = fx.invoke("ReserveInventory", &o.input).await.unwrap_err();
        assert_eq!(err.name(), "OutOfStock", "{err}");
        assert_eq!(err.to_string(), "product widget: 2 requested, 1 available");
        assert_eq!(fx.stock("laptop").await, laptops, "nothing taken");
        assert_eq!(fx.stock("widget").await, 1, "nothing taken");
        assert_eq!(
            fx.count("SELECT COUNT(*) FROM reservations WHERE order_id = ?1", &o),
            0
        );
        assert_eq!(fx.status(&o).await, (OrderStatus::Pending, 1, None));
        assert_eq!(
            fx.text(
                "SELECT status FROM saga_steps WHERE order_id = ?1 AND step = ?2",
                &o,
                "ReserveInventory"
            ),
            "FAILED"
        );
    }
    let mut o = fx.order(129_999).await;
    o.input["items"] =
        json!([{"productId": "laptop", "quantity": 1}, {"productId": "widget", "quantity": 1}]);
    fx.twice("ReserveInventory", &o).await;
    assert_eq!(fx.stock("laptop").await, laptops - 1);
    assert_eq!(fx.stock("widget").await, 0);
}

#[tokio::test]
async fn a_failed_order_refuses_to_move_forward() {
    let fx = Fx::new();
    let mut o = fx.order(129_999).await;
    o.input["error"] = out_of_stock();
    fx.ok("BeginCompensation", &o).await;
    fx.ok("MarkFailed", &o).await;
    let before = fx.status(&o).await;
    assert_eq!((before.0, before.1), (OrderStatus::Failed, 3));
    for _ in 0..2 {
        let err = fx.invoke("MarkCompleted", &o.input).await.unwrap_err();
        assert_eq!(err.name(), "InvalidTransition", "{err}");
    }
    assert_eq!(fx.status(&o).await, before);
    assert_eq!(fx.attempts("MarkCompleted", &o), 2);
    let recorded = fx.text(
        "SELECT error FROM saga_steps WHERE order_id = ?1 AND step = ?2",
        &o,
        "MarkCompleted",
    );
    assert!(recorded.starts_with("InvalidTransition"), "{recorded}");
}
