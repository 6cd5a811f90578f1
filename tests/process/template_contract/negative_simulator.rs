//! The checker can fail on the payment simulator's wiring: one fact changed at a time, each
//! named in a problem.

use super::negative::{RES, at, remove, reports_after, set};
use serde_json::json;

const STEPS_ENV: &str = "StepsFunction/Properties/Environment/Variables";
const SIM_ENV: &str = "PaymentSimulatorFunction/Properties/Environment/Variables";

#[test]
fn the_steps_function_charges_the_simulator_only_under_its_condition() {
    reports_after(
        set(
            &format!("{STEPS_ENV}/ORDERS_PAYMENT_PROVIDER_URL"),
            json!({"Ref": "PaymentProviderUrl"}),
        ),
        &[
            "ORDERS_PAYMENT_PROVIDER_URL of StepsFunction",
            "!If [UsePaymentSimulator",
        ],
    );
    reports_after(
        set(
            &format!("{STEPS_ENV}/ORDERS_PAYMENT_PROVIDER_URL"),
            json!({"Fn::GetAtt": ["PaymentSimulatorFunctionUrl", "FunctionUrl"]}),
        ),
        &["ORDERS_PAYMENT_PROVIDER_URL of StepsFunction"],
    );
}

#[test]
fn the_simulator_is_on_by_default_and_conditional() {
    reports_after(
        |t| *at(t, "/Parameters/PaymentSimulator/Default") = json!("false"),
        &["condition UsePaymentSimulator", "defaulting to \"true\""],
    );
    reports_after(
        remove("PaymentSimulatorFunction/Condition"),
        &["PaymentSimulatorFunction must carry Condition UsePaymentSimulator"],
    );
    reports_after(
        remove("PaymentSimulatorFunction/Properties/FunctionUrlConfig"),
        &["PaymentSimulatorFunction has no FunctionUrlConfig"],
    );
}

#[test]
fn the_key_and_the_secret_are_the_stacks_no_echo_parameters() {
    reports_after(
        set(
            &format!("{SIM_ENV}/ORDERS_PAYMENT_PROVIDER_KEY"),
            json!("sk_live_written_in_the_template"),
        ),
        &[
            "ORDERS_PAYMENT_PROVIDER_KEY of PaymentSimulatorFunction",
            "NoEcho",
        ],
    );
    reports_after(
        |t| {
            let params = at(t, "/Parameters/PaymentProviderKey");
            params.as_object_mut().unwrap().remove("NoEcho");
        },
        &["ORDERS_PAYMENT_PROVIDER_KEY", "NoEcho"],
    );
    reports_after(
        remove(&format!("{STEPS_ENV}/ORDERS_PAYMENT_PROVIDER_KEY")),
        &["ORDERS_PAYMENT_PROVIDER_KEY of PaymentSimulatorFunction and of StepsFunction"],
    );
    reports_after(
        set(
            &format!("{SIM_ENV}/ORDERS_PAYMENT_WEBHOOK_SECRET"),
            json!({"Ref": "PaymentProviderKey"}),
        ),
        &["ORDERS_PAYMENT_WEBHOOK_SECRET of PaymentSimulatorFunction"],
    );
    reports_after(
        set(
            &format!("{SIM_ENV}/ORDERS_PAYMENT_WEBHOOK_URL"),
            json!({"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/orders"}),
        ),
        &["ORDERS_PAYMENT_WEBHOOK_URL of PaymentSimulatorFunction"],
    );
    // The pointers address the template's real blocks.
    let t = super::load(&super::root().join("infra/template.yaml"));
    assert!(
        t.pointer(&format!("{RES}/{SIM_ENV}/ORDERS_PAYMENT_WEBHOOK_URL"))
            .is_some()
    );
}
