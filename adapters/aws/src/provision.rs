//! Provisioning: creates the tables of the contract ([`crate::tables`]) on the emulator for tests
//! and local set-ups. On AWS the template creates them; `tests/` holds the template to the same
//! contract.

use crate::sdk::describe;
use crate::tables::{TABLES, TableNames};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

/// Creates every table as the spec says (on-demand billing), then enables TTL where one is
/// named. For tests against the emulator and for local set-ups; on AWS the template does this.
pub async fn create_tables(client: &Client, names: &TableNames) -> Result<(), String> {
    for spec in TABLES {
        let name = names.name_of(spec);
        let mut attrs = vec![spec.partition_key];
        attrs.extend(spec.sort_key);
        for ix in spec.indexes {
            attrs.push(ix.partition_key);
            attrs.extend(ix.sort_key);
        }
        attrs.sort_unstable();
        attrs.dedup();
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(key_schema(spec.partition_key, spec.sort_key)));
        for a in attrs {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(a)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        for ix in spec.indexes {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(ix.name)
                    .set_key_schema(Some(key_schema(ix.partition_key, ix.sort_key)))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        if spec.stream_new_image {
            req = req.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        req.send()
            .await
            .map_err(|e| format!("create table {name}: {}", describe(&e)))?;
        if let Some(attr) = spec.ttl_attribute {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(attr)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .send()
                .await
                .map_err(|e| format!("enable TTL on {name}: {}", describe(&e)))?;
        }
    }
    Ok(())
}

fn key_schema(pk: &str, sk: Option<&str>) -> Vec<KeySchemaElement> {
    let el = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("name and type set")
    };
    let mut v = vec![el(pk, KeyType::Hash)];
    v.extend(sk.map(|s| el(s, KeyType::Range)));
    v
}
