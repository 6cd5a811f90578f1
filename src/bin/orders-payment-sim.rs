//! `orders-payment-sim`: the payment provider simulator as a Lambda behind a function URL
//! (deployed when the template's `PaymentSimulator` is true).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    orders_aws::lambda::exit(
        "orders-payment-sim",
        orders::payment_sim::lambda::run()
            .await
            .map_err(|e| e.to_string().into()),
    )
}
