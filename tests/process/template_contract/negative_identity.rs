//! The identity checks can fail: each test opens a route, weakens the authorizer, points it at
//! another issuer or audience, or turns identity off in the API function's environment, and
//! requires a problem that names the route or the setting.

use super::negative::{RES, at, code_change_reports, remove, reports_after, set};
use serde_json::{Value, json};

const API_ENV: &str = "ApiFunction/Properties/Environment/Variables";
const AUTHORIZER: &str = "HttpApi/Properties/Auth/Authorizers/JwtAuthorizer";
const JWT: &str = "HttpApi/Properties/Auth/Authorizers/JwtAuthorizer/JwtConfiguration";

/// The change that sets `Auth` on the API function's event `event`.
fn event_auth(event: &str, auth: Value) -> impl FnOnce(&mut Value) + '_ {
    move |t| {
        let props = at(
            t,
            &format!("{RES}/ApiFunction/Properties/Events/{event}/Properties"),
        );
        props["Auth"] = auth;
    }
}

/// The change that replaces what `pointer` (from the template's root) addresses.
fn set_root(pointer: &str, value: Value) -> impl FnOnce(&mut Value) + '_ {
    move |t| *at(t, pointer) = value
}

#[test]
fn a_protected_route_without_the_jwt_authorizer_fails() {
    reports_after(
        event_auth("ListOrders", json!({"Authorizer": "NONE"})),
        &[
            "ApiFunction route GET /orders (event ListOrders)",
            "carries the authorizer NONE, expected JwtAuthorizer",
        ],
    );
    reports_after(
        event_auth("PutInventory", json!({"Authorizer": "NONE"})),
        &[
            "route PUT /inventory/{productId} (event PutInventory)",
            "NONE",
        ],
    );
    // The fallback reaches the app too: it needs a token like the operations.
    reports_after(
        event_auth("Fallback", json!({"Authorizer": "NONE"})),
        &["route ANY $default (event Fallback)", "NONE"],
    );
    // Without a default, a route declared without Auth is open.
    reports_after(
        remove("HttpApi/Properties/Auth/DefaultAuthorizer"),
        &["HttpApi HttpApi: DefaultAuthorizer is absent, expected JwtAuthorizer"],
    );
    reports_after(
        remove("HttpApi/Properties/Auth/DefaultAuthorizer"),
        &[
            "route GET /orders/{orderId} (event GetOrder)",
            "carries the authorizer NONE",
        ],
    );
    reports_after(
        event_auth(
            "PutInventory",
            json!({"Authorizer": "JwtAuthorizer", "AuthorizationScopes": ["orders/admin"]}),
        ),
        &["route PUT /inventory/{productId}", "AuthorizationScopes"],
    );
}

#[test]
fn an_open_route_with_an_authorizer_fails() {
    reports_after(
        remove("ApiFunction/Properties/Events/Health/Properties/Auth"),
        &[
            "ApiFunction route GET /health (event Health) is an open route but carries the authorizer JwtAuthorizer",
        ],
    );
    reports_after(
        event_auth("OpenApi", json!({"Authorizer": "JwtAuthorizer"})),
        &[
            "route GET /openapi.json (event OpenApi)",
            "Auth.Authorizer: NONE",
        ],
    );
}

#[test]
fn the_open_routes_of_the_code_are_what_the_template_opens() {
    code_change_reports(
        |c| _ = c.open_routes.insert(("GET".into(), "/orders".into())),
        &[
            "route GET /orders (event ListOrders) is an open route",
            "JwtAuthorizer",
        ],
    );
    code_change_reports(
        |c| _ = c.open_routes.remove(&("GET".into(), "/health".into())),
        &["route GET /health (event Health) carries the authorizer NONE"],
    );
    code_change_reports(
        |c| {
            _ = c
                .open_routes
                .insert(("POST".into(), "/webhooks/subscriptions".into()))
        },
        &["open route POST /webhooks/subscriptions is not an operation of the API"],
    );
}

#[test]
fn an_authorizer_that_is_missing_or_reads_elsewhere_fails() {
    reports_after(
        remove("HttpApi/Properties/Auth"),
        &["HttpApi HttpApi: has 0 authorizers, expected one JWT authorizer"],
    );
    reports_after(
        set(
            &format!("{AUTHORIZER}/IdentitySource"),
            json!("$request.querystring.token"),
        ),
        &[
            "authorizer JwtAuthorizer takes its token from $request.querystring.token",
            "$request.header.Authorization",
        ],
    );
    reports_after(
        |t| at(t, &format!("{RES}/{AUTHORIZER}"))["AuthorizationScopes"] = json!(["orders/admin"]),
        &["authorizer JwtAuthorizer requires AuthorizationScopes"],
    );
    reports_after(
        |t| {
            let auth = at(t, &format!("{RES}/{AUTHORIZER}"));
            auth.as_object_mut().unwrap().remove("JwtConfiguration");
            auth["FunctionArn"] = json!({"Fn::GetAtt": ["ApiFunction", "Arn"]});
        },
        &["authorizer JwtAuthorizer is not a JWT authorizer"],
    );
}

#[test]
fn an_issuer_or_audience_not_from_the_pool_or_the_parameters_fails() {
    reports_after(
        set(
            &format!("{JWT}/issuer"),
            json!("https://issuer.example.com"),
        ),
        &[
            "JWT authorizer JwtAuthorizer: issuer is https://issuer.example.com",
            "expected !If",
        ],
    );
    reports_after(
        set(
            &format!("{JWT}/issuer/Fn::If/1"),
            json!({"Fn::Sub": "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/us-east-1_other"}),
        ),
        &["issuer with the stack's pool is", "us-east-1_other"],
    );
    reports_after(
        set(
            &format!("{JWT}/issuer/Fn::If/2"),
            json!("https://issuer.example.com"),
        ),
        &[
            "issuer with an external issuer is https://issuer.example.com",
            "${JwtIssuer}",
        ],
    );
    reports_after(
        set(
            &format!("{JWT}/audience/Fn::If/1"),
            json!([{"Ref": "AppClient"}]),
        ),
        &[
            "audience with the stack's pool is {\"AppClient\"}",
            "\"OperatorClient\"",
        ],
    );
    reports_after(
        set(
            &format!("{JWT}/audience/Fn::If/2"),
            json!([{"Ref": "JwtAudience"}]),
        ),
        &["audience with an external issuer", "!Split"],
    );
    reports_after(
        set_root(
            "/Conditions/CreateUserPool",
            json!({"Fn::Equals": [{"Ref": "Tracing"}, ""]}),
        ),
        &["issuer is chosen by the condition CreateUserPool, which is not"],
    );
    reports_after(
        set_root(
            "/Parameters/JwtIssuer/Default",
            json!("https://issuer.example.com"),
        ),
        &["parameter JwtIssuer must be a String defaulting to \"\""],
    );
    reports_after(
        remove("UserPool/Condition"),
        &["AWS::Cognito::UserPool UserPool: Condition is None"],
    );
    reports_after(
        remove("OperatorClient/DependsOn"),
        &["OperatorClient: allows scopes of OrdersResourceServer without DependsOn"],
    );
}

#[test]
fn identity_off_or_admins_unknown_to_the_pool_fails() {
    reports_after(
        set(&format!("{API_ENV}/ORDERS_AUTH"), json!("none")),
        &["function ApiFunction: ORDERS_AUTH is none, expected jwt"],
    );
    reports_after(
        set(&format!("{API_ENV}/ORDERS_ADMIN_SCOPE"), json!("admin")),
        &[
            "function ApiFunction: ORDERS_ADMIN_SCOPE is admin",
            "not a scope of the pool's resource servers {\"orders/admin\"}",
        ],
    );
    reports_after(
        set(&format!("{API_ENV}/ORDERS_ADMIN_GROUP"), json!("admins")),
        &["ORDERS_ADMIN_GROUP is admins, not a group of the pool {\"orders-admin\"}"],
    );
    reports_after(
        set(
            "OperatorClient/Properties/AllowedOAuthScopes",
            json!(["aws.cognito.signin.user.admin"]),
        ),
        &["no AWS::Cognito::UserPoolClient of the pool grants orders/admin by client credentials"],
    );
    reports_after(
        set("OperatorClient/Properties/GenerateSecret", json!(false)),
        &["OperatorClient: client credentials need GenerateSecret: true"],
    );
    reports_after(
        remove("UserPoolDomain"),
        &["no AWS::Cognito::UserPoolDomain", "token endpoint"],
    );
}

#[test]
fn outputs_that_do_not_name_the_trust_fail() {
    reports_after(
        set_root("/Outputs/JwtIssuerUrl/Value", json!({"Ref": "JwtIssuer"})),
        &["output JwtIssuerUrl is ${JwtIssuer}, expected the JWT authorizer's issuer"],
    );
    reports_after(
        |t| {
            _ = at(t, "/Outputs")
                .as_object_mut()
                .unwrap()
                .remove("OperatorClientId")
        },
        &["no output gives the id of the app client OperatorClient"],
    );
    reports_after(
        |t| {
            _ = at(t, "/Outputs")
                .as_object_mut()
                .unwrap()
                .remove("TokenEndpoint")
        },
        &["output TokenEndpoint is None"],
    );
}
