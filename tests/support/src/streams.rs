//! Reading real DynamoDB Streams records from moto and wrapping them as the event Lambda
//! delivers, so the processor is tested on what the emulator really emitted, not on fixtures.
//! The Streams API is called over plain HTTP (moto routes it by `X-Amz-Target`), which keeps
//! another SDK crate out of the build.

use serde_json::{Value, json};

async fn streams_call(endpoint: &str, target: &str, body: Value) -> Value {
    let target = format!("DynamoDBStreams_20120810.{target}");
    crate::aws_json::call(endpoint, "dynamodb", &target, &body).await
}

/// Every record on the stream so far, as GetRecords returns them.
pub async fn stream_records(endpoint: &str, stream_arn: &str) -> Vec<Value> {
    let desc = streams_call(endpoint, "DescribeStream", json!({"StreamArn": stream_arn})).await;
    let mut records = Vec::new();
    for shard in desc["StreamDescription"]["Shards"]
        .as_array()
        .expect("shards")
    {
        let iterator = streams_call(
            endpoint,
            "GetShardIterator",
            json!({"StreamArn": stream_arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
        let got = streams_call(
            endpoint,
            "GetRecords",
            json!({"ShardIterator": iterator["ShardIterator"]}),
        )
        .await;
        records.extend(got["Records"].as_array().expect("records").iter().cloned());
    }
    records
}

/// The Lambda event for `records` (Lambda adds the source ARN to each record).
pub fn lambda_event(
    records: &[Value],
    stream_arn: &str,
) -> aws_lambda_events::event::dynamodb::Event {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["eventSourceARN"] = json!(stream_arn);
            r
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("a DynamoDB stream event")
}
