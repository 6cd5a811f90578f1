//! Faults of the platform rather than of the order, run through the real saga definition:
//! the Lambda service's own errors are retried on every task, a compensation step that keeps
//! failing ends the execution in its `CompensationFailed.<step>` Fail state (the one way an
//! execution fails), and a compensated order's execution succeeds.
//!
//! Compensation retries for hours of backoff, so these tests scale delays by 1e-5: 60 retries
//! capped at 300 s then take well under a second.

use super::helpers::*;

const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];
const FORWARD: [&str; 6] = [
    "ReserveInventory",
    "RequestPayment",
    "SendNotification",
    "MarkShipped",
    "IssueVoucher",
    "MarkCompleted",
];

fn tiny_delays() -> ExecutorOptions {
    ExecutorOptions {
        delay_scale: 0.000_01,
        ..ExecutorOptions::default()
    }
}

/// Fails the first two attempts with `error`, then answers as the step would.
fn twice(
    error: &'static str,
) -> impl Fn(&Value, &TaskContext) -> Result<Value, TaskError> + Send + Sync {
    move |input, c| {
        if c.attempt <= 2 {
            Err(TaskError::new(error, "Rate exceeded"))
        } else {
            Ok(json!({"done": input["step"]}))
        }
    }
}

#[tokio::test]
async fn each_lambda_service_error_is_retried_on_every_forward_task() {
    for error in LAMBDA_SERVICE_ERRORS {
        for step in FORWARD {
            let saga = Saga::default().script(step, twice(error));
            // Over 100.00, so IssueVoucher runs too.
            let (snapshot, history) = run_saga_with(&saga, order(20_000), tiny_delays()).await;
            assert_eq!(
                (snapshot.status, snapshot.state.as_str()),
                (ExecutionStatus::Succeeded, "Completed"),
                "{step} after {error}"
            );
            let attempts: Vec<u32> = saga.calls(step).iter().map(|c| c.attempt).collect();
            assert_eq!(attempts, [1, 2, 3], "{step} after {error}");
            assert_eq!(
                events(&history, Kind::RetryScheduled, step).len(),
                2,
                "{step} after {error}"
            );
            assert!(
                saga.calls("BeginCompensation").is_empty(),
                "{step}: {error} must not compensate a good order"
            );
        }
    }
}

#[tokio::test]
async fn lambda_service_errors_in_compensation_are_retried_and_it_completes() {
    for error in LAMBDA_SERVICE_ERRORS {
        let saga = Saga::default()
            .script("RequestPayment", |_, _| {
                Err(TaskError::new("PaymentDeclined", "card declined"))
            })
            .script("ReleaseInventory", twice(error));
        let (snapshot, _) = run_saga_with(&saga, order(5_000), tiny_delays()).await;
        assert_eq!(saga.calls("ReleaseInventory").len(), 3, "{error}");
        assert_eq!(saga.calls("MarkFailed").len(), 1, "{error}");
        assert_eq!(
            (snapshot.status, snapshot.state.as_str()),
            (ExecutionStatus::Succeeded, "Compensated"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_compensation_step_failing_for_good_ends_in_compensation_failed_naming_it() {
    let saga = Saga::default()
        .script("RequestPayment", |_, _| {
            Err(TaskError::new("PaymentDeclined", "card declined"))
        })
        .script("RefundPayment", |_, _| {
            Err(TaskError::new(
                "Lambda.ServiceException",
                "service unavailable",
            ))
        });
    let (snapshot, history) = run_saga_with(&saga, order(5_000), tiny_delays()).await;
    assert_eq!(
        saga.calls("RefundPayment").len(),
        61,
        "1 attempt + MaxAttempts 60"
    );
    assert_eq!(
        events(&history, Kind::RetryScheduled, "RefundPayment").len(),
        60
    );
    assert!(
        saga.calls("ReleaseInventory").is_empty() && saga.calls("MarkFailed").is_empty(),
        "nothing after the stuck step runs: {:?}",
        saga.states_called()
    );
    assert_eq!(snapshot.status, ExecutionStatus::Failed);
    assert_eq!(snapshot.state, "CompensationFailedAtRefundPayment");
    assert_eq!(
        snapshot.error.as_deref(),
        Some("CompensationFailed.RefundPayment")
    );
    assert!(
        snapshot
            .cause
            .as_deref()
            .unwrap()
            .starts_with("RefundPayment"),
        "{:?}",
        snapshot.cause
    );
    let output = snapshot.output.unwrap_or_default();
    assert!(
        output.is_null(),
        "a failed execution has no output: {output}"
    );
}

#[tokio::test]
async fn every_compensation_step_has_its_own_failure() {
    for step in COMPENSATION {
        let saga = Saga::default()
            .script("ReserveInventory", |_, _| {
                Err(TaskError::new("OutOfStock", "none left"))
            })
            .script(step, |_, _| Err(TaskError::new("Bug", "always fails")));
        let (snapshot, _) = run_saga_with(&saga, order(5_000), tiny_delays()).await;
        assert_eq!(snapshot.status, ExecutionStatus::Failed, "{step}");
        assert_eq!(snapshot.state, format!("CompensationFailedAt{step}"));
        assert_eq!(
            snapshot.error,
            Some(format!("CompensationFailed.{step}")),
            "{step}"
        );
    }
}
