//! The AWS path, for real against moto server (started on a free loopback port by the
//! support crate): the DynamoDB stores and their contract suites, the API and stream Lambdas,
//! the state machine on moto's Step Functions, the signals and the warehouse worker on moto's
//! Step Functions and SQS, the requests per order.

mod api_lambda;
mod asl_on_moto;
mod aws_requests_per_order;
mod dynamodb_store;
mod identity_cognito;
mod identity_lambda;
mod lambda_boot;
mod processor_streams;
mod redrive_sfn;
mod saga_store_dynamodb;
mod sfn_tokens;
mod store_contract_dynamodb;
mod warehouse_lambda;
