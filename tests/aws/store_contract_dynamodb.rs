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

/// The lifecycle and events contracts on the same tables: the API's store and the steps' store
/// side by side, the signals and the public events read back from the outbox table.
mod lifecycle {
    use super::support_dynamodb;
    use async_trait::async_trait;
    use aws_sdk_dynamodb::Client;
    use orders_aws::TableNames;
    use orders_aws::dynamodb::attr;
    use orders_aws::dynamodb::{DynamoStepStore, DynamoStore};
    use orders_aws::moto::{self, MotoSession};
    use orders_aws::tables::attrs::outbox;
    use orders_domain::OrderId;
    use orders_domain::event::{OutboxMessage, PublicEvent, SignalEvent};
    use orders_domain::store::OrderStore;
    use orders_test_support::lifecycle_contract::{EventsFixture, LifecycleFixture};
    use orders_test_support::saga_contract::Driver;
    use std::sync::Arc;

    pub(super) struct Dynamo {
        orders: Arc<DynamoStore>,
        steps: Arc<DynamoStepStore>,
        raw: Client,
        names: TableNames,
        _moto: MotoSession,
    }

    pub(super) async fn dynamodb() -> Dynamo {
        let moto = moto::session().await;
        let stack = support_dynamodb::stack(&moto, "lifecycle-", |c| c).await;
        Dynamo {
            steps: Arc::new(DynamoStepStore::new(
                stack.client.clone(),
                stack.names.clone(),
            )),
            orders: stack.store,
            raw: stack.raw,
            names: stack.names,
            _moto: moto,
        }
    }

    impl Dynamo {
        /// The `event` text of every outbox item of the order, in no order (a scan keeps none).
        async fn outbox_events(&self, order: OrderId) -> Vec<String> {
            let scanned = self
                .raw
                .scan()
                .table_name(&self.names.outbox)
                .filter_expression("#o = :o")
                .expression_attribute_names("#o", outbox::ORDER)
                .expression_attribute_values(":o", attr::s(order.to_string()))
                .consistent_read(true)
                .send()
                .await
                .expect("scan the outbox");
            scanned
                .items()
                .iter()
                .map(|item| {
                    attr::get_s(item, outbox::EVENT)
                        .expect("event text")
                        .to_owned()
                })
                .collect()
        }
    }

    #[async_trait]
    impl LifecycleFixture for Dynamo {
        fn orders(&self) -> Arc<dyn OrderStore> {
            self.orders.clone()
        }

        fn steps(&self) -> Driver {
            Driver::Direct(self.steps.clone())
        }

        async fn signals(&self, order: OrderId) -> Vec<SignalEvent> {
            let mut signals: Vec<SignalEvent> = self
                .outbox_events(order)
                .await
                .iter()
                .filter_map(|event| {
                    match OutboxMessage::decode(event.as_bytes()).expect("decodes") {
                        OutboxMessage::Signal(s) => Some(s),
                        OutboxMessage::OrderCreated(_) | OutboxMessage::Published(_) => None,
                    }
                })
                .collect();
            // A scan has no order; the envelope's time is when the write made it.
            signals.sort_by_key(|s| s.time);
            signals
        }
    }

    orders_test_support::lifecycle_contract_tests!(dynamodb);

    /// The public events: the outbox items of the order, by `sequence` (a table keeps no
    /// order of its own).
    #[async_trait]
    impl EventsFixture for Dynamo {
        async fn events(&self, order: OrderId) -> Vec<PublicEvent> {
            let mut events: Vec<PublicEvent> = self
                .outbox_events(order)
                .await
                .into_iter()
                .filter(|event| {
                    let row = OutboxMessage::decode(event.as_bytes()).expect("decodes");
                    !matches!(row, OutboxMessage::Signal(_))
                })
                .map(|event| PublicEvent::decode(event.as_bytes()).expect("a public event"))
                .collect();
            events.sort_by_key(|e| e.sequence_number());
            events
        }
    }

    orders_test_support::events_contract_tests!(dynamodb);
}
