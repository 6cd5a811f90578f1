//! `orders-steps`: every Task state of the saga on Step Functions.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orders_aws::lambda::steps::run().await
}
