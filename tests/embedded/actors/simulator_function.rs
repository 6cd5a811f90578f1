//! The simulator with the settings its Lambda runs with (`orders::payment_sim::lambda`),
//! served over real HTTP by the same router: a charge needs the provider key, and the 202
//! comes only once the webhook was taken, since a frozen Lambda process runs nothing after
//! its answer. The Lambda runtime path itself (a function URL event in, the same answer out)
//! is booted by `scripts/lambda-boot.sh`.

use super::receiver::Receiver;
use orders::payment_sim::lambda::SimFunctionConfig;
use orders::payment_sim::{Answer, PaymentSim};
use orders_aws::functions::{
    PAYMENT_PROVIDER_KEY_ENV, PAYMENT_WEBHOOK_SECRET_ENV, PAYMENT_WEBHOOK_URL_ENV,
};
use orders_domain::standard_webhooks::WebhookSecret;
use orders_domain::{OrderId, PaymentId};
use orders_workflow::steps::payment::http::{HttpProvider, ProviderKey};
use orders_workflow::steps::payment::{ChargeRequest, PaymentProvider, ProviderError};
use std::time::Duration;

const KEY: &str = "sk_test_simulator_function_key";
const WITHIN: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

async fn function_sim(receiver: &Receiver, secret: &WebhookSecret) -> PaymentSim {
    let (url, secret) = (receiver.url.to_string(), secret.to_string());
    let config = SimFunctionConfig::from_lookup(|name| match name {
        n if n == PAYMENT_WEBHOOK_URL_ENV => Some(url.clone()),
        n if n == PAYMENT_WEBHOOK_SECRET_ENV => Some(secret.clone()),
        n if n == PAYMENT_PROVIDER_KEY_ENV => Some(KEY.into()),
        _ => None,
    })
    .expect("a complete configuration");
    let settings = config.settings();
    assert_eq!(settings.answer, Answer::AfterDelivery);
    PaymentSim::start(settings).await.expect("simulator")
}

fn charge(method: &str) -> ChargeRequest {
    let order = OrderId::new();
    ChargeRequest {
        payment_id: PaymentId::for_order(order),
        order_id: order,
        amount_cents: 12_345,
        currency: "EUR".into(),
        payment_method: method.into(),
    }
}

fn client(sim: &PaymentSim, key: &str) -> HttpProvider {
    HttpProvider::new(&sim.url(), Some(ProviderKey::parse(key).unwrap())).unwrap()
}

#[tokio::test]
async fn a_charge_needs_the_key_and_is_answered_after_its_webhook() {
    let secret = WebhookSecret::generate().unwrap();
    let mut receiver = Receiver::start(0).await;
    let sim = function_sim(&receiver, &secret).await;
    let visa = charge("pm_card_visa");

    let keyless = HttpProvider::new(&sim.url(), None).unwrap();
    let refused = keyless.request_charge(&visa).await;
    assert!(
        matches!(&refused, Err(ProviderError::Refused(why)) if why.contains("401")),
        "{refused:?}"
    );
    let wrong = client(&sim, "sk_test_not_the_simulators_key");
    assert!(matches!(
        wrong.request_charge(&visa).await,
        Err(ProviderError::Refused(_))
    ));
    let extra = receiver.nothing_within(QUIET).await;
    assert!(extra.is_none(), "a refused charge was answered: {extra:?}");

    client(&sim, KEY)
        .request_charge(&visa)
        .await
        .expect("accepted");
    // Already here when the 202 came: no wait.
    let webhook = receiver.nothing_within(Duration::ZERO).await;
    let webhook = webhook.expect("the webhook was delivered before the charge was answered");
    assert_eq!(webhook.json()["type"], "payment.succeeded");
    assert_eq!(
        webhook.json()["data"]["paymentId"],
        visa.payment_id.as_str()
    );
    webhook
        .verifies(&secret)
        .expect("signed with the API's secret");
    sim.stop(WITHIN).await;
}

#[tokio::test]
async fn a_webhook_not_taken_answers_503_and_the_charge_asked_again_delivers() {
    let secret = WebhookSecret::generate().unwrap();
    // The function's policy tries 3 times: the first ask's attempts all fail.
    let mut receiver = Receiver::start(3).await;
    let sim = function_sim(&receiver, &secret).await;
    let visa = charge("pm_card_visa");
    let provider = client(&sim, KEY);

    let first = provider.request_charge(&visa).await;
    assert!(
        matches!(&first, Err(ProviderError::Unavailable(why)) if why.contains("503")),
        "{first:?}"
    );
    for _ in 0..3 {
        assert_eq!(receiver.next(WITHIN).await.answered, 500);
    }
    // Not remembered as answered: the retry of the step is delivered.
    provider.request_charge(&visa).await.expect("accepted");
    let delivered = receiver.nothing_within(Duration::ZERO).await;
    assert_eq!(delivered.expect("delivered before the 202").answered, 204);
    // And once delivered, asked again: accepted, nothing more sent.
    provider.request_charge(&visa).await.expect("accepted");
    let extra = receiver.nothing_within(QUIET).await;
    assert!(extra.is_none(), "a second webhook: {extra:?}");
    sim.stop(WITHIN).await;
}
