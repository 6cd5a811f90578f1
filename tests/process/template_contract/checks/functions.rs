//! Each function of functions.rs against its template resource: the binary it deploys, the
//! runtime, its environment, its log group and exactly the permissions its role grants.
//!
//! Expected grants are built from the code's lists: the DynamoDB actions on each of its
//! tables (and on their indexes when it queries), its Step Functions actions on the state
//! machine, its EventBridge actions on the stack's event bus, writing to its own log group,
//! and, for the outbox consumer only, what Lambda's
//! stream poller does with the function's role: read the outbox stream and send a failed
//! batch's metadata to the on-failure queue; and, when the function is traced, writing to
//! X-Ray (on `*`, the only resource X-Ray's actions take). Nothing else is accepted.

use super::{Code, table_id};
use crate::template_contract::model::{Grant, Template, prop, reference, referenced_id, str_of};
use orders_aws::functions::FunctionSpec;
use orders_aws::functions::{EVENT_BUS_NAME_ENV, PAYMENT_WEBHOOK_SECRET_ENV};
use orders_aws::tables::STATE_MACHINE_ARN_ENV;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What Lambda's event source mapping calls on a DynamoDB stream with the function's role.
pub const STREAM_READ_ACTIONS: [&str; 4] = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
];
/// Actions that read an index: the only ones granted on index ARNs.
const INDEX_ACTIONS: [&str; 2] = ["Query", "Scan"];
/// What a traced function (any `Tracing`) sends to X-Ray with its role; X-Ray has no
/// resource-level permissions, so these are the only grants on `*` that are accepted.
pub const XRAY_FUNCTION_ACTIONS: [&str; 2] = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"];

pub fn check(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let declared: BTreeSet<&str> = code.functions.iter().map(|f| f.logical).collect();
    for (id, _) in t
        .of_type("AWS::Serverless::Function")
        .into_iter()
        .chain(t.of_type("AWS::Lambda::Function"))
    {
        if !declared.contains(id) {
            problems.push(format!("function {id} is not one of functions.rs"));
        }
    }
    let mut roles: BTreeMap<String, &str> = BTreeMap::new();
    for spec in &code.functions {
        let Some(function) = t.resource(spec.logical) else {
            problems.push(format!("function {}: resource is missing", spec.logical));
            continue;
        };
        check_function(t, code, spec, function, problems);
        if let Some(role) = role_of(function)
            && let Some(other) = roles.insert(role.clone(), spec.logical)
        {
            problems.push(format!(
                "{} and {other} share the role {role}",
                spec.logical
            ));
        }
    }
}

fn role_of(function: &Value) -> Option<String> {
    let canonical = reference(prop(function, "Role")?);
    let id = canonical.strip_suffix(".Arn}")?.strip_prefix("${")?;
    Some(id.to_owned())
}

fn check_function(
    t: &Template,
    code: &Code,
    spec: &FunctionSpec,
    function: &Value,
    problems: &mut Vec<String>,
) {
    let name = spec.logical;
    let mut differs = |what: &str, want: String, got: String| {
        if want != got {
            problems.push(format!("function {name}: {what} is {got}, expected {want}"));
        }
    };
    differs(
        "Type",
        "AWS::Serverless::Function".into(),
        str_of(function.get("Type")).unwrap_or("absent").into(),
    );
    differs(
        "CodeUri",
        format!("../target/lambda/{}/", spec.binary),
        str_of(t.function_prop(function, "CodeUri"))
            .unwrap_or("absent")
            .into(),
    );
    differs(
        "Runtime",
        "provided.al2023".into(),
        str_of(t.function_prop(function, "Runtime"))
            .unwrap_or("absent")
            .into(),
    );
    differs(
        "Architectures",
        r#"["arm64"]"#.into(),
        t.function_prop(function, "Architectures")
            .map_or("absent".into(), Value::to_string),
    );

    // Environment: exactly the variables the code reads, tables pointing at their table.
    let mut want_env: BTreeMap<String, Option<String>> = BTreeMap::new();
    for table in spec.tables {
        want_env.insert(
            table.env_var.to_owned(),
            Some(format!("${{{}}}", table_id(table))),
        );
    }
    for var in spec.env {
        let target = match *var {
            STATE_MACHINE_ARN_ENV => Some(format!("${{{}}}", state_machine_id(t))),
            EVENT_BUS_NAME_ENV => Some(format!("${{{}}}", super::events::EVENT_BUS)),
            _ => None,
        };
        want_env.insert((*var).to_owned(), target);
    }
    let got_env: BTreeMap<String, String> = t
        .function_prop(function, "Environment")
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), reference(v)))
        .collect();
    let want_names: BTreeSet<&String> = want_env.keys().collect();
    let got_names: BTreeSet<&String> = got_env.keys().collect();
    differs(
        "environment",
        format!("{want_names:?}"),
        format!("{got_names:?}"),
    );
    for (var, target) in &want_env {
        if let (Some(want), Some(got)) = (target, got_env.get(var)) {
            differs(var, want.clone(), got.clone());
        }
    }
    // The webhook secret comes from a parameter CloudFormation never echoes.
    if spec.env.contains(&PAYMENT_WEBHOOK_SECRET_ENV) {
        let value = t
            .function_prop(function, "Environment")
            .and_then(|e| e.pointer(&format!("/Variables/{PAYMENT_WEBHOOK_SECRET_ENV}")));
        let param = value
            .and_then(|v| v.get("Ref"))
            .and_then(Value::as_str)
            .and_then(|p| t.0.pointer(&format!("/Parameters/{p}")));
        if param.and_then(|p| p.get("NoEcho")) != Some(&Value::Bool(true)) {
            differs(
                PAYMENT_WEBHOOK_SECRET_ENV,
                "!Ref of a NoEcho parameter".into(),
                value.map_or("absent".into(), Value::to_string),
            );
        }
    }

    // Logs go to a log group of this stack that expires them.
    let log_group = t
        .function_prop(function, "LoggingConfig")
        .and_then(|c| c.get("LogGroup"))
        .map(reference)
        .and_then(|r| referenced_id(&r).map(str::to_owned));
    let log_group = match log_group {
        Some(id) if t.type_of(&id) == Some("AWS::Logs::LogGroup") => Some(id),
        other => {
            problems.push(format!(
                "function {name}: LoggingConfig.LogGroup must reference an AWS::Logs::LogGroup of the stack (got {other:?})"
            ));
            None
        }
    };

    let Some(role) = role_of(function) else {
        problems.push(format!(
            "function {name}: Role must be !GetAtt <its role>.Arn"
        ));
        return;
    };
    let trusted = t.trusted_services(&role);
    if trusted != BTreeSet::from(["lambda.amazonaws.com".to_owned()]) {
        problems.push(format!(
            "role {role}: trusted by {trusted:?}, expected lambda.amazonaws.com only"
        ));
    }
    let granted = match t.role_grants(&role) {
        Ok(g) => g,
        Err(mut errs) => {
            problems.append(&mut errs);
            return;
        }
    };
    let expected = expected_grants(t, code, spec, function, log_group.as_deref());
    for (action, resource) in granted.difference(&expected) {
        problems.push(format!(
            "{name} (role {role}) is granted {action} on {resource}, which the code does not use"
        ));
    }
    for (action, resource) in expected.difference(&granted) {
        problems.push(format!(
            "{name} (role {role}) lacks {action} on {resource}, which it needs"
        ));
    }
}

fn expected_grants(
    t: &Template,
    code: &Code,
    spec: &FunctionSpec,
    function: &Value,
    log_group: Option<&str>,
) -> BTreeSet<Grant> {
    let mut want = BTreeSet::new();
    let mut grant = |action: &str, resource: String| want.insert((action.to_owned(), resource));
    if let Some(group) = log_group {
        for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
            grant(action, format!("${{{group}.Arn}}"));
        }
    }
    for table in spec.tables {
        let id = table_id(table);
        let queried = spec.queried_tables.contains(table).then_some("Query");
        for action in spec.dynamodb_actions.iter().copied().chain(queried) {
            let iam = format!("dynamodb:{action}");
            grant(&iam, format!("${{{id}.Arn}}"));
            if INDEX_ACTIONS.contains(&action) {
                for ix in table.indexes {
                    grant(&iam, format!("${{{id}.Arn}}/index/{}", ix.name));
                }
            }
        }
    }
    for action in spec.states_actions {
        grant(
            &format!("states:{action}"),
            format!("${{{}}}", state_machine_id(t)),
        );
    }
    for action in spec.execution_actions {
        grant(&format!("states:{action}"), executions_of(t));
    }
    // IAM takes no state machine for the token calls: `*` is their only resource.
    for action in spec.token_actions {
        grant(&format!("states:{action}"), "*".to_owned());
    }
    for action in spec.warehouse_queue_actions {
        let queue = super::warehouse::WAREHOUSE_QUEUE;
        grant(&format!("sqs:{action}"), format!("${{{queue}.Arn}}"));
    }
    for action in spec.event_bus_actions {
        let bus = super::events::EVENT_BUS;
        grant(&format!("events:{action}"), format!("${{{bus}.Arn}}"));
    }
    if t.function_prop(function, "Tracing").is_some() {
        for action in XRAY_FUNCTION_ACTIONS {
            grant(action, "*".to_owned());
        }
    }
    if spec.logical == code.stream_consumer {
        for table in code.tables.iter().filter(|s| s.stream_new_image) {
            for action in STREAM_READ_ACTIONS {
                grant(action, format!("${{{}.StreamArn}}", table_id(table)));
            }
        }
        for queue in on_failure_queues(function) {
            grant("sqs:SendMessage", queue);
        }
    }
    want
}

/// The on-failure destinations of the function's stream mappings.
pub fn on_failure_queues(function: &Value) -> Vec<String> {
    let events = prop(function, "Events").and_then(Value::as_object);
    events
        .into_iter()
        .flatten()
        .filter_map(|(_, e)| e.pointer("/Properties/DestinationConfig/OnFailure/Destination"))
        .map(reference)
        .collect()
}

/// The ARN pattern of the saga's executions, as the template writes it.
pub fn executions_of(t: &Template) -> String {
    format!(
        "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:${{{}.Name}}:*",
        state_machine_id(t)
    )
}

/// The logical id of the state machine (the one of the stack; `wiring` checks it is one).
pub fn state_machine_id(t: &Template) -> String {
    let machines = t.of_type("AWS::Serverless::StateMachine");
    match machines.as_slice() {
        [(id, _)] => (*id).to_owned(),
        _ => "<the state machine>".to_owned(),
    }
}
