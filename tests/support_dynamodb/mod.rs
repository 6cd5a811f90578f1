//! What the DynamoDB store tests share: the store on freshly created emulator tables with the
//! catalogue seeded, its requests handed to the emulator one at a time.
//!
//! Why one at a time: moto serves requests on parallel threads, but its TransactWriteItems is
//! not isolated. It checks each condition and writes without a lock, and a cancelled
//! transaction restores deep copies of the whole tables taken when it began, erasing whatever
//! other transactions committed meanwhile. So with concurrent requests moto lets several
//! same-key transactions pass `attribute_not_exists(id)`, then rolls their writes back and
//! forth. DynamoDB runs transactions serializably (a concurrent transaction on the same item
//! is cancelled with `TransactionConflict`), which is the guarantee the store builds on.
//! Serializing requests at the HTTP client gives the emulator that isolation (strictly more of
//! it), so a concurrency test checks the store's decisions rather than the emulator's races.
//! What it cannot show is a real `TransactionConflict`: the unit tests of the cancellation
//! decoding cover how the store answers one.
#![allow(dead_code)]

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Builder, RuntimeComponents};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use orders::store::dynamodb::DynamoStore;
use orders_aws::moto::MotoSession;
use orders_aws::{TableNames, tables};
use std::sync::Arc;
use tokio::sync::Mutex;

/// One turn for the whole process, because the process has one emulator.
static TURN: Mutex<()> = Mutex::const_new(());

#[derive(Debug)]
struct Serial(SharedHttpClient);

impl HttpClient for Serial {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(SerialConnector(self.0.http_connector(settings, components)))
    }
}

#[derive(Debug)]
struct SerialConnector(SharedHttpConnector);

impl HttpConnector for SerialConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            // Held until the response arrives: moto has finished the request by then.
            let _turn = TURN.lock().await;
            inner.call(request).await
        })
    }
}

pub struct Stack {
    pub store: Arc<DynamoStore>,
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
    // The SDK's own default client (hyper 1, rustls on aws-lc), its requests serialized as the
    // module docs explain.
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    let sdk = sdk.to_builder().http_client(Serial(http)).build();
    let raw = Client::new(&sdk);
    let names = TableNames::with_prefix(prefix);
    tables::create_tables(&raw, &names).await.unwrap();
    let client = Client::from_conf(configure(Builder::from(&sdk)).build());
    let store = DynamoStore::new(client, names.clone());
    store.seed_catalogue(chrono::Utc::now()).await.unwrap();
    Stack {
        store: Arc::new(store),
        raw,
        names,
    }
}
