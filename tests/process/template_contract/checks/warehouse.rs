//! The warehouse queue and its worker: PrepareShipment's queue is the stack's SQS queue,
//! encrypted at rest, redriving to a dead-letter queue whose depth is alarmed, and the queue
//! worker consumes exactly that queue, reporting failures per message
//! (`ReportBatchItemFailures`), so one bad request never redelivers the batch.

use super::Code;
use crate::template_contract::model::{Template, prop, reference, referenced_id, str_of};
use serde_json::{Value, json};

/// The logical id of the warehouse queue, and the ASL's substitution for its URL.
pub const WAREHOUSE_QUEUE: &str = "WarehouseQueue";
pub const WAREHOUSE_QUEUE_SUBSTITUTION: &str = "WarehouseQueueUrl";

pub fn check(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let Some(queue) = t.resource(WAREHOUSE_QUEUE) else {
        problems.push(format!("the warehouse queue {WAREHOUSE_QUEUE} is missing"));
        return;
    };
    if t.type_of(WAREHOUSE_QUEUE) != Some("AWS::SQS::Queue") {
        problems.push(format!("{WAREHOUSE_QUEUE} is not an AWS::SQS::Queue"));
    }
    let encrypted = |q: &Value| {
        prop(q, "SqsManagedSseEnabled") == Some(&json!(true)) || prop(q, "KmsMasterKeyId").is_some()
    };
    if !encrypted(queue) {
        problems.push(format!("{WAREHOUSE_QUEUE} is not encrypted at rest"));
    }
    let dlq = prop(queue, "RedrivePolicy")
        .and_then(|r| r.get("deadLetterTargetArn"))
        .map(reference);
    let dlq_id = dlq
        .as_deref()
        .filter(|r| r.ends_with(".Arn}"))
        .and_then(referenced_id)
        .filter(|id| t.type_of(id) == Some("AWS::SQS::Queue"));
    let max_receives = prop(queue, "RedrivePolicy")
        .and_then(|r| r.get("maxReceiveCount"))
        .and_then(Value::as_i64);
    match (dlq_id, max_receives) {
        (Some(id), Some(1..=100)) => {
            if t.resource(id).is_some_and(|q| !encrypted(q)) {
                problems.push(format!("the warehouse DLQ {id} is not encrypted at rest"));
            }
            if !depth_alarmed(t, id) {
                problems.push(format!("no alarm on the depth of the warehouse DLQ {id}"));
            }
        }
        _ => problems.push(format!(
            "{WAREHOUSE_QUEUE}: RedrivePolicy must send to a DLQ of the stack after 1-100 receives (got {dlq:?}, {max_receives:?})"
        )),
    }

    let worker = code.queue_worker;
    let Some(function) = t.resource(worker) else {
        return; // reported by functions::check
    };
    let events: Vec<&Value> = prop(function, "Events")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(_, e)| e)
        .filter(|e| str_of(e.get("Type")) == Some("SQS"))
        .collect();
    let queues: Vec<String> = events
        .iter()
        .filter_map(|e| e.pointer("/Properties/Queue"))
        .map(reference)
        .collect();
    let want = format!("${{{WAREHOUSE_QUEUE}.Arn}}");
    if queues != [want.clone()] {
        problems.push(format!(
            "{worker}: consumes queues {queues:?}, expected [{want}]"
        ));
    }
    for event in events {
        if event.pointer("/Properties/FunctionResponseTypes")
            != Some(&json!(["ReportBatchItemFailures"]))
        {
            problems.push(format!(
                "{worker}'s SQS event: FunctionResponseTypes must be [ReportBatchItemFailures]"
            ));
        }
    }
    // Lambda's SQS event source wants the visibility timeout at least the function's timeout
    // (six times, recommended), or a message is delivered again while it is being packed.
    let timeout = t.function_prop(function, "Timeout").and_then(Value::as_i64);
    let visibility = prop(queue, "VisibilityTimeout")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    if timeout.is_none_or(|s| visibility < 6 * s) {
        problems.push(format!(
            "{WAREHOUSE_QUEUE}: VisibilityTimeout {visibility} is under six times {worker}'s Timeout {timeout:?}"
        ));
    }
}

/// Whether an alarm watches the depth of `queue` (its visible messages).
pub fn depth_alarmed(t: &Template, queue: &str) -> bool {
    let want = format!("${{{queue}.QueueName}}");
    t.of_type("AWS::CloudWatch::Alarm").iter().any(|(_, a)| {
        str_of(prop(a, "Namespace")) == Some("AWS/SQS")
            && str_of(prop(a, "MetricName")) == Some("ApproximateNumberOfMessagesVisible")
            && prop(a, "Dimensions")
                .and_then(Value::as_array)
                .is_some_and(|ds| {
                    ds.iter().any(|d| {
                        str_of(d.get("Name")) == Some("QueueName")
                            && d.get("Value").map(reference).as_deref() == Some(want.as_str())
                    })
                })
    })
}
