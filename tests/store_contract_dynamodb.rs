//! The store contract suite against the DynamoDB store, on moto server: the same cases the
//! SQLite store passes, each on freshly created tables with the catalogue seeded.

mod common;

use orders::store::OrderStore;
use orders::store::dynamodb::DynamoStore;
use orders_aws::moto::{self, MotoSession};
use orders_aws::{TableNames, tables};
use std::sync::Arc;

async fn dynamodb() -> (Arc<dyn OrderStore>, MotoSession) {
    let moto = moto::session().await;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let names = TableNames::with_prefix("contract-");
    tables::create_tables(&client, &names).await.unwrap();
    let store = DynamoStore::new(client, names);
    store.seed_catalogue(chrono::Utc::now()).await.unwrap();
    (Arc::new(store), moto)
}

store_contract_tests!(dynamodb);
