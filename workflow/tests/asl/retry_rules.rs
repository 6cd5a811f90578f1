//! The saga's retry and failure rules, pinned: every forward Task retries the Lambda service's
//! own errors and `Transient` and is caught into compensation; every compensation Task retries
//! any error for more than an hour (under full jitter) and then fails into its own
//! `CompensationFailedAt<Step>`; a compensated order's execution succeeds. These are what the
//! `ExecutionsFailed` alarm means ("an operator must act"), so a change to them shows here.

use orders_workflow::asl::{JitterStrategy, State, StateMachine, TaskState, Transition};
use orders_workflow::executor::retry_delay;
use std::collections::BTreeSet;

pub(crate) const FORWARD: [&str; 5] = [
    "ReserveInventory",
    "ProcessPayment",
    "SendNotification",
    "IssueVoucher",
    "MarkCompleted",
];
pub(crate) const COMPENSATION: [&str; 5] = [
    "BeginCompensation",
    "RefundPayment",
    "ReleaseInventory",
    "RestoreVoucher",
    "MarkFailed",
];
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

        let [catch] = task.catch.as_slice() else {
            panic!("{name}: one Catch")
        };
        assert_eq!(catch.error_equals, ["States.ALL"], "{name}");
        let after = match name {
            "SendNotification" => "VoucherEligible",
            "IssueVoucher" => "MarkCompleted",
            _ => "BeginCompensation",
        };
        assert_eq!(catch.next, after, "{name}");
    }
}

/// Under full jitter each retry waits uniformly in `[0, cap]`: the total has mean `sum(cap)/2`
/// and variance `sum(cap^2)/12`. Six standard deviations below the mean is still past an hour,
/// so no draw of the jitter gives up sooner.
#[test]
fn compensation_retries_any_error_for_over_an_hour_then_fails_naming_the_step() {
    let machine = StateMachine::saga().unwrap();
    for name in COMPENSATION {
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
        let fail = format!("CompensationFailedAt{name}");
        assert_eq!(catch.next, fail, "{name}");
        let State::Fail(failed) = &machine.states[&fail] else {
            panic!("{fail} is a Fail")
        };
        let error = format!("CompensationFailed.{name}");
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
        .collect();
    assert_eq!(fails, expected);
    assert_eq!(
        task(&machine, "MarkFailed").transition,
        Transition::Next("Compensated".into()),
        "a compensated order ends its execution in Succeed"
    );
    assert!(matches!(machine.states["Compensated"], State::Succeed(_)));
    assert!(matches!(machine.states["Completed"], State::Succeed(_)));
}
