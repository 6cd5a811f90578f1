//! The table contract creates cleanly on the emulator, with the stream and TTL it promises.

use orders_aws::{TABLES, TableNames, moto};

#[tokio::test]
async fn every_table_of_the_contract_is_created_with_its_stream_and_ttl() {
    let moto = moto::session().await;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let names = TableNames::with_prefix("t-");
    orders_aws::provision::create_tables(&client, &names)
        .await
        .unwrap();
    for spec in TABLES {
        let desc = client
            .describe_table()
            .table_name(names.name_of(spec))
            .send()
            .await
            .unwrap();
        let table = desc.table().unwrap();
        let keys: Vec<&str> = table
            .key_schema()
            .iter()
            .map(|k| k.attribute_name())
            .collect();
        let mut want = vec![spec.partition_key];
        want.extend(spec.sort_key);
        assert_eq!(keys, want, "{}", spec.logical);
        assert_eq!(
            table.global_secondary_indexes().len(),
            spec.indexes.len(),
            "{}",
            spec.logical
        );
        assert_eq!(
            table.latest_stream_arn().is_some(),
            spec.stream_new_image,
            "{}",
            spec.logical
        );
    }
    let ttl = client
        .describe_time_to_live()
        .table_name(&names.idempotency)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expiration")
    );
}
