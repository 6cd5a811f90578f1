//! The store contract suite against the DynamoDB store, on moto server: the same cases the
//! SQLite store passes, each on freshly created tables with the catalogue seeded.

mod common;
mod support_dynamodb;

use orders::store::OrderStore;
use orders_aws::moto::{self, MotoSession};
use std::sync::Arc;

async fn dynamodb() -> (Arc<dyn OrderStore>, MotoSession) {
    let moto = moto::session().await;
    let stack = support_dynamodb::stack(&moto, "contract-", |c| c).await;
    (stack.store, moto)
}

store_contract_tests!(dynamodb);
