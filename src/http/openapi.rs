//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations so
//! it cannot drift from the code. The document describes the service as configured: with
//! identity on, [`Security`] adds it in one place (the bearer scheme on every operation but the
//! open ones, each with its 401 and, where a caller can name another customer or needs the
//! admin scope, its 403; `customerId` of a new order no longer required, since it defaults to
//! the caller). With identity off none of that applies, and the document does not claim it.
//! The payment webhook is never token-authenticated: its security is the three Standard
//! Webhooks headers ([`Signatures`]), whatever the identity.

use super::{
    ApiSettings, AppState, console, customers, executions, health, inventory, orders,
    subscriptions, webhooks,
};
use crate::identity::Identity;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi};

/// Served without a token: open to every caller, or (the webhook) authenticated otherwise.
pub const OPEN_ROUTES: [&str; 3] = ["/health", "/openapi.json", webhooks::PATH];
/// Where a valid token can still be refused: another customer named, or not an admin.
const FORBIDDEN: [(&str, &str); 4] = [
    ("post", "/orders"),
    ("get", "/orders"),
    ("put", "/inventory/{productId}"),
    ("get", "/customers/{customerId}/vouchers"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orders",
        description = "Idempotent order API with a transactional outbox and a saga. Every status change is also a public event (CloudEvents 1.0; the `data` schemas are the components `SagaInput` for order.created, `OrderChange`, `VoucherIssued`)."
    ),
    modifiers(&Signatures),
    paths(
        orders::create_order,
        orders::get_order,
        orders::cancel::cancel_order,
        orders::list_orders,
        webhooks::payment_webhook,
        inventory::get_inventory,
        inventory::put_inventory,
        customers::list_vouchers,
        executions::redrive_execution,
        health::health,
        openapi_json,
    ),
    // What subscribers receive (embedded) and EventBridge carries (AWS): the `data` of each
    // public event type, version 1 (`SagaInput` is order.created's). The whole events, envelope
    // included, are docs/events/<type>.v1.schema.json, generated from the same types.
    components(schemas(
        orders_domain::event::EventType,
        orders_domain::event::SagaInput,
        orders_domain::event::OrderChange,
        orders_domain::event::VoucherIssued,
    ))
)]
pub struct ApiDoc;

/// The document of a service with these settings: the subscription routes where they are
/// served, and the security its identity applies.
pub fn document(settings: &ApiSettings) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if settings.subscriptions.is_some() {
        doc.merge(subscriptions::SubscriptionsDoc::openapi());
    }
    if settings.metrics.is_some() {
        doc.merge(super::metrics::MetricsDoc::openapi());
    }
    if settings.console.is_some() {
        doc.merge(console::ConsoleDoc::openapi());
    }
    if settings
        .executions
        .as_ref()
        .is_some_and(|e| e.reads.is_some())
    {
        doc.merge(executions::ExecutionReadsDoc::openapi());
    }
    if !matches!(settings.identity, Identity::None) {
        Security.modify(&mut doc);
    }
    doc
}

struct Security;

/// The security schemes of the payment webhook: one per Standard Webhooks header, all three
/// required together (the operation names them in one requirement).
struct Signatures;

impl Modify for Signatures {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let schemes = [
            (
                "webhookId",
                "webhook-id",
                "The message id: the same on every retry, so a redelivery has no second effect.",
            ),
            (
                "webhookTimestamp",
                "webhook-timestamp",
                "Unix seconds; more than 5 minutes from the service's clock is refused.",
            ),
            (
                "webhookSignature",
                "webhook-signature",
                "`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}` under the `whsec_` secret (Standard Webhooks); space-separated entries, one valid `v1` is enough.",
            ),
        ];
        for (name, header, description) in schemes {
            let key = ApiKeyValue::with_description(header, description);
            components.add_security_scheme(name, SecurityScheme::ApiKey(ApiKey::Header(key)));
        }
    }
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(super::problem::PROBLEM_JSON, content)
            .build(),
    )
}

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "With identity on (`--auth jwt`; API Gateway's JWT authorizer on AWS): a JWT \
                 whose `sub` is the customer; the `orders/admin` scope or the `orders-admin` \
                 group makes an admin. With `--auth none` no token is needed.",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
        if let Some(RefOr::T(Schema::Object(create))) = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("CreateOrderRequest"))
        {
            // Absent or null, it is the caller's (see `orders::default_customer`).
            create.required.retain(|field| field != "customerId");
            if let Some(customer) = create.properties.remove("customerId") {
                let nullable = OneOfBuilder::new()
                    .item(customer)
                    .item(ObjectBuilder::new().schema_type(Type::Null));
                create
                    .properties
                    .insert("customerId".into(), nullable.into());
            }
        }
        let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(op) = operation else { continue };
                // The console's page holds no data: its API calls carry the token.
                if OPEN_ROUTES.contains(&path.as_str()) || path == console::PATH {
                    // Open, unless the operation declares a security of its own (the webhook).
                    op.security
                        .get_or_insert_with(|| vec![SecurityRequirement::default()]);
                    continue;
                }
                op.security = Some(vec![bearer.clone()]);
                let responses = &mut op.responses.responses;
                responses.insert(
                    "401".into(),
                    problem("No bearer token, or one that is malformed, expired, wrongly signed, or of another issuer or audience"),
                );
                let operation = (method, path.as_str());
                if FORBIDDEN.contains(&operation)
                    || subscriptions::ADMIN_OPERATIONS.contains(&operation)
                    || console::ADMIN_OPERATIONS.contains(&operation)
                    || executions::ADMIN_OPERATIONS.contains(&operation)
                    || super::metrics::ADMIN_OPERATIONS.contains(&operation)
                {
                    responses.insert(
                        "403".into(),
                        problem(
                            "Another customer named without the admin scope, or an admin action",
                        ),
                    );
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "This document"),
    (status = 503, body = super::problem::Problem, content_type = "application/problem+json", description = "Overloaded or timed out: retry after Retry-After")))]
pub async fn openapi_json(State(s): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(document(&s.settings))
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}
