//! How the pieces connect: the HTTP API's routes against the OpenAPI document, the outbox
//! stream mapping's delivery guarantees, the state machine's definition and role, the alarms
//! an operator needs, log retention, and the outputs a user deploys for.

use super::functions::{on_failure_queues, state_machine_id};
use super::warehouse::{WAREHOUSE_QUEUE, WAREHOUSE_QUEUE_SUBSTITUTION};
use super::{Code, table_id};
use crate::template_contract::model::{Template, prop, reference, referenced_id, str_of};
use orders_workflow::asl::substitution_names;
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub fn check(t: &Template, code: &Code, problems: &mut Vec<String>) {
    check_events(t, code, problems);
    check_stream_mapping(t, code, problems);
    check_state_machine(t, code, problems);
    check_alarms(t, code, problems);
    for (id, group) in t.of_type("AWS::Logs::LogGroup") {
        if prop(group, "RetentionInDays").is_none() {
            problems.push(format!(
                "log group {id} keeps logs forever (no RetentionInDays)"
            ));
        }
    }
    let mut outputs = vec![(
        "StateMachineArn".to_owned(),
        format!("${{{}}}", state_machine_id(t)),
    )];
    for spec in &code.tables {
        let id = table_id(spec);
        outputs.push((format!("{id}Name"), format!("${{{id}}}")));
    }
    for (name, want) in outputs {
        let got = t.output(&name).map(reference);
        if got.as_deref() != Some(want.as_str()) {
            problems.push(format!("output {name} is {got:?}, expected {want}"));
        }
    }
    if t.output("ApiUrl").is_none() {
        problems.push("output ApiUrl is missing".into());
    }
}

/// `/orders/{orderId}` -> `/orders/{}`.
pub fn route_shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

fn check_events(t: &Template, code: &Code, problems: &mut Vec<String>) {
    for spec in &code.functions {
        let Some(function) = t.resource(spec.logical) else {
            continue;
        };
        let events = prop(function, "Events").and_then(Value::as_object);
        let mut routes = BTreeSet::new();
        for (name, event) in events.into_iter().flatten() {
            let kind = str_of(event.get("Type")).unwrap_or("?");
            let allowed = match kind {
                "HttpApi" => spec.logical == code.api,
                "DynamoDB" => spec.logical == code.stream_consumer,
                "SQS" => spec.logical == code.queue_worker,
                _ => false,
            };
            if !allowed {
                problems.push(format!(
                    "{}: event {name} of type {kind} is not its role",
                    spec.logical
                ));
            }
            if kind == "HttpApi" {
                // An event without ApiId makes SAM add an implicit API, one without the
                // stack's throttling and access logs.
                let api = event.pointer("/Properties/ApiId").map(reference);
                let api_id = api.as_deref().and_then(referenced_id);
                if api_id.and_then(|id| t.type_of(id)) != Some("AWS::Serverless::HttpApi") {
                    problems.push(format!(
                        "{}: event {name} is not on the stack's HttpApi (ApiId {api:?})",
                        spec.logical
                    ));
                }
                let p = |k| str_of(event.pointer(&format!("/Properties/{k}"))).unwrap_or("?");
                routes.insert((p("Method").to_ascii_uppercase(), route_shape(p("Path"))));
            }
        }
        if spec.logical != code.api {
            continue;
        }
        // Every operation routed; `ANY $default` is allowed on top, so that unknown paths
        // and methods get the app's problem+json answers.
        let fallback = ("ANY".to_owned(), "$default".to_owned());
        let extra: Vec<_> = routes
            .difference(&code.routes)
            .filter(|r| **r != fallback)
            .collect();
        let missing: Vec<_> = code.routes.difference(&routes).collect();
        if !extra.is_empty() {
            problems.push(format!(
                "{}: routes {extra:?} are not operations of the API",
                code.api
            ));
        }
        if !missing.is_empty() {
            problems.push(format!(
                "{}: operations {missing:?} have no route",
                code.api
            ));
        }
    }
}

fn check_stream_mapping(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let consumer = code.stream_consumer;
    let Some(function) = t.resource(consumer) else {
        return;
    };
    let streams: Vec<String> = code
        .tables
        .iter()
        .filter(|s| s.stream_new_image)
        .map(|s| format!("${{{}.StreamArn}}", table_id(s)))
        .collect();
    let events: Vec<&Value> = prop(function, "Events")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(_, e)| e)
        .filter(|e| str_of(e.get("Type")) == Some("DynamoDB"))
        .collect();
    let got: Vec<String> = events
        .iter()
        .filter_map(|e| e.pointer("/Properties/Stream"))
        .map(reference)
        .collect();
    if got != streams {
        problems.push(format!(
            "{consumer}: consumes streams {got:?}, expected {streams:?}"
        ));
    }
    for event in events {
        let p = |k: &str| event.pointer(&format!("/Properties/{k}"));
        let mut fail = |what: &str| problems.push(format!("{consumer}'s stream mapping: {what}"));
        if p("StartingPosition").is_none() {
            fail("StartingPosition is not set");
        }
        let pattern = p("FilterCriteria/Filters")
            .and_then(Value::as_array)
            .map(|fs| {
                fs.iter()
                    .map(|f| str_of(f.get("Pattern")).unwrap_or(""))
                    .collect::<Vec<_>>()
            });
        let inserts_only = match pattern.as_deref() {
            Some([one]) => {
                serde_json::from_str::<Value>(one).ok() == Some(json!({"eventName": ["INSERT"]}))
            }
            _ => false,
        };
        if !inserts_only {
            fail("FilterCriteria must be one pattern {\"eventName\":[\"INSERT\"]}");
        }
        if p("FunctionResponseTypes") != Some(&json!(["ReportBatchItemFailures"])) {
            fail("FunctionResponseTypes must be [ReportBatchItemFailures]");
        }
        if p("BisectBatchOnFunctionError") != Some(&json!(true)) {
            fail("BisectBatchOnFunctionError must be true");
        }
        let within = |k: &str, lo: i64, hi: i64| {
            p(k).and_then(Value::as_i64)
                .is_some_and(|v| (lo..=hi).contains(&v))
        };
        if !within("MaximumRetryAttempts", 0, 10_000) {
            fail("MaximumRetryAttempts must be bounded (0..=10000, not -1)");
        }
        if !within("MaximumRecordAgeInSeconds", 60, 604_800) {
            fail("MaximumRecordAgeInSeconds must be bounded (60..=604800, not -1)");
        }
    }
    let queues = on_failure_queues(function);
    let ok = queues.len() == 1
        && referenced_id(&queues[0]).is_some_and(|q| {
            queues[0].ends_with(".Arn}") && t.type_of(q) == Some("AWS::SQS::Queue")
        });
    if !ok {
        problems.push(format!(
            "{consumer}: needs one SQS on-failure destination of the stack, has {queues:?}"
        ));
    }
}

/// What Step Functions calls on X-Ray with the state machine's role when tracing is enabled.
pub const XRAY_STATE_MACHINE_ACTIONS: [&str; 4] = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
];

fn check_state_machine(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let machines = t.of_type("AWS::Serverless::StateMachine");
    let [(id, machine)] = machines.as_slice() else {
        problems.push(format!(
            "expected one AWS::Serverless::StateMachine, found {}",
            machines.len()
        ));
        return;
    };
    if str_of(prop(machine, "Type")) != Some("STANDARD") {
        problems.push(format!("state machine {id}: Type must be STANDARD"));
    }
    if str_of(prop(machine, "DefinitionUri")) != Some(code.asl_uri) {
        problems.push(format!(
            "state machine {id}: DefinitionUri must be {}",
            code.asl_uri
        ));
    }
    if prop(machine, "Definition").is_some() {
        problems.push(format!(
            "state machine {id}: an inline Definition would not be the ASL file"
        ));
    }
    let task_arn = format!("${{{}.Arn}}", code.task_runner);
    let subs = prop(machine, "DefinitionSubstitutions").and_then(Value::as_object);
    let got: BTreeSet<String> = subs.into_iter().flatten().map(|(k, _)| k.clone()).collect();
    let want = substitution_names(&code.asl);
    for name in want.difference(&got) {
        problems.push(format!(
            "state machine {id}: ASL placeholder ${{{name}}} has no DefinitionSubstitution"
        ));
    }
    for name in got.difference(&want) {
        problems.push(format!(
            "state machine {id}: DefinitionSubstitution {name} is not a placeholder of the ASL"
        ));
    }
    // Every Task on the step function, PrepareShipment on the warehouse queue (its URL).
    let queue_url = format!("${{{WAREHOUSE_QUEUE}}}");
    for (name, value) in subs.into_iter().flatten() {
        let want = if name == WAREHOUSE_QUEUE_SUBSTITUTION {
            &queue_url
        } else {
            &task_arn
        };
        if reference(value) != *want {
            problems.push(format!(
                "state machine {id}: {name} is {}, expected {want}",
                reference(value)
            ));
        }
    }
    let role = prop(machine, "Role").map(reference);
    let Some(role) = role
        .as_deref()
        .and_then(|r| r.strip_suffix(".Arn}")?.strip_prefix("${"))
    else {
        problems.push(format!(
            "state machine {id}: Role must be !GetAtt <its role>.Arn"
        ));
        return;
    };
    if t.trusted_services(role) != BTreeSet::from(["states.amazonaws.com".to_owned()]) {
        problems.push(format!(
            "role {role}: must be trusted by states.amazonaws.com only"
        ));
    }
    match t.role_grants(role) {
        Ok(granted) => {
            let mut want = BTreeSet::from([
                ("lambda:InvokeFunction".to_owned(), task_arn.clone()),
                (
                    "sqs:SendMessage".to_owned(),
                    format!("${{{WAREHOUSE_QUEUE}.Arn}}"),
                ),
            ]);
            // A traced state machine sends its segments with its role; X-Ray's actions take
            // no resource but `*`.
            if prop(machine, "Tracing").is_some() {
                want.extend(XRAY_STATE_MACHINE_ACTIONS.map(|a| (a.to_owned(), "*".to_owned())));
            }
            if granted != want {
                problems.push(format!(
                    "state machine role {role} grants {granted:?}, expected exactly {want:?}"
                ));
            }
        }
        Err(mut errs) => problems.append(&mut errs),
    }
}

fn check_alarms(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let alarms = t.of_type("AWS::CloudWatch::Alarm");
    let watches = |namespace: &str, metric: &str, dimension: &str, value: &str| {
        alarms.iter().any(|(_, a)| {
            str_of(prop(a, "Namespace")) == Some(namespace)
                && str_of(prop(a, "MetricName")) == Some(metric)
                && prop(a, "Dimensions")
                    .and_then(Value::as_array)
                    .is_some_and(|ds| {
                        ds.iter().any(|d| {
                            str_of(d.get("Name")) == Some(dimension)
                                && d.get("Value").map(reference).as_deref() == Some(value)
                        })
                    })
        })
    };
    let consumer = t.resource(code.stream_consumer);
    for queue in consumer.map(on_failure_queues).unwrap_or_default() {
        let Some(q) = referenced_id(&queue) else {
            continue;
        };
        if !watches(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            &format!("${{{q}.QueueName}}"),
        ) {
            problems.push(format!("no alarm on the depth of the on-failure queue {q}"));
        }
    }
    let function = format!("${{{}}}", code.stream_consumer);
    if !watches("AWS/Lambda", "IteratorAge", "FunctionName", &function) {
        problems.push(format!(
            "no alarm on the IteratorAge of {}",
            code.stream_consumer
        ));
    }
}
