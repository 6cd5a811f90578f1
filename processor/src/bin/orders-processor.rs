//! `orders-processor`: the DynamoDB Streams Lambda of the outbox table (see `stream`).

use lambda_runtime::{LambdaEvent, service_fn};
use orders_processor::sfn::StepFunctionsStarter;
use orders_processor::{SagaStarter, stream};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orders_aws::init_lambda_logs();
    let arn = orders_processor::state_machine_arn_from_env()?;
    let sdk = orders_aws::load_sdk_config().await;
    let starter: Arc<dyn SagaStarter> = Arc::new(StepFunctionsStarter::new(
        aws_sdk_sfn::Client::new(&sdk),
        arn,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        let starter = starter.clone();
        async move { Ok::<_, lambda_runtime::Error>(stream::handle_batch(event.payload, starter).await) }
    }))
    .await
}
