//! The checker can fail on retention: the outbox's TTL and the one parameter every writer of
//! outbox items takes its period from, one fact changed at a time, each named in a problem.

use super::negative::{at, code_change_reports, remove, reports_after, set};
use orders_aws::tables::OUTBOX;
use serde_json::json;

const STEPS_ENV: &str = "StepsFunction/Properties/Environment/Variables";
const API_ENV: &str = "ApiFunction/Properties/Environment/Variables";

#[test]
fn an_outbox_without_its_ttl_fails() {
    reports_after(
        remove("OutboxTable/Properties/TimeToLiveSpecification"),
        &["OutboxTable", "TTL"],
    );
    reports_after(
        set(
            "OutboxTable/Properties/TimeToLiveSpecification/Enabled",
            json!(false),
        ),
        &["OutboxTable", "TTL"],
    );
    code_change_reports(
        |c| {
            let outbox = c.tables.iter_mut().find(|t| t.logical == OUTBOX.logical);
            outbox.unwrap().ttl_attribute = Some("expiresAt");
        },
        &["OutboxTable", "TTL"],
    );
}

#[test]
fn a_writer_of_outbox_items_without_the_retention_parameter_fails() {
    reports_after(
        set(&format!("{STEPS_ENV}/ORDERS_RETENTION_DAYS"), json!("30")),
        &[
            "ORDERS_RETENTION_DAYS of StepsFunction",
            "!Ref RetentionDays",
        ],
    );
    reports_after(
        remove(&format!("{API_ENV}/ORDERS_RETENTION_DAYS")),
        &["ORDERS_RETENTION_DAYS of ApiFunction"],
    );
    reports_after(
        |t| *at(t, "/Parameters/RetentionDays/Default") = json!(7),
        &["parameter RetentionDays", "default 30"],
    );
    reports_after(
        |t| {
            let params = at(t, "/Parameters").as_object_mut().unwrap();
            params.remove("RetentionDays");
        },
        &["parameter RetentionDays"],
    );
}
