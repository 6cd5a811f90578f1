//! The benchmark's storage ceiling (`bench/run.sh`, item 1b): the service's own router, listener
//! guard, logging and allocator, on a store that keeps nothing.
//!
//! A new order goes through every step the service takes before its database: the request id,
//! the request span, load shedding and the timeout, header and body checks, validation, the
//! idempotency fingerprint, the order, its outbox event and the stored response built and
//! handed to the store, the "order created" log line, the 201. Only the store's work is
//! missing: `create_order` drops what it is given and answers "created". So this is what the
//! service would serve with a storage layer that cost nothing and no saga behind it, and
//! (1b)/(1) bounds the ratio (2)/(1) from above on the machine that measured it.
//!
//! It is a separate binary so nothing of it reaches the service or its API document. It reads
//! the service's own configuration (flags and `ORDERS_*` variables), so the limits match.

use async_trait::async_trait;

use clap::Parser;
use orders::clock::SystemClock;
use orders::config::Config;
use orders::http::{AppState, router};
use orders_domain::lifecycle::{PaymentWebhook, WebhookOutcome};
use orders_domain::store::{
    CancelOrder, CancelOutcome, CreateOrder, CreateOutcome, ListOrders, OrderPage, OrderRecord,
    OrderStore, Respond, StockLevel, StoreError, VoucherRecord,
};
use orders_domain::{CustomerId, OrderId, ProductId};
use std::sync::Arc;

// As in the service: the figure must not differ by allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Remembers nothing: every key is new, every order is created, nothing can be read back.
struct NullStore;

#[async_trait]
impl OrderStore for NullStore {
    async fn create_order(&self, cmd: CreateOrder) -> Result<CreateOutcome, StoreError> {
        // Dropped here, as the SQLite writer drops it after its commit.
        drop(std::hint::black_box(cmd));
        Ok(CreateOutcome::Created)
    }

    async fn get_order(&self, _: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        Ok(None)
    }

    async fn list_orders(&self, _: &ListOrders) -> Result<OrderPage, StoreError> {
        Ok(OrderPage {
            orders: Vec::new(),
            next: None,
        })
    }

    async fn get_inventory(&self, _: &ProductId) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    async fn set_inventory(&self, _: StockLevel) -> Result<(), StoreError> {
        Ok(())
    }

    async fn list_vouchers(&self, _: &CustomerId) -> Result<Vec<VoucherRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn apply_payment_webhook(
        &self,
        _: &PaymentWebhook,
    ) -> Result<WebhookOutcome, StoreError> {
        Ok(WebhookOutcome::Ignored(
            "the storage ceiling keeps nothing".into(),
        ))
    }

    async fn cancel_order(
        &self,
        _: CancelOrder,
        _: Respond<'_>,
    ) -> Result<CancelOutcome, StoreError> {
        Ok(CancelOutcome::NotFound)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config = Config::parse();
    orders::telemetry::init(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    eprintln!(
        "storage ceiling listening on http://{}",
        listener.local_addr()?
    );
    let state = AppState {
        store: Arc::new(NullStore),
        clock: Arc::new(SystemClock),
        settings: Arc::new(config.api_settings()),
    };
    axum::serve(config.guard(listener), router(state)).await
}
