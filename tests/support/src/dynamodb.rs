//! What the DynamoDB store tests share: the store on freshly created emulator tables with the
//! catalogue seeded, its requests handed to the emulator one at a time.
//!
//! `orders_aws::moto` explains why the emulator gets its requests one at a time.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Builder;
use orders_aws::TableNames;
use orders_aws::dynamodb::DynamoStore;
use orders_aws::moto::MotoSession;
use std::sync::Arc;

pub struct Stack {
    pub store: Arc<DynamoStore>,
    /// The client the store is built on, for another store that must go through the same
    /// interceptors (the steps' store of a test counting requests, say).
    pub client: Client,
    /// A client of the same emulator for looking at the tables directly.
    pub raw: Client,
    pub names: TableNames,
}

/// Creates the tables named `<prefix><table>`, seeds the catalogue, and builds the store on a
/// client that `configure` may extend (an interceptor, say).
pub async fn stack(
    moto: &MotoSession,
    prefix: &str,
    configure: impl FnOnce(Builder) -> Builder,
) -> Stack {
    let sdk = moto.sdk_config().await;
    let raw = Client::new(&sdk);
    let names = TableNames::with_prefix(prefix);
    orders_aws::provision::create_tables(&raw, &names)
        .await
        .unwrap();
    let client = Client::from_conf(configure(Builder::from(&sdk)).build());
    let store = DynamoStore::new(client.clone(), names.clone());
    store.seed_catalogue(chrono::Utc::now()).await.unwrap();
    Stack {
        store: Arc::new(store),
        client,
        raw,
        names,
    }
}
