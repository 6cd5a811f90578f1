//! What makes the stack safe to run and to delete: every table outlives its stack and can be
//! restored; every fault an operator must act on raises an alarm on the alarm topic; each
//! function runs in a reserved share of concurrency set by a parameter; one parameter turns
//! X-Ray tracing on for the functions and the state machine; the fault-injection variables are
//! set only on a stack that enables them.

use super::functions::state_machine_id;
use super::{Code, table_id};
use crate::template_contract::model::{Template, one_or_many, prop, reference, str_of};
use orders_workflow::steps::{NOTIFICATION_FAILURE_RATE_ENV, PAYMENT_TRANSIENT_RATE_ENV};
use serde_json::{Value, json};

/// The SNS topic every alarm notifies.
pub const ALARM_TOPIC: &str = "AlarmTopic";
/// The variables that inject simulated failures into the saga's steps.
pub const FAULT_INJECTION_ENV: [&str; 2] =
    [PAYMENT_TRANSIENT_RATE_ENV, NOTIFICATION_FAILURE_RATE_ENV];
/// The `Tracing` value of a function that samples and records traces.
const TRACING_ON: &str = "Active";

pub fn check(t: &Template, code: &Code, problems: &mut Vec<String>) {
    check_data_protection(t, code, problems);
    check_alarms(t, code, problems);
    check_concurrency_and_tracing(t, code, problems);
    check_fault_injection(t, code, problems);
}

fn check_data_protection(t: &Template, code: &Code, problems: &mut Vec<String>) {
    for spec in &code.tables {
        let id = table_id(spec);
        let Some(table) = t.resource(&id) else {
            continue; // reported by check_table
        };
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            let got = str_of(table.get(policy));
            if got != Some("Retain") {
                problems.push(format!(
                    "table {id}: {policy} is {}, expected Retain (its data must outlive the stack)",
                    got.unwrap_or("absent")
                ));
            }
        }
        if prop(table, "DeletionProtectionEnabled") != Some(&json!(true)) {
            problems.push(format!(
                "table {id}: DeletionProtectionEnabled must be true"
            ));
        }
        let pitr = prop(table, "PointInTimeRecoverySpecification")
            .and_then(|s| s.get("PointInTimeRecoveryEnabled"));
        if pitr != Some(&json!(true)) {
            problems.push(format!(
                "table {id}: point-in-time recovery is off (PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled must be true)"
            ));
        }
    }
}

/// `(namespace, metric, [(dimension, canonical value)])`: one metric an alarm evaluates.
type Watched = (String, String, Vec<(String, String)>);

/// Each metric an alarm evaluates, whether it is a one-metric alarm or a metric-math alarm.
fn watched(alarm: &Value) -> Vec<Watched> {
    let metric = |m: &Value| {
        let s = |k: &str| str_of(m.get(k)).unwrap_or("?").to_owned();
        let dims = one_or_many(m.get("Dimensions"))
            .map(|d| {
                let name = str_of(d.get("Name")).unwrap_or("?").to_owned();
                (name, d.get("Value").map_or("?".into(), reference))
            })
            .collect();
        (s("Namespace"), s("MetricName"), dims)
    };
    let mut out = Vec::new();
    if let Some(props) = alarm.get("Properties")
        && props.get("MetricName").is_some()
    {
        out.push(metric(props));
    }
    for m in one_or_many(prop(alarm, "Metrics")) {
        if let Some(stat) = m.pointer("/MetricStat/Metric") {
            out.push(metric(stat));
        }
    }
    out
}

fn check_alarms(t: &Template, code: &Code, problems: &mut Vec<String>) {
    if t.type_of(ALARM_TOPIC) != Some("AWS::SNS::Topic") {
        problems.push(format!(
            "the alarm topic {ALARM_TOPIC} is not an AWS::SNS::Topic"
        ));
    }
    let topic = format!("${{{ALARM_TOPIC}}}");
    let alarms = t.of_type("AWS::CloudWatch::Alarm");
    for (id, alarm) in &alarms {
        let actions: Vec<String> = one_or_many(prop(alarm, "AlarmActions"))
            .map(reference)
            .collect();
        if !actions.contains(&topic) {
            problems.push(format!(
                "alarm {id}: AlarmActions {actions:?} do not notify {ALARM_TOPIC}"
            ));
        }
        if prop(alarm, "ActionsEnabled") == Some(&json!(false)) {
            problems.push(format!("alarm {id}: ActionsEnabled is false"));
        }
        if str_of(prop(alarm, "TreatMissingData")) != Some("notBreaching") {
            problems.push(format!(
                "alarm {id}: TreatMissingData must be notBreaching (no traffic is not a fault)"
            ));
        }
    }

    let machine = format!("${{{}}}", state_machine_id(t));
    let apis = t.of_type("AWS::Serverless::HttpApi");
    let api = match apis.as_slice() {
        [(id, _)] => format!("${{{id}}}"),
        _ => "<the HttpApi>".to_owned(),
    };
    let mut wanted: Vec<(&str, &str, &str, String)> = vec![
        (
            "AWS/States",
            "ExecutionsFailed",
            "StateMachineArn",
            machine.clone(),
        ),
        (
            "AWS/States",
            "ExecutionsTimedOut",
            "StateMachineArn",
            machine,
        ),
        ("AWS/ApiGateway", "5xx", "ApiId", api),
    ];
    for f in &code.functions {
        for metric in ["Errors", "Throttles"] {
            wanted.push((
                "AWS/Lambda",
                metric,
                "FunctionName",
                format!("${{{}}}", f.logical),
            ));
        }
    }
    for spec in &code.tables {
        for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] {
            let table = format!("${{{}}}", table_id(spec));
            wanted.push(("AWS/DynamoDB", metric, "TableName", table));
        }
    }
    for (namespace, metric, dimension, value) in wanted {
        let by = alarms.iter().find(|(_, a)| {
            watched(a).iter().any(|(ns, m, dims)| {
                ns == namespace
                    && m == metric
                    && dims.iter().any(|(d, v)| d == dimension && *v == value)
            })
        });
        match by {
            None => problems.push(format!(
                "no alarm on {namespace} {metric} of {dimension} {value}"
            )),
            // One failed or timed-out execution is a fault: its alarm must not wait for more.
            Some((id, a)) if namespace == "AWS/States" => {
                let fires_on_one = str_of(prop(a, "Statistic")) == Some("Sum")
                    && match (
                        str_of(prop(a, "ComparisonOperator")),
                        prop(a, "Threshold").and_then(Value::as_f64),
                    ) {
                        (Some("GreaterThanOrEqualToThreshold"), Some(x)) => x <= 1.0,
                        (Some("GreaterThanThreshold"), Some(x)) => x < 1.0,
                        _ => false,
                    };
                if !fires_on_one {
                    problems.push(format!(
                        "alarm {id} on {metric} must fire on the first one (Sum >= 1)"
                    ));
                }
            }
            Some(_) => {}
        }
    }
}

/// The parameter a `!Ref` names, if it is a parameter of the template.
fn parameter<'a>(t: &Template<'a>, value: Option<&Value>) -> Option<(String, &'a Value)> {
    let name = value?.get("Ref")?.as_str()?;
    Some((name.to_owned(), t.0.get("Parameters")?.get(name)?))
}

fn check_concurrency_and_tracing(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let mut tracing_params = Vec::new();
    for spec in &code.functions {
        let name = spec.logical;
        let Some(function) = t.resource(name) else {
            continue; // reported by functions::check
        };
        let reserved = t.function_prop(function, "ReservedConcurrentExecutions");
        match parameter(t, reserved) {
            Some((_, param))
                if str_of(param.get("Type")) == Some("Number")
                    && param.get("Default").and_then(Value::as_i64).is_some_and(|d| d > 0) => {}
            _ => problems.push(format!(
                "function {name}: ReservedConcurrentExecutions must be !Ref a Number parameter with a positive Default (got {:?})",
                reserved.map(reference)
            )),
        }
        let tracing = t.function_prop(function, "Tracing");
        match parameter(t, tracing) {
            Some((p, param)) if str_of(param.get("Default")) == Some(TRACING_ON) => {
                tracing_params.push(p)
            }
            _ => problems.push(format!(
                "function {name}: Tracing must be !Ref the tracing parameter (Default {TRACING_ON}), got {:?}",
                tracing.map(reference)
            )),
        }
    }
    tracing_params.dedup();
    if tracing_params.len() > 1 {
        problems.push(format!(
            "the functions' Tracing comes from several parameters {tracing_params:?}, expected one"
        ));
    }
    // The state machine: Enabled is `!If [<Tracing parameter = Active>, true, false]`.
    let id = state_machine_id(t);
    let enabled = t
        .resource(&id)
        .and_then(|m| prop(m, "Tracing"))
        .and_then(|tr| tr.get("Enabled"));
    let follows = |param: &str| {
        let Some(Value::Array(branches)) = enabled.and_then(|e| e.get("Fn::If")) else {
            return false;
        };
        let [Value::String(cond), on, off] = branches.as_slice() else {
            return false;
        };
        let equals =
            t.0.pointer(&format!("/Conditions/{cond}/Fn::Equals"))
                .and_then(Value::as_array);
        let tests_param = equals.is_some_and(|sides| {
            sides.contains(&json!({"Ref": param})) && sides.contains(&json!(TRACING_ON))
        });
        tests_param && *on == json!(true) && *off == json!(false)
    };
    if !tracing_params.first().is_some_and(|p| follows(p)) {
        problems.push(format!(
            "state machine {id}: Tracing.Enabled must be !If [<{} = {TRACING_ON}>, true, false], got {:?}",
            tracing_params.first().map_or("the tracing parameter", String::as_str),
            enabled.map(Value::to_string)
        ));
    }
}

fn check_fault_injection(t: &Template, code: &Code, problems: &mut Vec<String>) {
    for spec in &code.functions {
        let Some(vars) = t
            .resource(spec.logical)
            .and_then(|f| t.function_prop(f, "Environment"))
            .and_then(|e| e.get("Variables"))
        else {
            continue;
        };
        for var in FAULT_INJECTION_ENV {
            let Some(value) = vars.get(var) else {
                continue;
            };
            if let Err(why) = off_by_default(t, value) {
                problems.push(format!(
                    "function {}: {var} must be !If [<fault injection enabled>, value, !Ref AWS::NoValue] on a condition that is off by default: {why}",
                    spec.logical
                ));
            }
        }
    }
}

/// `Ok` when `value` is `!If [C, x, !Ref AWS::NoValue]` and `C` is `!Equals [!Ref P, v]` with
/// `P`'s Default other than `v`: a stack deployed with the defaults leaves it unset.
fn off_by_default(t: &Template, value: &Value) -> Result<(), String> {
    let Some(Value::Array(branches)) = value.get("Fn::If") else {
        return Err(format!("it is set unconditionally ({value})"));
    };
    let [Value::String(cond), _, off] = branches.as_slice() else {
        return Err(format!("malformed Fn::If {value}"));
    };
    if *off != json!({"Ref": "AWS::NoValue"}) {
        return Err(format!("its else branch is {off}, not AWS::NoValue"));
    }
    let equals =
        t.0.pointer(&format!("/Conditions/{cond}/Fn::Equals"))
            .and_then(Value::as_array);
    let Some([a, b]) = equals.map(Vec::as_slice) else {
        return Err(format!(
            "condition {cond} is not a Fn::Equals of a parameter"
        ));
    };
    let (param, enabling) = match (parameter(t, Some(a)), parameter(t, Some(b))) {
        (Some(p), None) => (p, b),
        (None, Some(p)) => (p, a),
        _ => return Err(format!("condition {cond} does not compare one parameter")),
    };
    let (name, declared) = param;
    let default = declared.get("Default");
    if default.is_none() || default == Some(enabling) {
        return Err(format!(
            "parameter {name}'s default {default:?} enables it (condition {cond})"
        ));
    }
    Ok(())
}
