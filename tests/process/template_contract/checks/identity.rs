//! Who may call the API. The HTTP API has one JWT authorizer, reading the bearer token of the
//! `Authorization` header, and it is the default of every route: each route of the API
//! function carries it, except the open routes of the code ([`Code::open_routes`]), which
//! declare `Auth.Authorizer: NONE`. The authorizer trusts the stack's Cognito user pool (its
//! issuer URL; its app clients as the audience, since a Cognito access token names its client
//! in `client_id`) or, when the `JwtIssuer` parameter is set, that issuer and the audiences of
//! `JwtAudience`; the pool and its parts exist only in the first case. The API function takes
//! its callers from the authorizer (`ORDERS_AUTH=jwt`), and its admin scope and group are the
//! pool's resource-server scope (which the operators' client-credentials client is granted)
//! and the pool's group. The outputs name the issuer, the pool, its clients and the token
//! endpoint.

use super::Code;
use crate::template_contract::model::{
    Template, one_or_many, prop, reference, referenced_id, str_of,
};
use orders_aws::functions::{ADMIN_GROUP_ENV, ADMIN_SCOPE_ENV, AUTH_ENV};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Where API Gateway finds the token: the `Authorization: Bearer <JWT>` header.
pub const IDENTITY_SOURCE: &str = "$request.header.Authorization";
/// The parameters of an external issuer; both empty by default (the stack's own pool).
pub const ISSUER_PARAMETER: &str = "JwtIssuer";
pub const AUDIENCE_PARAMETER: &str = "JwtAudience";
/// The `ORDERS_AUTH` value under which the API Lambda trusts the authorizer's claims.
pub const AUTH_JWT: &str = "jwt";
/// The authorizer SAM knows as "no authorizer".
const NONE: &str = "NONE";
const USER_POOL: &str = "AWS::Cognito::UserPool";
const CLIENT: &str = "AWS::Cognito::UserPoolClient";

pub fn check(t: &Template, code: &Code, problems: &mut Vec<String>) {
    let Some(api) = t.resource(code.api) else {
        return; // reported by the function checks
    };
    let http_apis = t.of_type("AWS::Serverless::HttpApi");
    let [(api_id, http_api)] = http_apis.as_slice() else {
        problems.push(format!(
            "expected one AWS::Serverless::HttpApi, found {}",
            http_apis.len()
        ));
        return;
    };
    let authorizer = check_authorizer(api_id, http_api, problems);
    check_routes(
        code,
        api,
        api_id,
        http_api,
        authorizer.map(|(n, _)| n),
        problems,
    );
    let pool = user_pool(t, problems);
    if let Some((name, config)) = authorizer {
        check_trust(t, name, config, pool, problems);
    }
    check_api_env(t, code, api, pool, problems);
    check_outputs(t, authorizer, pool, problems);
}

/// The HttpApi's one authorizer, when it is a JWT authorizer: `(name, JwtConfiguration)`.
fn check_authorizer<'a>(
    api_id: &str,
    http_api: &'a Value,
    problems: &mut Vec<String>,
) -> Option<(&'a str, &'a Value)> {
    let auth = prop(http_api, "Auth");
    let authorizers = auth
        .and_then(|a| a.get("Authorizers"))
        .and_then(Value::as_object);
    let all: Vec<(&str, &Value)> = authorizers
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let [(name, authorizer)] = all.as_slice() else {
        problems.push(format!(
            "HttpApi {api_id}: has {} authorizers, expected one JWT authorizer (Auth.Authorizers.<name>.JwtConfiguration)",
            all.len()
        ));
        return None;
    };
    let Some(config) = authorizer.get("JwtConfiguration") else {
        problems.push(format!(
            "HttpApi {api_id}: authorizer {name} is not a JWT authorizer (no JwtConfiguration)"
        ));
        return None;
    };
    let source = authorizer
        .get("IdentitySource")
        .map_or("absent".to_owned(), reference);
    if source != IDENTITY_SOURCE {
        problems.push(format!(
            "HttpApi {api_id}: authorizer {name} takes its token from {source}, expected {IDENTITY_SOURCE}"
        ));
    }
    // A scope required of every token would refuse customers' tokens (and admins by group):
    // what a caller may do is the app's decision, from the verified claims.
    if authorizer.get("AuthorizationScopes").is_some() {
        problems.push(format!(
            "HttpApi {api_id}: authorizer {name} requires AuthorizationScopes of every token; admin rights are decided by the app"
        ));
    }
    let default = auth
        .and_then(|a| a.get("DefaultAuthorizer"))
        .map_or("absent".to_owned(), reference);
    if default != *name {
        problems.push(format!(
            "HttpApi {api_id}: DefaultAuthorizer is {default}, expected {name} (a route declared without Auth must need a token)"
        ));
    }
    Some((name, config))
}

/// Each HttpApi event of the API function: the JWT authorizer, or `NONE` for an open route.
fn check_routes(
    code: &Code,
    api: &Value,
    api_id: &str,
    http_api: &Value,
    jwt: Option<&str>,
    problems: &mut Vec<String>,
) {
    for route in code.open_routes.difference(&code.routes) {
        problems.push(format!(
            "open route {} {} is not an operation of the API",
            route.0, route.1
        ));
    }
    let default = prop(http_api, "Auth")
        .and_then(|a| a.get("DefaultAuthorizer"))
        .map(reference);
    let jwt = jwt.unwrap_or("<the JWT authorizer>");
    let open: Vec<String> = code
        .open_routes
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let events = prop(api, "Events").and_then(Value::as_object);
    for (event_name, event) in events.into_iter().flatten() {
        if str_of(event.get("Type")) != Some("HttpApi") {
            continue;
        }
        let on = event.pointer("/Properties/ApiId").map(reference);
        if on.as_deref().and_then(referenced_id) != Some(api_id) {
            continue; // reported by wiring
        }
        let p = |k: &str| str_of(event.pointer(&format!("/Properties/{k}"))).unwrap_or("?");
        let method = p("Method").to_ascii_uppercase();
        let path = p("Path");
        let key = (method.clone(), super::route_shape(path));
        let declared = event.pointer("/Properties/Auth/Authorizer").map(reference);
        let carries = declared
            .clone()
            .or_else(|| default.clone())
            .unwrap_or_else(|| NONE.to_owned());
        let route = format!("{} route {method} {path} (event {event_name})", code.api);
        if code.open_routes.contains(&key) {
            if declared.as_deref() != Some(NONE) {
                problems.push(format!(
                    "{route} is an open route but carries the authorizer {carries}; it must declare Auth.Authorizer: {NONE}"
                ));
            }
        } else if carries != jwt {
            problems.push(format!(
                "{route} carries the authorizer {carries}, expected {jwt}: only {open:?} are open"
            ));
        }
        if event
            .pointer("/Properties/Auth/AuthorizationScopes")
            .is_some()
        {
            problems.push(format!(
                "{route} requires AuthorizationScopes; admin rights are decided by the app (an admin by group holds no scope)"
            ));
        }
    }
}

/// The stack's user pool, when there is exactly one.
fn user_pool<'a>(t: &Template<'a>, problems: &mut Vec<String>) -> Option<&'a str> {
    let pools = t.of_type(USER_POOL);
    match pools.as_slice() {
        [(id, _)] => Some(id),
        _ => {
            problems.push(format!(
                "expected one {USER_POOL} (the issuer of the stack's own tokens), found {}",
                pools.len()
            ));
            None
        }
    }
}

/// What a condition says about the issuer: `Some(true)` when it holds exactly when
/// `JwtIssuer` is empty (the stack's pool), `Some(false)` when exactly when it is set.
fn pool_side(t: &Template, condition: &str) -> Option<bool> {
    let body = t.0.get("Conditions")?.get(condition)?;
    let is_empty_issuer = |v: &Value| {
        let Some(Value::Array(args)) = v.get("Fn::Equals") else {
            return false;
        };
        let issuer = json!({ "Ref": ISSUER_PARAMETER });
        let empty = json!("");
        matches!(args.as_slice(), [a, b] if (*a == issuer && *b == empty) || (*a == empty && *b == issuer))
    };
    if is_empty_issuer(body) {
        return Some(true);
    }
    match body.get("Fn::Not") {
        Some(Value::Array(inner)) if inner.len() == 1 && is_empty_issuer(&inner[0]) => Some(false),
        _ => None,
    }
}

/// `Fn::If [condition, a, b]` as `(pool branch, external branch, condition)`, when the
/// condition is one on `JwtIssuer` being empty.
fn by_issuer<'a>(t: &Template, value: &'a Value) -> Result<(&'a Value, &'a Value, String), String> {
    let Some(Value::Array(args)) = value.get("Fn::If") else {
        return Err(format!(
            "is {}, expected !If on a condition that JwtIssuer is empty",
            reference(value)
        ));
    };
    let [cond, yes, no] = args.as_slice() else {
        return Err("has a malformed Fn::If".into());
    };
    let name = str_of(Some(cond)).unwrap_or("?").to_owned();
    match pool_side(t, &name) {
        Some(true) => Ok((yes, no, name)),
        Some(false) => Ok((no, yes, name)),
        None => Err(format!(
            "is chosen by the condition {name}, which is not !Equals [!Ref {ISSUER_PARAMETER}, \"\"] (or its !Not)"
        )),
    }
}

/// The issuer URL of a Cognito user pool, in the spellings that name it.
fn pool_issuers(pool: &str) -> [String; 3] {
    [
        format!("https://cognito-idp.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{pool}}}"),
        format!("https://cognito-idp.${{AWS::Region}}.amazonaws.com/${{{pool}}}"),
        format!("${{{pool}.ProviderURL}}"),
    ]
}

/// The app clients of `pool`, by logical id.
fn pool_clients(t: &Template, pool: &str) -> BTreeSet<String> {
    t.of_type(CLIENT)
        .into_iter()
        .filter(|(_, c)| prop(c, "UserPoolId").map(reference) == Some(format!("${{{pool}}}")))
        .map(|(id, _)| id.to_owned())
        .collect()
}

fn check_trust(
    t: &Template,
    name: &str,
    config: &Value,
    pool: Option<&str>,
    problems: &mut Vec<String>,
) {
    let who = format!("JWT authorizer {name}");
    for param in [ISSUER_PARAMETER, AUDIENCE_PARAMETER] {
        let p = t.0.pointer(&format!("/Parameters/{param}"));
        let kind = p.and_then(|p| str_of(p.get("Type")));
        let default = p.and_then(|p| p.get("Default"));
        if p.is_none() {
            problems.push(format!(
                "parameter {param} is missing (an external issuer's {param})"
            ));
        } else if kind != Some("String") || default != Some(&json!("")) {
            problems.push(format!(
                "parameter {param} must be a String defaulting to \"\" (the stack's own pool unless told otherwise); is {kind:?} defaulting to {default:?}"
            ));
        }
    }
    let Some(pool) = pool else { return };
    // Only the stack's own pool is created: every Cognito resource on the pool's side.
    for (id, resource) in t.resources() {
        let kind = str_of(resource.get("Type")).unwrap_or("");
        if !kind.starts_with("AWS::Cognito::") {
            continue;
        }
        let condition = str_of(resource.get("Condition"));
        if condition.and_then(|c| pool_side(t, c)) != Some(true) {
            problems.push(format!(
                "{kind} {id}: Condition is {condition:?}, expected one that holds when {ISSUER_PARAMETER} is empty (no pool with an external issuer)"
            ));
        }
    }

    match config.get("issuer").map(|i| by_issuer(t, i)) {
        None => problems.push(format!("{who}: JwtConfiguration has no issuer")),
        Some(Err(e)) => problems.push(format!("{who}: issuer {e}")),
        Some(Ok((own, external, _))) => {
            let own = reference(own);
            let want = pool_issuers(pool);
            if !want.contains(&own) {
                problems.push(format!(
                    "{who}: issuer with the stack's pool is {own}, expected {}",
                    want[0]
                ));
            }
            let external = reference(external);
            if external != format!("${{{ISSUER_PARAMETER}}}") {
                problems.push(format!(
                    "{who}: issuer with an external issuer is {external}, expected ${{{ISSUER_PARAMETER}}}"
                ));
            }
        }
    }

    let clients = pool_clients(t, pool);
    for (id, _) in t.of_type(CLIENT) {
        if !clients.contains(id) {
            problems.push(format!("{CLIENT} {id} is not a client of the pool {pool}"));
        }
    }
    match config.get("audience").map(|a| by_issuer(t, a)) {
        None => problems.push(format!("{who}: JwtConfiguration has no audience")),
        Some(Err(e)) => problems.push(format!("{who}: audience {e}")),
        Some(Ok((own, external, _))) => {
            let own: BTreeSet<String> = match own {
                Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        let r = reference(i);
                        referenced_id(&r)
                            .filter(|id| r == format!("${{{id}}}"))
                            .map_or(r.clone(), str::to_owned)
                    })
                    .collect(),
                other => BTreeSet::from([reference(other)]),
            };
            if own != clients || clients.is_empty() {
                problems.push(format!(
                    "{who}: audience with the stack's pool is {own:?}, expected the ids of the pool's app clients {clients:?} (a Cognito access token names its client in client_id)"
                ));
            }
            let want = json!({"Fn::Split": [",", {"Ref": AUDIENCE_PARAMETER}]});
            if *external != want {
                problems.push(format!(
                    "{who}: audience with an external issuer is {external}, expected !Split [\",\", !Ref {AUDIENCE_PARAMETER}]"
                ));
            }
        }
    }
}

/// `ORDERS_AUTH=jwt`, and the admin scope and group the pool defines and grants.
fn check_api_env(
    t: &Template,
    code: &Code,
    api: &Value,
    pool: Option<&str>,
    problems: &mut Vec<String>,
) {
    let name = code.api;
    let env = t
        .function_prop(api, "Environment")
        .and_then(|e| e.get("Variables"));
    let var = |key: &str| env.and_then(|e| e.get(key));
    let literal = |key: &str| var(key).and_then(Value::as_str);
    let shown = |key: &str| var(key).map_or("absent".to_owned(), reference);

    if literal(AUTH_ENV) != Some(AUTH_JWT) {
        problems.push(format!(
            "function {name}: {AUTH_ENV} is {}, expected {AUTH_JWT} (callers are who the JWT authorizer verified; anything else leaves the API without identity)",
            shown(AUTH_ENV)
        ));
    }
    let Some(pool) = pool else { return };
    let on_pool = |r: &Value| prop(r, "UserPoolId").map(reference) == Some(format!("${{{pool}}}"));

    // The scope: `<identifier>/<scope name>` of a resource server of the pool.
    let scopes: BTreeSet<String> = t
        .of_type("AWS::Cognito::UserPoolResourceServer")
        .into_iter()
        .filter(|(_, r)| on_pool(r))
        .flat_map(|(_, r)| {
            let identifier = str_of(prop(r, "Identifier")).unwrap_or("?").to_owned();
            one_or_many(prop(r, "Scopes"))
                .map(move |s| format!("{identifier}/{}", str_of(s.get("ScopeName")).unwrap_or("?")))
                .collect::<Vec<_>>()
        })
        .collect();
    let scope = literal(ADMIN_SCOPE_ENV);
    match scope {
        Some(s) if scopes.contains(s) => {}
        _ => problems.push(format!(
            "function {name}: {ADMIN_SCOPE_ENV} is {}, not a scope of the pool's resource servers {scopes:?}",
            shown(ADMIN_SCOPE_ENV)
        )),
    }
    let groups: BTreeSet<String> = t
        .of_type("AWS::Cognito::UserPoolGroup")
        .into_iter()
        .filter(|(_, g)| on_pool(g))
        .map(|(_, g)| prop(g, "GroupName").map_or("?".to_owned(), reference))
        .collect();
    match literal(ADMIN_GROUP_ENV) {
        Some(g) if groups.contains(g) => {}
        _ => problems.push(format!(
            "function {name}: {ADMIN_GROUP_ENV} is {}, not a group of the pool {groups:?}",
            shown(ADMIN_GROUP_ENV)
        )),
    }

    // Operators: a confidential client granted the admin scope by client credentials; users:
    // a public client signing in with SRP.
    let scope = scope.unwrap_or("?");
    let servers: Vec<(&str, String)> = t
        .of_type("AWS::Cognito::UserPoolResourceServer")
        .into_iter()
        .map(|(id, r)| (id, str_of(prop(r, "Identifier")).unwrap_or("?").to_owned()))
        .collect();
    let mut operators = 0;
    let mut users = 0;
    for (id, client) in t.of_type(CLIENT) {
        let list =
            |k: &str| -> Vec<String> { one_or_many(prop(client, k)).map(reference).collect() };
        let secret = prop(client, "GenerateSecret") == Some(&json!(true));
        if list("AllowedOAuthFlows")
            .iter()
            .any(|f| f == "client_credentials")
        {
            if !secret {
                problems.push(format!(
                    "{CLIENT} {id}: client credentials need GenerateSecret: true"
                ));
            }
            let allowed = list("AllowedOAuthScopes");
            if allowed.iter().any(|s| s == scope) {
                operators += 1;
            }
            // A scope named as text needs its resource server created first.
            let after: Vec<String> = one_or_many(client.get("DependsOn"))
                .map(reference)
                .collect();
            for (server, identifier) in &servers {
                let named = allowed
                    .iter()
                    .any(|s| s.split('/').next() == Some(identifier.as_str()));
                if named && !after.iter().any(|d| d == server) {
                    problems.push(format!(
                        "{CLIENT} {id}: allows scopes of {server} without DependsOn: {server} (CloudFormation may create the client first, and fail)"
                    ));
                }
            }
        } else if !secret
            && list("ExplicitAuthFlows")
                .iter()
                .any(|f| f == "ALLOW_USER_SRP_AUTH")
        {
            users += 1;
        }
    }
    if operators == 0 {
        problems.push(format!(
            "no {CLIENT} of the pool grants {scope} by client credentials (GenerateSecret: true, AllowedOAuthFlows: [client_credentials], AllowedOAuthScopes: [{scope}]): operators could not get an admin token"
        ));
    }
    if users == 0 {
        problems.push(format!(
            "no public {CLIENT} (no secret, ALLOW_USER_SRP_AUTH) for users to sign in with"
        ));
    }
    if t.of_type("AWS::Cognito::UserPoolDomain").is_empty() {
        problems.push(format!(
            "no AWS::Cognito::UserPoolDomain on {pool}: the client-credentials flow has no token endpoint"
        ));
    }
}

fn check_outputs(
    t: &Template,
    authorizer: Option<(&str, &Value)>,
    pool: Option<&str>,
    problems: &mut Vec<String>,
) {
    if let Some((_, config)) = authorizer
        && let Some(issuer) = config.get("issuer")
    {
        let got = t.output("JwtIssuerUrl");
        if got != Some(issuer) {
            problems.push(format!(
                "output JwtIssuerUrl is {}, expected the JWT authorizer's issuer {}",
                got.map_or("absent".to_owned(), reference),
                reference(issuer)
            ));
        }
    }
    let Some(pool) = pool else { return };
    let mut want = vec![("UserPoolId".to_owned(), format!("${{{pool}}}"))];
    for domain in t.of_type("AWS::Cognito::UserPoolDomain") {
        want.push((
            "TokenEndpoint".into(),
            format!(
                "https://${{{}}}.auth.${{AWS::Region}}.amazoncognito.com/oauth2/token",
                domain.0
            ),
        ));
    }
    for (name, value) in want {
        let got = t.output(&name).map(reference);
        if got.as_deref() != Some(value.as_str()) {
            problems.push(format!("output {name} is {got:?}, expected {value}"));
        }
    }
    let outputs: BTreeSet<String> =
        t.0.get("Outputs")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(_, o)| o.get("Value").map(reference))
            .collect();
    for client in pool_clients(t, pool) {
        if !outputs.contains(&format!("${{{client}}}")) {
            problems.push(format!("no output gives the id of the app client {client}"));
        }
    }
}
