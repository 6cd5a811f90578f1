//! Vouchers end to end: earned only by an order over 100.00 EUR, USED while the order that
//! redeemed it runs, READY again when that order fails, and refused to another customer.

use super::T;
use orders_test_support::stack::with_payment;
use orders_test_support::stack::{Stack, assert_failed_with, assert_step, order_body, step};

use axum::http::StatusCode;

#[tokio::test]
async fn voucher_threshold_is_strictly_over_100() {
    let s = Stack::new().await;
    let id = s.create(&order_body("cust-5a", "mouse", 1, 100.01)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    let v = s.vouchers("cust-5a").await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["status"], "READY");
    assert_eq!(v[0]["discount"].as_f64(), Some(5.0));
    assert_eq!(v[0]["orderId"], id.as_str());
    let issued = &o["voucherIssued"];
    assert_eq!(issued["voucherCode"], v[0]["voucherCode"], "{o}");
    assert_eq!(issued["status"], "READY");

    let id = s.create(&order_body("cust-5b", "mouse", 2, 50.0)).await;
    let o = s.wait_terminal(&id, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    assert_eq!(o["totalAmount"].as_f64(), Some(100.0));
    assert!(o.get("voucherIssued").is_none(), "{o}");
    assert!(step(&o, "IssueVoucher").is_none(), "{o}");
    assert!(s.vouchers("cust-5b").await.is_empty());
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM vouchers", []), 1);
}

#[tokio::test]
async fn voucher_is_used_restored_on_failure_and_redeemable_again() {
    let mut s = Stack::new().await;
    let earn = s.create(&order_body("cust-6", "laptop", 1, 1299.99)).await;
    assert_eq!(s.wait_terminal(&earn, T).await["status"], "COMPLETED");
    let code = s.vouchers("cust-6").await[0]["voucherCode"]
        .as_str()
        .expect("voucher code")
        .to_owned();
    let redeem = |customer: &str, pm: &str| {
        let mut b = with_payment(order_body(customer, "mouse", 1, 20.0), pm);
        b["voucherCode"] = code.clone().into();
        b
    };

    // No saga runs while the relay is stopped, so USED is observed before any compensation.
    s.stop_relay().await;
    let (status, created) = s
        .post_order(&redeem("cust-6", "pm_card_chargeDeclined"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["totalAmount"].as_f64(), Some(15.0), "{created}");
    let v = s.vouchers("cust-6").await;
    assert_eq!(v[0]["status"], "USED", "{v:?}");
    let while_used = redeem("cust-6", "pm_card_visa");
    s.refused(&while_used, StatusCode::CONFLICT).await;

    s.start_relay();
    let declined = created["orderId"].as_str().unwrap();
    let o = s.wait_terminal(declined, T).await;
    assert_failed_with(&o, "PaymentDeclined");
    assert_eq!(o["voucherCode"], code.as_str());
    assert_step(&o, "RestoreVoucher", "SUCCEEDED");
    assert_eq!(s.vouchers("cust-6").await[0]["status"], "READY");

    let by_another = redeem("someone-else", "pm_card_visa");
    let p = s.refused(&by_another, StatusCode::CONFLICT).await;
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("another customer"), "{p}");
    assert_eq!(s.vouchers("cust-6").await[0]["status"], "READY");

    let again = s.create(&redeem("cust-6", "pm_card_visa")).await;
    let o = s.wait_terminal(&again, T).await;
    assert_eq!(o["status"], "COMPLETED", "{o}");
    assert_eq!(o["discount"].as_f64(), Some(5.0), "{o}");
    assert_eq!(s.payments(&again, Some("SUCCEEDED")), 1);
    assert_eq!(
        s.query_i64(
            "SELECT amount_cents FROM payments WHERE order_id = ?1",
            [&again]
        ),
        1_500
    );
    let v = s.vouchers("cust-6").await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["status"], "USED");
    let once_more = redeem("cust-6", "pm_card_visa");
    let p = s.refused(&once_more, StatusCode::CONFLICT).await;
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("not READY"), "{p}");
}
