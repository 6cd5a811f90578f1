//! `orders-warehouse`: the warehouse worker on the warehouse queue (SQS event source).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    orders_aws::lambda::exit(
        "orders-warehouse",
        orders_aws::lambda::warehouse::run().await,
    )
}
