//! The saga, locally: the executor of `workflow/statemachine.asl.json` with the shared step
//! handlers over the SQLite store, its callback Tasks sending on the store's queue table,
//! RequestPayment asking the payment provider over HTTP, all fed by the outbox relay. On AWS
//! the same roles are played by Step Functions, the step Lambda, SQS and the DynamoDB Streams
//! processor.

use super::signals::ExecutorSignaller;
use async_trait::async_trait;
use orders_domain::SagaInput;
use orders_processor::relay::{Relay, RelayOptions};
use orders_processor::{SagaStarter, StartError, Started};
use orders_sqlite::{SqliteStore, StepInOneJob};
use orders_workflow::asl::StateMachine;
use orders_workflow::executor::{ExecError, Executor, ExecutorOptions, StartOutcome, TaskHandler};
use orders_workflow::steps::payment::{PaymentProvider, RequestPayment};
use orders_workflow::steps::{Step, StepSettings};
use std::sync::Arc;

/// Executions admitted at once; the relay waits beyond this (its events stay in the outbox).
const MAX_IN_FLIGHT: usize = 1024;

/// Starts sagas on the in-process executor; the execution name is the outbox event id.
pub struct ExecutorStarter(pub Arc<Executor>);

#[async_trait]
impl SagaStarter for ExecutorStarter {
    async fn start(&self, name: &str, input: &SagaInput) -> Result<Started, StartError> {
        let input = serde_json::to_value(input).map_err(|e| StartError(e.to_string()))?;
        self.0.wait_below(MAX_IN_FLIGHT).await;
        match self.0.start(name, input).await {
            Ok(StartOutcome::Started) => Ok(Started::New),
            Ok(StartOutcome::AlreadyExists) => Ok(Started::AlreadyExists),
            Err(e) => Err(StartError(e.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SagaSetupError {
    #[error("the state machine definition is invalid: {0}")]
    Definition(#[from] orders_workflow::asl::AslError),
    #[error(transparent)]
    Executor(#[from] ExecError),
}

pub struct LocalSaga {
    pub executor: Arc<Executor>,
    pub relay: Relay,
}

/// Builds the executor and the relay over one store; resumes nothing yet. Every step runs as
/// one store job, except that RequestPayment then asks `provider` for the charge.
pub fn build(
    store: Arc<SqliteStore>,
    steps: StepSettings,
    options: ExecutorOptions,
    relay_options: RelayOptions,
    provider: Arc<dyn PaymentProvider>,
) -> Result<LocalSaga, SagaSetupError> {
    let machine = StateMachine::saga()?;
    let in_one_job: Arc<dyn TaskHandler> = Arc::new(StepInOneJob {
        store: store.clone(),
        settings: steps,
    });
    let mut handlers = Step::handlers(in_one_job.clone());
    handlers.insert(
        Step::RequestPayment.substitution(),
        Arc::new(RequestPayment {
            steps: in_one_job,
            provider,
        }),
    );
    let executor = Executor::with_queue(machine, handlers, store.clone(), store.clone(), options)?;
    let relay = relay(&store, &executor, relay_options);
    Ok(LocalSaga { executor, relay })
}

/// The outbox relay of the local stack: starts sagas on `executor` and delivers the task
/// signals (payment results, cancellations) to it.
pub fn relay(store: &Arc<SqliteStore>, executor: &Arc<Executor>, options: RelayOptions) -> Relay {
    Relay {
        source: store.clone(),
        starter: Arc::new(ExecutorStarter(executor.clone())),
        signaller: Arc::new(ExecutorSignaller(executor.clone())),
        signal: store.outbox_signal(),
        options,
    }
}
