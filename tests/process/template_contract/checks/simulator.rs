//! The payment provider simulator: deployed by default and only under its condition, behind a
//! function URL whose openness the key makes safe, and wired to the rest of the stack by
//! reference, not by copies: the steps function charges the simulator's URL (or, without it,
//! the real provider's), both sides hold the one NoEcho provider key, and the simulator signs
//! with the API's webhook secret and posts to the API's own webhook route.

use super::Code;
use crate::template_contract::model::{Template, prop, reference};
use orders_aws::functions::{
    PAYMENT_PROVIDER_KEY_ENV, PAYMENT_PROVIDER_URL_ENV, PAYMENT_SIMULATOR,
    PAYMENT_WEBHOOK_SECRET_ENV, PAYMENT_WEBHOOK_URL_ENV,
};
use serde_json::{Value, json};

pub const CONDITION: &str = "UsePaymentSimulator";
pub const PARAMETER: &str = "PaymentSimulator";
const PROVIDER_URL_PARAMETER: &str = "PaymentProviderUrl";

pub fn check(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let sim = PAYMENT_SIMULATOR.logical;
    let Some(function) = t.resource(sim) else {
        return; // reported by functions::check
    };
    let condition = t.0.pointer(&format!("/Conditions/{CONDITION}/Fn::Equals"));
    let on_by_default =
        t.0.pointer(&format!("/Parameters/{PARAMETER}/Default")) == Some(&json!("true"));
    let tests_param = condition
        .and_then(Value::as_array)
        .is_some_and(|s| s.contains(&json!({"Ref": PARAMETER})) && s.contains(&json!("true")));
    if !(tests_param && on_by_default) {
        problems.push(format!(
            "condition {CONDITION} must be !Equals [!Ref {PARAMETER}, \"true\"] with {PARAMETER} defaulting to \"true\""
        ));
    }
    if function.get("Condition") != Some(&json!(CONDITION)) {
        problems.push(format!("function {sim} must carry Condition {CONDITION}"));
    }
    let url_config = prop(function, "FunctionUrlConfig");
    if url_config.and_then(|c| c.get("AuthType")).is_none() {
        problems.push(format!(
            "function {sim} has no FunctionUrlConfig with an AuthType"
        ));
    }

    let env = |id: &str, var: &str| {
        t.resource(id)
            .and_then(|f| t.function_prop(f, "Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(|v| v.get(var))
            .cloned()
    };
    let no_echo = |value: &Option<Value>| {
        value
            .as_ref()
            .and_then(|v| v.get("Ref"))
            .and_then(Value::as_str)
            .and_then(|p| t.0.pointer(&format!("/Parameters/{p}/NoEcho")))
            == Some(&json!(true))
    };
    let key_sim = env(sim, PAYMENT_PROVIDER_KEY_ENV);
    let key_steps = env(code.task_runner, PAYMENT_PROVIDER_KEY_ENV);
    if !no_echo(&key_sim) || key_sim != key_steps {
        problems.push(format!(
            "{PAYMENT_PROVIDER_KEY_ENV} of {sim} and of {} must be the same NoEcho parameter, got {key_sim:?} and {key_steps:?}",
            code.task_runner
        ));
    }
    let secret_sim = env(sim, PAYMENT_WEBHOOK_SECRET_ENV);
    let secret_api = env(code.api, PAYMENT_WEBHOOK_SECRET_ENV);
    if !no_echo(&secret_sim) || secret_sim != secret_api {
        problems.push(format!(
            "{PAYMENT_WEBHOOK_SECRET_ENV} of {sim} must be the API's NoEcho secret, got {secret_sim:?} and {secret_api:?}"
        ));
    }
    let webhook = env(sim, PAYMENT_WEBHOOK_URL_ENV).map(|v| reference(&v));
    let api_webhook = webhook
        .as_deref()
        .is_some_and(|u| u.starts_with("https://${HttpApi}.") && u.ends_with("/webhooks/payments"));
    if !api_webhook {
        problems.push(format!(
            "{PAYMENT_WEBHOOK_URL_ENV} of {sim} must be the stack's HttpApi /webhooks/payments, got {webhook:?}"
        ));
    }

    let want = json!({"Fn::If": [
        CONDITION,
        {"Fn::GetAtt": [format!("{sim}Url"), "FunctionUrl"]},
        {"Ref": PROVIDER_URL_PARAMETER},
    ]});
    let charged = env(code.task_runner, PAYMENT_PROVIDER_URL_ENV);
    if charged.as_ref() != Some(&want) {
        problems.push(format!(
            "{PAYMENT_PROVIDER_URL_ENV} of {} must be !If [{CONDITION}, {sim}Url.FunctionUrl, !Ref {PROVIDER_URL_PARAMETER}], got {}",
            code.task_runner,
            charged.map_or("nothing".into(), |v| v.to_string())
        ));
    }
}
