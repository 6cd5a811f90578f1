//! The payment provider simulator over real HTTP, posting to a receiver of the test's.

use super::receiver::Receiver;
use orders::payment_sim::{PaymentSim, RetryPolicy, SimSettings};
use orders_domain::standard_webhooks::WebhookSecret;
use orders_domain::{OrderId, PaymentId};
use serde_json::{Value, json};
use std::time::Duration;

const DELAY: Duration = Duration::from_millis(20);
/// Long enough that a webhook that was going to come would have (many times the delay).
const QUIET: Duration = Duration::from_millis(300);
const WITHIN: Duration = Duration::from_secs(5);

async fn simulator(receiver: &Receiver, secret: &WebhookSecret, retry: RetryPolicy) -> PaymentSim {
    let mut settings = SimSettings::new(receiver.url.clone(), secret.clone(), DELAY);
    settings.retry = retry;
    PaymentSim::start(settings).await.expect("simulator")
}

fn charge(method: &str, amount_cents: i64) -> (PaymentId, Value) {
    let order = OrderId::new();
    let payment = PaymentId::for_order(order);
    let body = json!({
        "paymentId": payment, "orderId": order, "amountCents": amount_cents,
        "currency": "EUR", "paymentMethod": method,
    });
    (payment, body)
}

async fn post(sim: &PaymentSim, key: Option<&str>, body: String) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(sim.url().join("charges").unwrap())
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let res = req.send().await.expect("the simulator answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn ask(sim: &PaymentSim, payment: &PaymentId, body: &Value) -> u16 {
    post(sim, Some(payment.as_str()), body.to_string()).await.0
}

#[tokio::test]
async fn each_card_is_answered_its_way_signed_with_the_secret() {
    let secret = WebhookSecret::generate().unwrap();
    let mut receiver = Receiver::start(0).await;
    let sim = simulator(&receiver, &secret, RetryPolicy::default()).await;
    let (silent, silent_body) = charge("pm_card_noAnswer", 500);
    assert_eq!(ask(&sim, &silent, &silent_body).await, 202);
    let (visa, visa_body) = charge("pm_card_visa", 259_998);
    assert_eq!(ask(&sim, &visa, &visa_body).await, 202);
    let (declined, declined_body) = charge("pm_card_chargeDeclined", 1_000);
    assert_eq!(ask(&sim, &declined, &declined_body).await, 202);

    let mut got = vec![receiver.next(WITHIN).await, receiver.next(WITHIN).await];
    got.sort_by_key(|a| a.json()["type"].as_str().unwrap().to_owned());
    let (failed, succeeded) = (&got[0], &got[1]);
    assert_eq!(
        succeeded.json(),
        json!({"type": "payment.succeeded", "data": {
            "paymentId": visa, "orderId": visa_body["orderId"], "amount": 2599.98,
        }})
    );
    assert_eq!(
        failed.json(),
        json!({"type": "payment.failed", "data": {
            "paymentId": declined, "orderId": declined_body["orderId"], "amount": 10,
            "reason": "card_declined",
        }})
    );
    let other = WebhookSecret::generate().unwrap();
    for attempt in &got {
        assert!(attempt.header("webhook-id").unwrap().starts_with("msg_"));
        attempt.verifies(&secret).expect("signed with the secret");
        assert!(attempt.verifies(&other).is_err(), "not with another");
    }
    assert_ne!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let extra = receiver.nothing_within(QUIET).await;
    assert!(extra.is_none(), "pm_card_noAnswer was answered: {extra:?}");
    assert_eq!(sim.pending(), 0);
    sim.stop(WITHIN).await;
}

#[tokio::test]
async fn a_charge_asked_again_is_accepted_and_answered_once() {
    let secret = WebhookSecret::generate().unwrap();
    let mut receiver = Receiver::start(0).await;
    let sim = simulator(&receiver, &secret, RetryPolicy::default()).await;
    let (payment, body) = charge("pm_card_visa", 4_200);
    for _ in 0..3 {
        assert_eq!(ask(&sim, &payment, &body).await, 202);
    }
    let first = receiver.next(WITHIN).await;
    assert_eq!(first.json()["data"]["paymentId"], payment.as_str());
    // Asked again after the answer, too: still the one webhook.
    assert_eq!(ask(&sim, &payment, &body).await, 202);
    let extra = receiver.nothing_within(QUIET).await;
    assert!(extra.is_none(), "a second webhook: {extra:?}");
    sim.stop(WITHIN).await;
}

#[tokio::test]
async fn malformed_charges_are_refused_and_never_answered() {
    let secret = WebhookSecret::generate().unwrap();
    let mut receiver = Receiver::start(0).await;
    let sim = simulator(&receiver, &secret, RetryPolicy::default()).await;
    let (payment, body) = charge("pm_card_visa", 100);
    let key = Some(payment.as_str());
    assert_eq!(post(&sim, key, "{not json".into()).await.0, 400);
    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("amountCents");
    assert_eq!(post(&sim, key, missing.to_string()).await.0, 400);
    for (field, bad) in [
        ("amountCents", json!(0)),
        ("currency", json!("USD")),
        ("paymentId", json!("ch_1")),
    ] {
        let mut wrong = body.clone();
        wrong[field] = bad;
        let (status, problem) = post(&sim, key, wrong.to_string()).await;
        assert_eq!(status, 400, "{field}: {problem}");
        assert!(problem["detail"].is_string(), "{problem}");
    }
    assert_eq!(post(&sim, None, body.to_string()).await.0, 400, "no key");
    assert_eq!(post(&sim, Some("pay_other"), body.to_string()).await.0, 400);
    let extra = receiver.nothing_within(QUIET).await;
    assert!(extra.is_none(), "a refused charge was answered: {extra:?}");
    // The refusals did not remember the payment: a good ask is taken.
    assert_eq!(ask(&sim, &payment, &body).await, 202);
    receiver.next(WITHIN).await;
    sim.stop(WITHIN).await;
}

#[tokio::test]
async fn a_webhook_is_retried_with_one_id_until_a_2xx() {
    let secret = WebhookSecret::generate().unwrap();
    let mut receiver = Receiver::start(2).await;
    let fast = RetryPolicy {
        scale: 0.1,
        ..RetryPolicy::default()
    };
    let sim = simulator(&receiver, &secret, fast).await;
    let (payment, body) = charge("pm_card_visa", 100);
    assert_eq!(ask(&sim, &payment, &body).await, 202);
    let attempts = [
        receiver.next(WITHIN).await,
        receiver.next(WITHIN).await,
        receiver.next(WITHIN).await,
    ];
    let answers: Vec<u16> = attempts.iter().map(|a| a.answered.as_u16()).collect();
    assert_eq!(answers, [500, 500, 204]);
    let id = attempts[0].header("webhook-id").unwrap();
    for a in &attempts {
        assert_eq!(a.header("webhook-id"), Some(id), "one id on every attempt");
        a.verifies(&secret).expect("every attempt signed");
        assert_eq!(a.body, attempts[0].body);
    }
    let extra = receiver.nothing_within(QUIET).await;
    assert!(extra.is_none(), "retried after a 2xx: {extra:?}");
    sim.stop(WITHIN).await;
}

#[tokio::test]
async fn a_webhook_never_taken_is_given_up_after_its_attempts() {
    let secret = WebhookSecret::generate().unwrap();
    let mut receiver = Receiver::start(usize::MAX).await;
    let policy = RetryPolicy {
        attempts: 4,
        scale: 0.05,
        ..RetryPolicy::default()
    };
    let sim = simulator(&receiver, &secret, policy).await;
    let (payment, body) = charge("pm_card_visa", 100);
    assert_eq!(ask(&sim, &payment, &body).await, 202);
    for _ in 0..4 {
        assert_eq!(receiver.next(WITHIN).await.answered, 500);
    }
    let extra = receiver.nothing_within(QUIET).await;
    assert!(extra.is_none(), "a fifth attempt: {extra:?}");
    assert_eq!(sim.pending(), 0, "the delivery ended");
    sim.stop(WITHIN).await;
}
