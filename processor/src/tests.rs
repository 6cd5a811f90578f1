//! Fakes of both ports, and what `process_event` makes of each kind of row.

use super::*;
use orders_domain::{Cents, CustomerId, EventId, OrderId, ProductId, SagaItem, TaskSignal};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct Recorder(pub(crate) Mutex<HashMap<String, SagaInput>>);

#[async_trait]
impl SagaStarter for Recorder {
    async fn start(&self, name: &str, input: &SagaInput) -> Result<Started, StartError> {
        let mut m = self.0.lock().unwrap();
        if m.contains_key(name) {
            return Ok(Started::AlreadyExists);
        }
        m.insert(name.to_owned(), input.clone());
        Ok(Started::New)
    }
}

/// A signaller that records what it is handed and answers by token: a token starting with
/// `stale` is stale, one starting with `down` fails while `down` is set, any other applies.
#[derive(Default)]
pub(crate) struct Signals {
    pub(crate) delivered: Mutex<Vec<TaskSignal>>,
    pub(crate) down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl TaskSignaller for Signals {
    async fn deliver(&self, signal: &TaskSignal) -> Result<Delivered, SignalError> {
        let key = match signal {
            TaskSignal::Succeed { token, .. } | TaskSignal::Fail { token, .. } => token.as_str(),
            TaskSignal::CancelWaiting { execution, .. } => execution.as_str(),
        };
        if key.starts_with("down") && self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SignalError("executor shutting down".into()));
        }
        self.delivered.lock().unwrap().push(signal.clone());
        if key.starts_with("stale") {
            return Ok(Delivered::Stale("TaskTimedOut".into()));
        }
        Ok(Delivered::Applied)
    }
}

pub(crate) fn created() -> OutboxEvent {
    OutboxEvent::order_created(
        EventId::new(),
        chrono::Utc::now(),
        SagaInput {
            order_id: OrderId::new(),
            customer_id: CustomerId::parse("c").unwrap(),
            items: vec![SagaItem {
                product_id: ProductId::parse("laptop").unwrap(),
                quantity: 1,
            }],
            total_cents: Cents(100),
            payment_method: "pm_card_visa".into(),
            voucher_code: None,
        },
    )
}

pub(crate) fn signal_row(signal: TaskSignal) -> Vec<u8> {
    serde_json::to_vec(&SignalEvent::new(
        chrono::Utc::now(),
        OrderId::new(),
        signal,
    ))
    .unwrap()
}

pub(crate) fn succeed(token: &str) -> TaskSignal {
    TaskSignal::Succeed {
        token: token.into(),
        output: serde_json::json!({"paymentId": "pay_1"}),
    }
}

#[tokio::test]
async fn a_redelivered_event_starts_one_saga() {
    let (rec, signals) = (Recorder::default(), Signals::default());
    let ev = created();
    let payload = serde_json::to_vec(&ev).unwrap();
    for expected in [Started::New, Started::AlreadyExists] {
        assert_eq!(
            process_event(&payload, &rec, &signals).await.unwrap(),
            Processed::Started(ev.clone(), expected)
        );
    }
    assert_eq!(
        start_event(&payload, &rec).await.unwrap().1,
        Started::AlreadyExists
    );
    let started = rec.0.lock().unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[&ev.id.to_string()], ev.data);
    assert!(signals.delivered.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_signal_row_is_delivered_not_started() {
    let (rec, signals) = (Recorder::default(), Signals::default());
    let sent = [
        succeed("t-1"),
        TaskSignal::Fail {
            token: "t-2".into(),
            error: "PaymentDeclined".into(),
            cause: "card declined".into(),
        },
        TaskSignal::CancelWaiting {
            execution: "exec-1".into(),
            reason: Some("changed my mind".into()),
        },
    ];
    for signal in &sent {
        let outcome = process_event(&signal_row(signal.clone()), &rec, &signals)
            .await
            .unwrap();
        assert!(
            matches!(&outcome, Processed::Signalled(ev, Delivered::Applied) if ev.data == *signal),
            "{outcome:?}"
        );
    }
    assert_eq!(*signals.delivered.lock().unwrap(), sent);
    assert!(rec.0.lock().unwrap().is_empty(), "a signal starts no saga");
    // start_event is for order.created rows only.
    assert!(matches!(
        start_event(&signal_row(succeed("t-3")), &rec).await,
        Err(ProcessError::Poison(_))
    ));
}

#[tokio::test]
async fn a_stale_delivery_is_done_and_a_failed_one_retryable() {
    let (rec, signals) = (Recorder::default(), Signals::default());
    let outcome = process_event(&signal_row(succeed("stale-1")), &rec, &signals).await;
    assert!(matches!(
        outcome,
        Ok(Processed::Signalled(_, Delivered::Stale(_)))
    ));
    signals
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let outcome = process_event(&signal_row(succeed("down-1")), &rec, &signals).await;
    assert!(
        matches!(
            outcome,
            Err(ProcessError::Retryable(RetryableError::Signal(_)))
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn poison_is_not_retryable() {
    let (rec, signals) = (Recorder::default(), Signals::default());
    let mut wrong_version = serde_json::to_value(SignalEvent::new(
        chrono::Utc::now(),
        OrderId::new(),
        succeed("t"),
    ))
    .unwrap();
    wrong_version["specversion"] = "0.3".into();
    let no_signal = serde_json::json!({"type": orders_domain::event::TASK_SIGNAL, "data": {"signal": "explode"}});
    for poison in [
        b"not json".to_vec(),
        br#"{"type":"order.deleted"}"#.to_vec(),
        wrong_version.to_string().into_bytes(),
        no_signal.to_string().into_bytes(),
    ] {
        assert!(matches!(
            process_event(&poison, &rec, &signals).await,
            Err(ProcessError::Poison(_))
        ));
    }
    assert!(rec.0.lock().unwrap().is_empty());
    assert!(signals.delivered.lock().unwrap().is_empty());
}
