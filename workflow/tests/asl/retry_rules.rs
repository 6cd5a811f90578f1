//! The saga's retry and failure rules, pinned: every forward Lambda Task retries the Lambda
//! service's own errors and `Transient` and is caught into compensation (or past a step that
//! must not fail the order); the two callback Tasks turn their timeouts into named reasons;
//! every compensation Task, and the completion of a shipped order, retries any error for more
//! than an hour (under full jitter) and then fails into a Fail state of its own; a compensated
//! order's execution succeeds. These are what the `ExecutionsFailed` alarm means ("an operator
//! must act"), so a change to them shows here.

use orders_workflow::asl::{
    Integration, JitterStrategy, State, StateMachine, TaskState, Transition,
};
use orders_workflow::executor::retry_delay;
use serde_json::json;
use std::collections::BTreeSet;

/// The forward Tasks that run a step handler (RequestPayment through its callback).
pub(crate) const FORWARD: [&str; 5] = [
    "ReserveInventory",
    "RequestPayment",
    "SendNotification",
    "MarkShipped",
    "IssueVoucher",
];
/// The Tasks that must not give up: they retry any error for over an hour.
pub(crate) const COMPENSATION: [&str; 6] = [
    "BeginCompensation",
    "RefundPayment",
    "ReleaseInventory",
    "RestoreVoucher",
    "MarkFailed",
    "MarkCancelled",
];
/// Retried like compensation, but it fails into `CompletionFailed`: a shipped order is never
/// compensated.
pub(crate) const COMPLETION: &str = "MarkCompleted";
/// The errors the Lambda service raises itself (faults and throttles, not the function's own):
/// AWS's guidance is to retry them on every Lambda task.
const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

pub(crate) fn task<'a>(machine: &'a StateMachine, name: &str) -> &'a TaskState {
    match &machine.states[name] {
        State::Task(task) => task,
        other => panic!("{name} is not a Task: {other:?}"),
    }
}

#[test]
fn forward_tasks_retry_lambda_service_errors_and_transient_then_compensate() {
    let machine = StateMachine::saga().unwrap();
    for name in FORWARD {
        let task = task(&machine, name);
        let [lambda, transient] = task.retry.as_slice() else {
            panic!("{name}: a retrier for the Lambda service's errors, one for Transient")
        };
        assert_eq!(lambda.error_equals, LAMBDA_SERVICE_ERRORS, "{name}");
        assert_eq!(lambda.jitter_strategy, JitterStrategy::Full, "{name}");
        assert_eq!(
            (
                lambda.interval_seconds,
                lambda.backoff_rate,
                lambda.max_attempts
            ),
            (1, 2.0, 6),
            "{name}"
        );
        assert_eq!(lambda.max_delay_seconds, Some(30), "{name}");

        assert_eq!(transient.error_equals, ["Transient"], "{name}");
        assert_eq!(transient.jitter_strategy, JitterStrategy::Full, "{name}");
        assert_eq!(
            (transient.interval_seconds, transient.backoff_rate),
            (1, 2.0)
        );
        assert_eq!(
            (transient.max_attempts, transient.max_delay_seconds),
            (4, Some(8)),
            "{name}"
        );

        let catches: Vec<(Vec<&str>, &str)> = task
            .catch
            .iter()
            .map(|c| {
                let errors = c.error_equals.iter().map(String::as_str).collect();
                (errors, c.next.as_str())
            })
            .collect();
        let expected: Vec<(Vec<&str>, &str)> = match name {
            "RequestPayment" => vec![
                (vec!["States.Timeout"], "PaymentTimedOut"),
                (vec!["States.ALL"], "BeginCompensation"),
            ],
            // A failed notification never fails a paid order; a cancellation still stops it.
            "SendNotification" => vec![
                (vec!["OrderCancelled"], "BeginCompensation"),
                (vec!["States.ALL"], "PrepareShipment"),
            ],
            "IssueVoucher" => vec![(vec!["States.ALL"], "MarkCompleted")],
            _ => vec![(vec!["States.ALL"], "BeginCompensation")],
        };
        assert_eq!(catches, expected, "{name}");
    }
}

#[test]
fn the_callback_tasks_wait_with_deadlines_that_become_reasons() {
    let machine = StateMachine::saga().unwrap();
    let payment = task(&machine, "RequestPayment");
    assert_eq!(payment.integration, Integration::LambdaCallback);
    assert_eq!(payment.resource, "RequestPaymentFunctionArn");
    assert_eq!(
        (payment.timeout_seconds, payment.heartbeat_seconds),
        (Some(900), None)
    );
    let shipment = task(&machine, "PrepareShipment");
    assert_eq!(shipment.integration, Integration::SqsCallback);
    assert_eq!(shipment.resource, "WarehouseQueueUrl");
    assert_eq!(
        (shipment.timeout_seconds, shipment.heartbeat_seconds),
        (Some(3600), Some(300))
    );
    let [sqs] = shipment.retry.as_slice() else {
        panic!("PrepareShipment: one retrier, for the queue's errors")
    };
    assert_eq!(
        sqs.error_equals,
        ["SQS.SdkClientException", "SQS.AmazonSQSException"]
    );
    let first = &shipment.catch[0];
    assert_eq!(
        first.error_equals,
        ["States.Timeout", "States.HeartbeatTimeout"]
    );
    assert_eq!(first.next, "ShipmentTimedOut");
    assert_eq!(shipment.catch[1].error_equals, ["States.ALL"]);
    for (pass, reason) in [
        ("PaymentTimedOut", "PaymentTimeout"),
        ("ShipmentTimedOut", "ShipmentTimeout"),
    ] {
        let State::Pass(p) = &machine.states[pass] else {
            panic!("{pass} is a Pass")
        };
        assert_eq!(p.result.as_ref().unwrap()["Error"], json!(reason));
        assert_eq!(p.transition, Transition::Next("BeginCompensation".into()));
    }
}

/// Under full jitter each retry waits uniformly in `[0, cap]`: the total has mean `sum(cap)/2`
/// and variance `sum(cap^2)/12`. Six standard deviations below the mean is still past an hour,
/// so no draw of the jitter gives up sooner.
#[test]
fn compensation_retries_any_error_for_over_an_hour_then_fails_naming_the_step() {
    let machine = StateMachine::saga().unwrap();
    for name in COMPENSATION.into_iter().chain([COMPLETION]) {
        let task = task(&machine, name);
        let [retrier] = task.retry.as_slice() else {
            panic!("{name}: one retrier")
        };
        assert_eq!(retrier.error_equals, ["States.ALL"], "{name}");
        assert_eq!(retrier.jitter_strategy, JitterStrategy::Full, "{name}");
        assert_eq!(
            retrier.max_delay_seconds,
            Some(300),
            "{name}: capped backoff"
        );
        let caps: Vec<f64> = (1..=retrier.max_attempts)
            .map(|n| retry_delay(retrier, n, 1.0).as_secs_f64())
            .collect();
        let mean = caps.iter().sum::<f64>() / 2.0;
        let sd = (caps.iter().map(|c| c * c).sum::<f64>() / 12.0).sqrt();
        assert!(
            mean - 6.0 * sd >= 3600.0,
            "{name}: retries give up after {mean:.0} s on average (sd {sd:.0} s)"
        );

        let [catch] = task.catch.as_slice() else {
            panic!("{name}: one Catch")
        };
        assert_eq!(catch.error_equals, ["States.ALL"], "{name}");
        let (fail, error) = if name == COMPLETION {
            ("CompletionFailed".to_owned(), "CompletionFailed".to_owned())
        } else {
            (
                format!("CompensationFailedAt{name}"),
                format!("CompensationFailed.{name}"),
            )
        };
        assert_eq!(catch.next, fail, "{name}");
        let State::Fail(failed) = &machine.states[&fail] else {
            panic!("{fail} is a Fail")
        };
        assert_eq!(failed.error.as_deref(), Some(error.as_str()));
        assert!(
            failed.cause.as_deref().unwrap().starts_with(name),
            "{failed:?}"
        );
    }
}

#[test]
fn only_a_failed_compensation_fails_an_execution() {
    let machine = StateMachine::saga().unwrap();
    let fails: BTreeSet<String> = machine
        .states
        .iter()
        .filter(|(_, s)| matches!(s, State::Fail(_)))
        .map(|(n, _)| n.clone())
        .collect();
    let expected: BTreeSet<String> = COMPENSATION
        .iter()
        .map(|n| format!("CompensationFailedAt{n}"))
        .chain(["CompletionFailed".to_owned()])
        .collect();
    assert_eq!(fails, expected);
    for end in ["MarkFailed", "MarkCancelled"] {
        assert_eq!(
            task(&machine, end).transition,
            Transition::Next("Compensated".into()),
            "a compensated order ends its execution in Succeed"
        );
    }
    let State::Choice(which) = &machine.states["CancelledOrFailed"] else {
        panic!("CancelledOrFailed is a Choice")
    };
    assert_eq!(which.default.as_deref(), Some("MarkFailed"));
    assert_eq!(which.choices[0].next, "MarkCancelled");
    assert!(matches!(machine.states["Compensated"], State::Succeed(_)));
    assert!(matches!(machine.states["Completed"], State::Succeed(_)));
}
