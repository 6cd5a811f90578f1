//! `orders-processor`: the DynamoDB Streams Lambda of the outbox table.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orders_aws::lambda::stream::run().await
}
