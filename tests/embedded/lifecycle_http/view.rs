//! What GET (one order, and the list) shows of the lifecycle: `payment` once requested,
//! `shipment` once shipped, `cancellationRequested` (and its reason) once asked,
//! `failureReason` only when FAILED; absent parts are absent, never `null`.

use super::*;

#[tokio::test]
async fn each_part_appears_when_it_is_a_fact_of_the_order() {
    let app = app(&secret());
    let id = order(&app, "customer-v").await;
    let fresh = get(&app, id).await;
    for field in [
        "payment",
        "shipment",
        "cancellationRequested",
        "cancellationReason",
        "failureReason",
    ] {
        assert!(fresh.get(field).is_none(), "{field}: {fresh}");
    }

    advance(&app, id, &TO_AWAITING).await;
    let o = get(&app, id).await;
    assert_eq!(
        o["payment"],
        json!({"paymentId": PaymentId::for_order(id).as_str(), "status": "REQUESTED"}),
        "{o}"
    );
    app.store
        .step_job(move |s| async move {
            let mv = StatusMove {
                step: Step::RequestPayment,
                to: OrderStatus::PaymentProcessed,
                reason: None,
            };
            s.set_status(OrderAt::now(id), mv).await.expect("paid");
        })
        .await
        .unwrap();
    advance(&app, id, &[OrderStatus::Shipped]).await;
    let o = get(&app, id).await;
    assert_eq!(o["status"], "SHIPPED");
    assert_eq!(o["shipment"]["trackingNumber"], "TRK-1", "{o}");
    assert!(
        o["shipment"]["shippedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{o}"
    );

    let list = app.get("/orders?customerId=customer-v").await.json();
    assert_eq!(
        list["orders"][0]["shipment"], o["shipment"],
        "the list shows it too"
    );

    let cancelled = order(&app, "customer-v").await;
    let r = patch(
        &app,
        &cancelled.to_string(),
        r#"{"status": "CANCELLED", "reason": "changed my mind"}"#,
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 202);
    let o = get(&app, cancelled).await;
    assert_eq!(
        (
            o["cancellationRequested"].clone(),
            o["cancellationReason"].clone()
        ),
        (json!(true), json!("changed my mind")),
        "{o}"
    );
}

#[tokio::test]
async fn the_failure_reason_is_shown_only_when_failed() {
    let app = app(&secret());
    let id = order(&app, "customer-f").await;
    advance(&app, id, &[OrderStatus::Compensating]).await;
    let o = get(&app, id).await;
    assert_eq!(o["status"], "COMPENSATING");
    assert!(o.get("failureReason").is_none(), "not yet FAILED: {o}");
    advance(&app, id, &[OrderStatus::Failed]).await;
    let o = get(&app, id).await;
    assert!(
        o["failureReason"]
            .as_str()
            .is_some_and(|r| r.starts_with("InsufficientStock")),
        "{o}"
    );
}
