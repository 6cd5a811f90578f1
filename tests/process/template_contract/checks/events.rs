//! The domain events on EventBridge: the stack's one custom bus (the one the processor's
//! `ORDERS_EVENT_BUS_NAME` names and its only events grant, `PutEvents`, is on: both checked in
//! `functions`), its archive, and the example rule: the pattern matches the publisher's Source
//! and exactly the `order.*` types, its one target is the example queue with a dead-letter
//! queue, both encrypted, and each queue's policy lets only EventBridge send, and only for
//! that rule. The outputs name the bus and the queue.

use super::Code;
use super::warehouse::depth_alarmed;
use crate::template_contract::model::{Template, one_or_many, prop, reference};
use orders_aws::eventbridge::SOURCE;
use orders_domain::EventType;
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub const EVENT_BUS: &str = "EventBus";
pub const ARCHIVE: &str = "EventArchive";
pub const RULE: &str = "EventsExampleRule";
pub const QUEUE: &str = "EventsExampleQueue";
/// The parameter of the archive's retention, and its default.
pub const RETENTION_PARAMETER: &str = "EventArchiveRetentionDays";
const RETENTION_DEFAULT: i64 = 30;

pub fn check(t: &Template, _: &Code, problems: &mut Vec<String>) {
    let buses: Vec<&str> = t
        .of_type("AWS::Events::EventBus")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if buses != [EVENT_BUS] {
        problems.push(format!(
            "the stack must have one event bus, {EVENT_BUS}; it has {buses:?}"
        ));
    }
    if let Some(bus) = t.resource(EVENT_BUS) {
        let name = prop(bus, "Name").map(reference).unwrap_or_default();
        if !name.contains("${AWS::StackName}") {
            problems.push(format!(
                "{EVENT_BUS}: Name {name:?} is not made from the stack's name"
            ));
        }
    }
    check_archive(t, problems);
    check_rule(t, problems);
    let outputs = [
        ("EventBusName", format!("${{{EVENT_BUS}}}")),
        ("EventBusArn", format!("${{{EVENT_BUS}.Arn}}")),
        ("EventsExampleQueueUrl", format!("${{{QUEUE}}}")),
    ];
    for (name, want) in outputs {
        let got = t.output(name).map(reference);
        if got.as_deref() != Some(want.as_str()) {
            problems.push(format!("output {name} is {got:?}, expected {want}"));
        }
    }
}

fn check_archive(t: &Template, problems: &mut Vec<String>) {
    let bus = format!("${{{EVENT_BUS}.Arn}}");
    let archives = t.of_type("AWS::Events::Archive");
    let on_bus: Vec<&str> = archives
        .iter()
        .filter(|(_, a)| prop(a, "SourceArn").map(reference).as_deref() == Some(bus.as_str()))
        .map(|(id, _)| *id)
        .collect();
    if on_bus != [ARCHIVE] {
        problems.push(format!(
            "the archive {ARCHIVE} must archive the bus (SourceArn {bus}); archives on it: {on_bus:?}"
        ));
        return;
    }
    let Some(archive) = t.resource(ARCHIVE) else {
        return;
    };
    if prop(archive, "EventPattern").is_some() {
        problems.push(format!(
            "{ARCHIVE} has an EventPattern: it must keep every event of the bus"
        ));
    }
    let retention = prop(archive, "RetentionDays");
    let default =
        t.0.pointer(&format!("/Parameters/{RETENTION_PARAMETER}/Default"));
    if retention != Some(&json!({"Ref": RETENTION_PARAMETER}))
        || default.and_then(Value::as_i64) != Some(RETENTION_DEFAULT)
    {
        problems.push(format!(
            "{ARCHIVE}: RetentionDays must be !Ref {RETENTION_PARAMETER} (Default {RETENTION_DEFAULT}), got {retention:?} with Default {default:?}"
        ));
    }
}

/// What a rule's `detail-type` filters accept of `value`; a filter of another kind is `Err`.
fn accepts(filters: &[Value], value: &str) -> Result<bool, String> {
    let mut accepted = false;
    for filter in filters {
        accepted |= match filter {
            Value::String(s) => s == value,
            Value::Object(o) if o.len() == 1 && o.get("prefix").is_some_and(Value::is_string) => {
                value.starts_with(o["prefix"].as_str().unwrap_or_default())
            }
            other => return Err(format!("filter {other} is not a string or a prefix")),
        };
    }
    Ok(accepted)
}

fn check_rule(t: &Template, problems: &mut Vec<String>) {
    let Some(rule) = t.resource(RULE) else {
        problems.push(format!("the example rule {RULE} is missing"));
        return;
    };
    let bus = prop(rule, "EventBusName").map(reference);
    if !matches!(bus.as_deref(), Some(b) if b == format!("${{{EVENT_BUS}}}") || b == format!("${{{EVENT_BUS}.Arn}}"))
    {
        problems.push(format!(
            "{RULE}: EventBusName is {bus:?}, expected the stack's bus {EVENT_BUS}"
        ));
    }
    let pattern = prop(rule, "EventPattern");
    let source = pattern.and_then(|p| p.get("source"));
    if source != Some(&json!([SOURCE])) {
        problems.push(format!(
            "{RULE}: the pattern's source is {source:?}, expected [{SOURCE:?}] (what the publisher sends)"
        ));
    }
    let filters = pattern
        .and_then(|p| p.get("detail-type"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let want: BTreeSet<&str> = EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .filter(|e| e.starts_with("order."))
        .collect();
    let mut got = BTreeSet::new();
    for kind in EventType::ALL.map(EventType::as_str) {
        match accepts(&filters, kind) {
            Ok(true) => {
                got.insert(kind);
            }
            Ok(false) => {}
            Err(why) => {
                problems.push(format!("{RULE}: detail-type {why}"));
                return;
            }
        }
    }
    if got != want {
        problems.push(format!(
            "{RULE}: the pattern's detail-type matches {got:?}, expected the order.* types {want:?}"
        ));
    }

    let targets: Vec<&Value> = one_or_many(prop(rule, "Targets")).collect();
    let arns: Vec<String> = targets
        .iter()
        .map(|tg| tg.get("Arn").map(reference).unwrap_or_default())
        .collect();
    let queue_arn = format!("${{{QUEUE}.Arn}}");
    if arns != [queue_arn.clone()] {
        problems.push(format!(
            "{RULE}: targets {arns:?}, expected the example queue [{queue_arn}]"
        ));
        return;
    }
    let dlq = targets[0]
        .pointer("/DeadLetterConfig/Arn")
        .map(reference)
        .and_then(|r| Some(r.strip_prefix("${")?.strip_suffix(".Arn}")?.to_owned()));
    let dlq = match dlq {
        Some(id) if t.type_of(&id) == Some("AWS::SQS::Queue") && id != QUEUE => id,
        other => {
            problems.push(format!(
                "{RULE}: its target has no DeadLetterConfig on a queue of the stack (got {other:?})"
            ));
            return;
        }
    };
    for queue in [QUEUE, dlq.as_str()] {
        check_queue(t, queue, problems);
    }
    if !depth_alarmed(t, &dlq) {
        problems.push(format!(
            "no alarm on the depth of the example rule's DLQ {dlq}"
        ));
    }
}

/// An EventBridge target queue: encrypted, and sent to only by EventBridge for [`RULE`].
fn check_queue(t: &Template, queue: &str, problems: &mut Vec<String>) {
    let Some(q) = t.resource(queue) else {
        problems.push(format!("queue {queue} is missing"));
        return;
    };
    let encrypted = prop(q, "SqsManagedSseEnabled") == Some(&json!(true))
        || prop(q, "KmsMasterKeyId").is_some();
    if !encrypted {
        problems.push(format!("{queue} is not encrypted at rest"));
    }
    let url = format!("${{{queue}}}");
    let policies: Vec<(&str, &Value)> = t
        .of_type("AWS::SQS::QueuePolicy")
        .into_iter()
        .filter(|(_, p)| one_or_many(prop(p, "Queues")).any(|q| reference(q) == url))
        .collect();
    let [(id, policy)] = policies.as_slice() else {
        let ids: Vec<&str> = policies.iter().map(|(id, _)| *id).collect();
        problems.push(format!(
            "{queue} must have one queue policy, it has {ids:?}"
        ));
        return;
    };
    let queues: Vec<String> = one_or_many(prop(policy, "Queues")).map(reference).collect();
    if queues != [url] {
        problems.push(format!(
            "queue policy {id} applies to {queues:?}, not to {queue} alone"
        ));
    }
    let want = json!({
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": format!("${{{queue}.Arn}}"),
        "Condition": {"ArnEquals": {"aws:SourceArn": format!("${{{RULE}.Arn}}")}},
    });
    let statements: Vec<Value> =
        one_or_many(policy.pointer("/Properties/PolicyDocument/Statement"))
            .map(canonical_statement)
            .collect();
    if statements != [want.clone()] {
        problems.push(format!(
            "queue policy {id}: its statements {statements:?} must be exactly {want} (only EventBridge, only for {RULE})"
        ));
    }
}

/// A statement with every reference in its canonical `${...}` spelling and one-item lists
/// unwrapped, so that the way the template writes it does not matter.
fn canonical_statement(statement: &Value) -> Value {
    fn canon(v: &Value) -> Value {
        match v {
            Value::Object(o) if o.contains_key("Ref") || o.contains_key("Fn::GetAtt") => {
                Value::String(reference(v))
            }
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), canon(v))).collect())
            }
            Value::Array(items) if items.len() == 1 => canon(&items[0]),
            Value::Array(items) => Value::Array(items.iter().map(canon).collect()),
            other => other.clone(),
        }
    }
    canon(statement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_type_filters_are_strings_and_prefixes() {
        let filters = [json!("order.shipped"), json!({"prefix": "voucher."})];
        assert_eq!(accepts(&filters, "order.shipped"), Ok(true));
        assert_eq!(accepts(&filters, "voucher.issued"), Ok(true));
        assert_eq!(accepts(&filters, "order.created"), Ok(false));
        assert!(accepts(&[json!({"anything-but": "x"})], "order.created").is_err());
    }
}
