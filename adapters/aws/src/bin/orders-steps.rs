//! `orders-steps`: every Task state of the saga on Step Functions.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    orders_aws::lambda::exit("orders-steps", orders_aws::lambda::steps::run().await)
}
