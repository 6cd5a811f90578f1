//! Retention on AWS: the outbox table's TTL is checked with the tables (`expiration`, from
//! `orders_aws::tables::OUTBOX`); here, that every function putting outbox items takes its
//! retention from the one `RetentionDays` parameter, whose bounds and default are those of
//! `--retention-days`, so the API's `order.created` and the steps' events expire alike.

use super::Code;
use crate::template_contract::model::Template;
use orders_aws::functions::RETENTION_DAYS_ENV;
use serde_json::json;

pub const PARAMETER: &str = "RetentionDays";

pub fn check(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let parameter = t.0.pointer(&format!("/Parameters/{PARAMETER}"));
    let field = |name: &str| parameter.and_then(|p| p.get(name)).cloned();
    let bounds = (field("Type"), field("Default"), field("MinValue"));
    if bounds != (Some(json!("Number")), Some(json!(30)), Some(json!(1))) {
        problems.push(format!(
            "parameter {PARAMETER} must be a Number, default 30, at least 1 (as --retention-days), got {bounds:?}"
        ));
    }
    let wanted = json!({"Ref": PARAMETER});
    for spec in code
        .functions
        .iter()
        .filter(|f| f.env.contains(&RETENTION_DAYS_ENV))
    {
        let value = t
            .resource(spec.logical)
            .and_then(|f| t.function_prop(f, "Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(|v| v.get(RETENTION_DAYS_ENV));
        if value != Some(&wanted) {
            problems.push(format!(
                "{RETENTION_DAYS_ENV} of {} must be !Ref {PARAMETER}, got {value:?}",
                spec.logical
            ));
        }
    }
}
