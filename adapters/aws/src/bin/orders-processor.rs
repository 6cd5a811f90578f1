//! `orders-processor`: the DynamoDB Streams Lambda of the outbox table.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    orders_aws::lambda::exit("orders-processor", orders_aws::lambda::stream::run().await)
}
