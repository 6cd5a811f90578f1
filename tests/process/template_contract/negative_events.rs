//! The checker can fail on the domain events' bus, archive and example rule: one fact
//! changed at a time, each named in a problem.

use super::negative::{RES, at, remove, reports_after, set};
use serde_json::json;

const PROCESSOR_ENV: &str = "ProcessorFunction/Properties/Environment/Variables";
/// The processor role's `events` policy (the last of its policies).
const EVENTS_GRANT: &str = "ProcessorFunctionRole/Properties/Policies/5/PolicyDocument/Statement/0";
const RULE: &str = "EventsExampleRule/Properties";
const QUEUE_POLICY: &str = "EventsExampleQueuePolicy/Properties/PolicyDocument/Statement/0";

#[test]
fn the_processor_publishes_to_the_stack_s_bus() {
    reports_after(
        set(
            &format!("{PROCESSOR_ENV}/ORDERS_EVENT_BUS_NAME"),
            json!("orders-events"),
        ),
        &[
            "function ProcessorFunction",
            "ORDERS_EVENT_BUS_NAME is orders-events",
            "${EventBus}",
        ],
    );
    reports_after(
        remove(&format!("{PROCESSOR_ENV}/ORDERS_EVENT_BUS_NAME")),
        &["function ProcessorFunction: environment"],
    );
    reports_after(
        |t| {
            let bus = at(t, &format!("{RES}/EventBus")).clone();
            at(t, RES)["OtherBus"] = bus;
        },
        &["one event bus, EventBus", "OtherBus"],
    );
    reports_after(
        set("EventBus/Properties/Name", json!("orders-events")),
        &["EventBus: Name", "stack's name"],
    );
}

#[test]
fn its_only_events_permission_is_put_events_on_that_bus() {
    // The pointer addresses the events policy, not another one.
    let t = super::load(&super::root().join("infra/template.yaml"));
    let grant = t.pointer(&format!("{RES}/{EVENTS_GRANT}/Action"));
    assert_eq!(grant, Some(&json!("events:PutEvents")));

    reports_after(
        set(&format!("{EVENTS_GRANT}/Resource"), json!("*")),
        &["ProcessorFunction", "granted events:PutEvents on *"],
    );
    reports_after(
        set(&format!("{EVENTS_GRANT}/Resource"), json!("*")),
        &[
            "ProcessorFunction",
            "lacks events:PutEvents on ${EventBus.Arn}",
        ],
    );
    reports_after(
        set(
            &format!("{EVENTS_GRANT}/Action"),
            json!(["events:PutEvents", "events:PutRule"]),
        ),
        &[
            "ProcessorFunction",
            "granted events:PutRule on ${EventBus.Arn}",
        ],
    );
    reports_after(
        |t| {
            let policies = at(
                t,
                &format!("{RES}/ProcessorFunctionRole/Properties/Policies"),
            );
            policies.as_array_mut().unwrap().remove(5);
        },
        &["ProcessorFunction", "lacks events:PutEvents"],
    );
}

#[test]
fn the_archive_is_on_the_bus_and_keeps_every_event() {
    reports_after(
        set(
            "EventArchive/Properties/SourceArn",
            json!("arn:aws:events:us-east-1:123456789012:event-bus/default"),
        ),
        &["archive EventArchive must archive the bus"],
    );
    reports_after(
        |t| {
            let archive = at(t, &format!("{RES}/EventArchive/Properties"));
            archive["EventPattern"] = json!({"source": ["orders"]});
        },
        &["EventArchive has an EventPattern"],
    );
    reports_after(
        set("EventArchive/Properties/RetentionDays", json!(7)),
        &["EventArchive: RetentionDays", "EventArchiveRetentionDays"],
    );
    reports_after(
        |t| *at(t, "/Parameters/EventArchiveRetentionDays/Default") = json!(0),
        &["EventArchive: RetentionDays", "Default 30"],
    );
}

#[test]
fn the_rule_matches_the_publisher_s_source_and_the_order_types() {
    reports_after(
        set(
            &format!("{RULE}/EventPattern/source"),
            json!(["orders.service"]),
        ),
        &["EventsExampleRule", "source", "\"orders\""],
    );
    reports_after(
        set(
            &format!("{RULE}/EventPattern/detail-type"),
            json!([{"prefix": ""}]),
        ),
        &["EventsExampleRule", "detail-type matches", "voucher.issued"],
    );
    reports_after(
        set(
            &format!("{RULE}/EventPattern/detail-type"),
            json!(["order.created", "order.shipped"]),
        ),
        &["EventsExampleRule", "expected the order.* types"],
    );
    reports_after(
        set(&format!("{RULE}/EventBusName"), json!("default")),
        &["EventsExampleRule: EventBusName"],
    );
}

#[test]
fn the_rule_s_target_is_the_queue_and_only_eventbridge_may_send_for_that_rule() {
    reports_after(
        set(
            &format!("{RULE}/Targets/0/Arn"),
            json!({"Fn::GetAtt": ["WarehouseQueue", "Arn"]}),
        ),
        &["EventsExampleRule: targets", "${EventsExampleQueue.Arn}"],
    );
    reports_after(
        remove(&format!("{RULE}/Targets/0/DeadLetterConfig")),
        &["EventsExampleRule", "DeadLetterConfig"],
    );
    reports_after(
        remove(&format!("{QUEUE_POLICY}/Condition")),
        &[
            "queue policy EventsExampleQueuePolicy",
            "only for EventsExampleRule",
        ],
    );
    reports_after(
        set(
            &format!("{QUEUE_POLICY}/Condition/ArnEquals/aws:SourceArn"),
            json!({"Fn::GetAtt": ["EventBus", "Arn"]}),
        ),
        &["queue policy EventsExampleQueuePolicy"],
    );
    reports_after(
        set(&format!("{QUEUE_POLICY}/Principal"), json!("*")),
        &["queue policy EventsExampleQueuePolicy"],
    );
    reports_after(
        set(
            "EventsExampleDlqPolicy/Properties/PolicyDocument/Statement/0/Principal/Service",
            json!("sns.amazonaws.com"),
        ),
        &["queue policy EventsExampleDlqPolicy"],
    );
    reports_after(
        remove("EventsExampleQueuePolicy"),
        &["EventsExampleQueue must have one queue policy"],
    );
    reports_after(
        remove("EventsExampleDlq/Properties/SqsManagedSseEnabled"),
        &["EventsExampleDlq is not encrypted at rest"],
    );
    reports_after(
        remove("EventsExampleDlqDepthAlarm"),
        &["no alarm on the depth of the example rule's DLQ EventsExampleDlq"],
    );
}

#[test]
fn the_outputs_name_the_bus_and_the_queue() {
    for output in ["EventBusName", "EventBusArn", "EventsExampleQueueUrl"] {
        reports_after(
            |t| {
                let outputs = at(t, "/Outputs").as_object_mut().unwrap();
                outputs.remove(output).expect("the output exists");
            },
            &[&format!("output {output} is None")],
        );
    }
}
