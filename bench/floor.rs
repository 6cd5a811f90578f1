//! The benchmark floor: the cheapest JSON endpoint this build can serve, for `bench/run.sh`.
//!
//! It answers `POST /orders` like the service does on the wire (parse a JSON body, answer 201
//! with a small JSON document and a Location) but stores nothing, on the same axum, tokio and
//! serde_json as the service. Whatever the service does beyond this — validation, idempotency,
//! the SQLite transaction and its fsync — is what the ratio in the benchmark table measures.
//! It is a separate binary so nothing of it reaches the service's router or its API document.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

async fn create(axum::Json(body): axum::Json<Value>) -> impl IntoResponse {
    let id = uuid::Uuid::new_v4();
    let customer = body.get("customerId").cloned().unwrap_or(Value::Null);
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/orders/{id}"))],
        axum::Json(json!({
            "orderId": id,
            "customerId": customer,
            "status": "PENDING",
            "currency": "EUR",
        })),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3001".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("floor listening on http://{}", listener.local_addr()?);
    let app = Router::new().route("/orders", post(create));
    axum::serve(listener, app).await
}
