//! The store contract suite against the DynamoDB store, on moto server: the same cases the
//! SQLite store passes, each on freshly created tables with the catalogue seeded.

use orders_test_support::dynamodb as support_dynamodb;

use orders_aws::moto::{self, MotoSession};
use orders_domain::store::OrderStore;
use std::sync::Arc;

async fn dynamodb() -> (Arc<dyn OrderStore>, MotoSession) {
    let moto = moto::session().await;
    let stack = support_dynamodb::stack(&moto, "contract-", |c| c).await;
    (stack.store, moto)
}

orders_test_support::store_contract_tests!(dynamodb);
