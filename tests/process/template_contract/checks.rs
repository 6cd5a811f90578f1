//! The template held to the code: the facts the code defines ([`Code`]) against the parsed
//! template, each difference reported as one readable line.
//!
//! The checks compare sets both ways: something the code uses and the template lacks breaks
//! the deployment at run time; something the template grants or declares that the code does
//! not use is privilege or drift. Both are reported. The checker takes the code's facts as a
//! value so the tests can also change the code side and see the same difference.

use super::model::{Template, prop, reference, str_of};
use orders_aws::functions::FunctionSpec;
use orders_aws::tables::TableSpec;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

mod events;
mod functions;
mod hardening;
mod identity;
mod retention;
mod simulator;
mod warehouse;
mod wiring;
pub use wiring::route_shape;

/// What the code defines and the template must match.
#[derive(Clone)]
pub struct Code {
    pub tables: Vec<TableSpec>,
    pub functions: Vec<FunctionSpec>,
    /// The function behind the HTTP API, the outbox stream consumer, the one every Task
    /// state invokes, and the warehouse worker.
    pub api: &'static str,
    pub stream_consumer: &'static str,
    pub task_runner: &'static str,
    /// The function on the warehouse queue (SQS event source).
    pub queue_worker: &'static str,
    /// The state machine definition and where the template finds it, relative to itself.
    pub asl: String,
    pub asl_uri: &'static str,
    /// `(METHOD, /path)` of every operation of the OpenAPI document; path parameters are
    /// written `{}` since their names do not reach the app through API Gateway.
    pub routes: BTreeSet<(String, String)>,
    /// The routes among them that any caller may call, token or not (the others need the
    /// HTTP API's JWT authorizer).
    pub open_routes: BTreeSet<(String, String)>,
}

/// The template's logical id of a table: `orders` -> `OrdersTable`.
pub fn table_id(spec: &TableSpec) -> String {
    let mut chars = spec.logical.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase());
    format!(
        "{}{}Table",
        first.into_iter().collect::<String>(),
        chars.as_str()
    )
}

/// Every difference between the template and the code; empty when they agree.
pub fn check(template: &Value, code: &Code) -> Vec<String> {
    let t = Template(template);
    let mut problems = Vec::new();
    check_tables(&t, code, &mut problems);
    functions::check(&t, code, &mut problems);
    wiring::check(&t, code, &mut problems);
    hardening::check(&t, code, &mut problems);
    identity::check(&t, code, &mut problems);
    warehouse::check(&t, code, &mut problems);
    simulator::check(&t, code, &mut problems);
    events::check(&t, code, &mut problems);
    retention::check(&t, code, &mut problems);
    problems
}

fn check_tables(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let expected: BTreeSet<String> = code.tables.iter().map(table_id).collect();
    for kind in [
        "AWS::DynamoDB::Table",
        "AWS::Serverless::SimpleTable",
        "AWS::DynamoDB::GlobalTable",
    ] {
        for (id, _) in t.of_type(kind) {
            if !expected.contains(id) {
                problems.push(format!("table resource {id} is not a table of tables.rs"));
            }
        }
    }
    for spec in &code.tables {
        check_table(t, spec, problems);
    }
}

fn check_table(t: &Template, spec: &TableSpec, problems: &mut Vec<String>) {
    let id = table_id(spec);
    let Some(table) = t.resource(&id) else {
        problems.push(format!(
            "table `{}`: resource {id} is missing",
            spec.logical
        ));
        return;
    };
    let mut differs = |what: &str, want: String, got: String| {
        if want != got {
            problems.push(format!(
                "table {id}: {what} is {got}, the code expects {want}"
            ));
        }
    };
    differs(
        "Type",
        "AWS::DynamoDB::Table".into(),
        str_of(table.get("Type")).unwrap_or("absent").into(),
    );
    differs(
        "BillingMode",
        "PAY_PER_REQUEST".into(),
        str_of(prop(table, "BillingMode"))
            .unwrap_or("absent")
            .into(),
    );
    differs(
        "TableName",
        format!("${{AWS::StackName}}-{}", spec.logical),
        prop(table, "TableName").map_or("absent".into(), reference),
    );
    differs(
        "KeySchema",
        format!("{:?}", key_schema(spec.partition_key, spec.sort_key)),
        format!("{:?}", template_key_schema(prop(table, "KeySchema"))),
    );

    let mut want_attrs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut add = |name: &str| want_attrs.insert((name.to_owned(), "S".to_owned()));
    add(spec.partition_key);
    spec.sort_key.map(&mut add);
    for ix in spec.indexes {
        add(ix.partition_key);
        ix.sort_key.map(&mut add);
    }
    let got_attrs: BTreeSet<(String, String)> = field_pairs(
        prop(table, "AttributeDefinitions"),
        "AttributeName",
        "AttributeType",
    )
    .into_iter()
    .collect();
    differs(
        "AttributeDefinitions",
        format!("{want_attrs:?}"),
        format!("{got_attrs:?}"),
    );

    let want_ix: BTreeMap<String, String> = spec
        .indexes
        .iter()
        .map(|ix| {
            let keys = key_schema(ix.partition_key, ix.sort_key);
            (ix.name.to_owned(), format!("{keys:?} projecting ALL"))
        })
        .collect();
    let got_ix: BTreeMap<String, String> = prop(table, "GlobalSecondaryIndexes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|ix| {
            let keys = template_key_schema(ix.get("KeySchema"));
            let projection = str_of(ix.pointer("/Projection/ProjectionType")).unwrap_or("?");
            let name = str_of(ix.get("IndexName")).unwrap_or("?").to_owned();
            (name, format!("{keys:?} projecting {projection}"))
        })
        .collect();
    differs(
        "GlobalSecondaryIndexes",
        format!("{want_ix:?}"),
        format!("{got_ix:?}"),
    );

    let stream = prop(table, "StreamSpecification")
        .map(|s| str_of(s.get("StreamViewType")).unwrap_or("?").to_owned());
    let want_stream = spec.stream_new_image.then(|| "NEW_IMAGE".to_owned());
    differs(
        "stream view type",
        format!("{want_stream:?}"),
        format!("{stream:?}"),
    );

    let ttl = prop(table, "TimeToLiveSpecification").map(|s| {
        let name = str_of(s.get("AttributeName")).unwrap_or("?");
        let on = s.get("Enabled").and_then(Value::as_bool) == Some(true);
        format!("{name} enabled={on}")
    });
    let want_ttl = spec.ttl_attribute.map(|a| format!("{a} enabled=true"));
    differs("TTL", format!("{want_ttl:?}"), format!("{ttl:?}"));
}

fn key_schema(pk: &str, sk: Option<&str>) -> Vec<(String, String)> {
    let mut keys = vec![(pk.to_owned(), "HASH".to_owned())];
    keys.extend(sk.map(|s| (s.to_owned(), "RANGE".to_owned())));
    keys
}

fn template_key_schema(value: Option<&Value>) -> Vec<(String, String)> {
    field_pairs(value, "AttributeName", "KeyType")
}

/// Two string fields of each object in a template list, in the list's order; `?` stands for
/// a field that is missing, so the difference shows in the report instead of vanishing.
fn field_pairs(list: Option<&Value>, first: &str, second: &str) -> Vec<(String, String)> {
    let field = |entry: &Value, key: &str| str_of(entry.get(key)).unwrap_or("?").to_owned();
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|entry| (field(entry, first), field(entry, second)))
        .collect()
}
