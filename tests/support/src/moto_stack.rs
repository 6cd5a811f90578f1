//! The AWS runtime on moto for the tests that follow an order past the API (the stream
//! processor, the requests one order costs): the DynamoDB stack of [`crate::dynamodb`], the
//! ARN of the outbox's stream the processor is fed from, and the saga's state machine as it is
//! deployed, every Task on the step function.
//!
//! The tests create the state machine themselves from [`saga_definition`], on the Step
//! Functions client they also start executions with; this crate builds no such client.

use crate::dynamodb::{self, Stack};
use aws_sdk_dynamodb::config::Builder;
use orders_aws::moto::MotoSession;
use orders_workflow::asl;
use std::collections::BTreeMap;

/// The one function every Task of the deployed saga invokes. moto never looks it up (it echoes
/// a Task's input), so it need not exist.
pub const STEPS_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:orders-steps";
/// The state machine's name as deployed.
pub const SAGA_NAME: &str = "orders-saga";
/// The role the state machine runs as; moto checks only its form.
pub const SAGA_ROLE: &str = "arn:aws:iam::123456789012:role/orders-saga";

pub struct MotoStack {
    /// Held for the whole test: the emulator's state is global (see `orders_aws::moto`).
    pub moto: MotoSession,
    pub dynamodb: Stack,
    pub stream_arn: String,
}

/// Takes this process's emulator, creates the tables named `<prefix><table>` with the
/// catalogue seeded, the store on a client that `configure` may extend (as
/// [`dynamodb::stack`] does), and reads the outbox stream's ARN.
pub async fn stack(prefix: &str, configure: impl FnOnce(Builder) -> Builder) -> MotoStack {
    let moto = orders_aws::moto::session().await;
    let dynamodb = dynamodb::stack(&moto, prefix, configure).await;
    let stream_arn = dynamodb
        .raw
        .describe_table()
        .table_name(&dynamodb.names.outbox)
        .send()
        .await
        .unwrap()
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("the outbox has a stream")
        .to_owned();
    MotoStack {
        moto,
        dynamodb,
        stream_arn,
    }
}

/// Creates the saga's state machine on `sfn` as deployed; returns its ARN.
pub async fn create_saga(sfn: &aws_sdk_sfn::Client) -> String {
    sfn.create_state_machine()
        .name(SAGA_NAME)
        .role_arn(SAGA_ROLE)
        .definition(saga_definition())
        .send()
        .await
        .expect("moto accepts the substituted state machine")
        .state_machine_arn()
        .to_owned()
}

/// The saga's definition with its function ARNs substituted as the deployment does.
pub fn saga_definition() -> String {
    let values: BTreeMap<String, String> = asl::substitution_names(asl::DEFINITION)
        .into_iter()
        .map(|name| (name, STEPS_ARN.to_owned()))
        .collect();
    asl::substitute(asl::DEFINITION, &values).expect("every placeholder has a value")
}
