//! Each saga step handler against the SQLite `StepStore`, invoked twice with the same input
//! (as a redelivery or a crash-resume would): the effect must happen once. The steps around the
//! payment and the shipment, which meet the outside actors, are in `lifecycle`.

mod lifecycle;

use orders_test_support as common;

use crate::saga_store_sqlite::{Sqlite, sqlite};
use common::contract::new_order;
use common::count_rows;
use common::saga_contract::SagaFixture;
use orders_domain::store::{CreateOrder, OrderStore};
use orders_domain::{Cents, CustomerId, OrderId, OrderStatus, VoucherCode, VoucherStatus};
use orders_workflow::steps::{StepError, StepSettings};
use serde_json::{Value, json};

/// The store of the saga contract's SQLite fixture, driven here through the step handlers.
struct Fx {
    db: Sqlite,
}

/// One stored order and its saga input (as the outbox event carries it).
struct Order {
    id: OrderId,
    input: Value,
}

impl Fx {
    async fn new() -> Fx {
        Fx { db: sqlite().await }
    }

    /// A fresh store holding one order of `cents`, where most cases start.
    async fn with_order(cents: i64) -> (Fx, Order) {
        let fx = Fx::new().await;
        let o = fx.order(cents).await;
        (fx, o)
    }

    async fn order(&self, cents: i64) -> Order {
        self.create(new_order("cust-steps", cents)).await
    }

    /// Stores the order as the API would, keeping the saga input its event carries.
    async fn create(&self, cmd: CreateOrder) -> Order {
        let order = Order {
            id: cmd.order.id,
            input: serde_json::to_value(&cmd.event.data).unwrap(),
        };
        self.db.store.create_order(cmd).await.expect("create order");
        order
    }

    /// The step as the local executor runs it: one writer job (`SqliteStore::run_step`).
    async fn invoke(&self, step: &str, input: &Value) -> Result<Value, StepError> {
        self.run(json!({"step": step, "input": input})).await
    }

    /// A raw step payload (a callback Task's carries its `taskToken`), as one writer job.
    async fn run(&self, payload: Value) -> Result<Value, StepError> {
        self.db
            .store
            .run_step(StepSettings::default(), payload)
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
        assert_eq!(self.step_field::<String>(step, o, "status"), "SUCCEEDED");
        (first, second)
    }

    fn conn(&self) -> rusqlite::Connection {
        self.db.conn()
    }

    /// Rows of `table`, whichever order they belong to.
    fn all_rows(&self, table: &str) -> i64 {
        count_rows(&self.db.dir.path().join("orders.db"), table)
    }

    /// Rows of `table` that belong to the order.
    fn rows(&self, table: &str, o: &Order) -> i64 {
        self.count(
            &format!("SELECT COUNT(*) FROM {table} WHERE order_id = ?1"),
            o,
        )
    }

    fn count(&self, sql: &str, o: &Order) -> i64 {
        self.conn()
            .query_row(sql, [o.id.to_string()], |r| r.get(0))
            .unwrap()
    }

    /// One value, from `sql` with the order's id as ?1 and `arg` as ?2.
    fn value<T: rusqlite::types::FromSql>(&self, sql: &str, o: &Order, arg: &str) -> T {
        self.conn()
            .query_row(sql, [o.id.to_string(), arg.to_owned()], |r| r.get(0))
            .unwrap()
    }

    /// A column of the order's step history entry for `step`.
    fn step_field<T: rusqlite::types::FromSql>(&self, step: &str, o: &Order, column: &str) -> T {
        let sql = format!("SELECT {column} FROM saga_steps WHERE order_id = ?1 AND step = ?2");
        self.value(&sql, o, step)
    }

    fn attempts(&self, step: &str, o: &Order) -> i64 {
        self.step_field(step, o, "attempts")
    }

    /// Status, version and failure reason.
    async fn status(&self, o: &Order) -> (OrderStatus, i64, Option<String>) {
        self.db.order(o.id).await
    }

    /// Requires the order's status, version and failure reason to be these.
    async fn assert_status(
        &self,
        o: &Order,
        status: OrderStatus,
        version: i64,
        reason: Option<&str>,
    ) {
        let want = (status, version, reason.map(str::to_owned));
        assert_eq!(self.status(o).await, want, "order {}", o.id);
    }

    async fn stock(&self, product: &str) -> i64 {
        self.db.stock(product).await.expect("product")
    }
}

fn out_of_stock() -> Value {
    json!({"Error": "OutOfStock", "Cause": "product laptop: 1 requested, 0 available"})
}

#[tokio::test]
async fn reserve_inventory_twice_takes_stock_once() {
    let (fx, o) = Fx::with_order(129_999).await;
    let before = fx.stock("laptop").await;
    let (a, b) = fx.twice("ReserveInventory", &o).await;
    assert_eq!(a, json!({"reserved": 1}));
    assert_eq!(b, a);
    assert_eq!(fx.stock("laptop").await, before - 1);
    assert_eq!(fx.rows("reservations", &o), 1);
    fx.assert_status(&o, OrderStatus::InventoryReserved, 2, None)
        .await;
}

#[tokio::test]
async fn send_notification_twice_notifies_once() {
    let (fx, o) = Fx::with_order(129_999).await;
    let (a, b) = fx.twice("SendNotification", &o).await;
    assert_eq!(
        (a, b),
        (json!({"notified": true}), json!({"notified": true}))
    );
    assert_eq!(fx.rows("notifications", &o), 1);
    assert_eq!(fx.all_rows("notifications"), 1);
}

#[tokio::test]
async fn issue_voucher_twice_issues_one_voucher() {
    let (fx, o) = Fx::with_order(20_000).await;
    let (a, b) = fx.twice("IssueVoucher", &o).await;
    let code = a["voucherCode"].as_str().expect("a code");
    assert_eq!(b["voucherCode"], code);
    let vouchers = fx
        .db
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
    assert_eq!(fx.all_rows("vouchers"), 1);
}

#[tokio::test]
async fn release_inventory_twice_restores_stock_once() {
    let (fx, o) = Fx::with_order(129_999).await;
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
    let fx = Fx::new().await;
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
    let o = fx.create(cmd).await;
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
    let (fx, mut o) = Fx::with_order(129_999).await;
    fx.ok("ReserveInventory", &o).await;
    o.input["error"] = out_of_stock();
    let (a, b) = fx.twice("BeginCompensation", &o).await;
    let reason = "OutOfStock: product laptop: 1 requested, 0 available";
    assert_eq!(a, json!({"reason": reason}));
    assert_eq!(b, a);
    fx.assert_status(&o, OrderStatus::Compensating, 3, Some(reason))
        .await;
    fx.twice("MarkFailed", &o).await;
    fx.assert_status(&o, OrderStatus::Failed, 4, Some(reason))
        .await;
}

#[tokio::test]
async fn reserve_of_several_items_is_all_or_none() {
    let fx = Fx::new().await;
    fx.db.set_stock("widget", 1).await;
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
        assert_eq!(fx.rows("reservations", &o), 0);
        fx.assert_status(&o, OrderStatus::Pending, 1, None).await;
        let status: String = fx.step_field("ReserveInventory", &o, "status");
        assert_eq!(status, "FAILED");
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
    let (fx, mut o) = Fx::with_order(129_999).await;
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
    let recorded: String = fx.step_field("MarkCompleted", &o, "error");
    assert!(recorded.starts_with("InvalidTransition"), "{recorded}");
}
