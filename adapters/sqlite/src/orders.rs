//! `OrderStore` on SQLite: the create-order transaction and the reads behind the API (the
//! rows are read in `order_reads.rs`; the payment webhook and the cancellation, each one
//! transaction too, are in `lifecycle.rs`).

use super::order_reads::{VOUCHER_COLUMNS, corrupt, list_page, read_order, voucher_from_row};
use super::{SqliteStore, events, sqlite_err};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::idempotency::StoredResponse;
use orders_domain::lifecycle::{PaymentWebhook, WebhookOutcome};
use orders_domain::store::{
    CancelOrder, CancelOutcome, CreateOrder, CreateOutcome, IdempotencyRecord, ListOrders,
    OrderPage, OrderRecord, OrderStore, Respond, StockLevel, StoreError, VoucherRecord,
    VoucherRefusal, items_to_text,
};
use orders_domain::time::format_millis as format_ts;
use orders_domain::{CustomerId, EventType, OrderId, ProductId};
use rusqlite::{Connection, OptionalExtension, params};

pub(crate) fn live_idempotency(
    conn: &Connection,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    conn.prepare_cached(
        "SELECT fingerprint, status, location, body, expires_at_ms FROM idempotency
         WHERE key = ?1 AND expires_at_ms > ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![key, now.timestamp_millis()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u16>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()
    })
    .map_err(sqlite_err)?
    .map(|(fingerprint, status, location, body, exp)| {
        let expires_at =
            DateTime::from_timestamp_millis(exp).ok_or_else(|| corrupt("idempotency expiry"))?;
        Ok(IdempotencyRecord {
            fingerprint,
            response: StoredResponse {
                status,
                location,
                body,
            },
            expires_at,
        })
    })
    .transpose()
}

/// Redeems a voucher (READY -> USED) or explains why it cannot be.
fn redeem_voucher(
    conn: &Connection,
    code: &str,
    customer: &str,
    order: &str,
    now: &str,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE vouchers SET status = 'USED', redeemed_by_order = ?3, updated_at = ?4
             WHERE code = ?1 AND customer_id = ?2 AND status = 'READY'",
        )
        .and_then(|mut st| st.execute(params![code, customer, order, now]))
        .map_err(sqlite_err)?;
    if changed == 1 {
        return Ok(());
    }
    let found: Option<String> = conn
        .query_row(
            "SELECT customer_id FROM vouchers WHERE code = ?1",
            [code],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite_err)?;
    let reason = match found {
        None => VoucherRefusal::Unknown,
        Some(owner) if owner != customer => VoucherRefusal::OtherCustomer,
        Some(_) => VoucherRefusal::NotReady,
    };
    Err(StoreError::VoucherUnavailable {
        code: code.to_owned(),
        reason,
    })
}

fn insert_order(conn: &Connection, cmd: &CreateOrder) -> Result<CreateOutcome, StoreError> {
    if let Some(idem) = &cmd.idempotency {
        // Decided here, under the write lock, not from the fast-path read: this is what makes
        // concurrent requests with one key (from any process) create exactly one order.
        if let Some(rec) = live_idempotency(conn, idem.key.as_str(), cmd.now)? {
            return Ok(rec.outcome_for(&idem.fingerprint));
        }
    }
    let o = &cmd.order;
    let id = o.id.to_string();
    let created = format_ts(o.created_at);
    if let Some(code) = &o.voucher_code {
        redeem_voucher(conn, code.as_str(), o.customer_id.as_str(), &id, &created)?;
    }
    let items = items_to_text(&o.items);
    let run = || -> rusqlite::Result<i64> {
        conn.prepare_cached(
            "INSERT INTO orders (order_id, customer_id, status, version, items, subtotal_cents, discount_cents,
                 total_cents, currency, payment_method, voucher_code, created_at, updated_at, execution, traceparent)
             VALUES (?1, ?2, 'PENDING', 1, ?3, ?4, ?5, ?6, 'EUR', ?7, ?8, ?9, ?9, ?10, ?11)",
        )?
        .execute(params![
            id,
            o.customer_id.as_str(),
            items,
            o.subtotal.0,
            o.discount.0,
            o.total.0,
            o.payment_method.as_str(),
            o.voucher_code.as_ref().map(|c| c.as_str()),
            created,
            cmd.event.id.to_string(),
            cmd.event.traceparent.as_ref().map(|t| t.as_str())
        ])?;
        let payload = serde_json::to_string(&cmd.event).expect("an event always serializes");
        conn.prepare_cached(
            "INSERT INTO outbox (event_id, order_id, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![cmd.event.id.to_string(), id, payload, created])?;
        let seq = conn.last_insert_rowid();
        if let Some(idem) = &cmd.idempotency {
            // REPLACE: an expired record may still be stored; it counts as absent.
            conn.prepare_cached(
                "INSERT OR REPLACE INTO idempotency (key, fingerprint, status, location, body, order_id, created_at, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                idem.key.as_str(),
                idem.fingerprint,
                idem.response.status,
                idem.response.location,
                idem.response.body,
                id,
                created,
                idem.expires_at.timestamp_millis()
            ])?;
        }
        Ok(seq)
    };
    let seq = run().map_err(sqlite_err)?;
    let created_ms = o.created_at.timestamp_millis();
    events::fan_out(conn, seq, &id, EventType::OrderCreated, created_ms)?;
    Ok(CreateOutcome::Created)
}

#[async_trait]
impl OrderStore for SqliteStore {
    async fn apply_payment_webhook(
        &self,
        webhook: &PaymentWebhook,
    ) -> Result<WebhookOutcome, StoreError> {
        self.payment_webhook(webhook).await
    }

    async fn cancel_order(
        &self,
        cmd: CancelOrder,
        respond: Respond<'_>,
    ) -> Result<CancelOutcome, StoreError> {
        self.cancel(cmd, respond).await
    }

    async fn create_order(&self, cmd: CreateOrder) -> Result<CreateOutcome, StoreError> {
        // A live record for the key is looked up first on a read connection: a replay never
        // queues behind writes. The decision that counts is repeated inside the write.
        if let Some(idem) = &cmd.idempotency
            && let Some(rec) = self
                .readers
                .read_now(|conn| live_idempotency(conn, idem.key.as_str(), cmd.now))
                .await?
        {
            return Ok(rec.outcome_for(&idem.fingerprint));
        }
        let outcome = self.write(move |conn| insert_order(conn, &cmd)).await?;
        if outcome == CreateOutcome::Created {
            self.outbox_signal.notify_one();
            self.events_signal.notify_one();
        }
        Ok(outcome)
    }

    async fn get_order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        self.readers
            .read_now(|conn| read_order(conn, &id.to_string()))
            .await
    }

    async fn list_orders(&self, query: &ListOrders) -> Result<OrderPage, StoreError> {
        let (limit, after) = (query.limit, query.after.clone());
        let customer = query.customer.as_str().to_owned();
        self.readers
            .read_now(|conn| list_page(conn, &customer, limit, after))
            .await
    }

    async fn get_inventory(&self, product: &ProductId) -> Result<Option<i64>, StoreError> {
        let product = product.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT available FROM inventory WHERE product_id = ?1")
                .and_then(|mut st| st.query_row([product], |r| r.get(0)).optional())
                .map_err(sqlite_err)
        })
        .await
    }

    async fn set_inventory(&self, level: StockLevel) -> Result<(), StoreError> {
        let (product, available, now) = (level.product.to_string(), level.available, level.at);
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO inventory (product_id, available, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (product_id) DO UPDATE SET available = excluded.available, updated_at = excluded.updated_at",
            )
            .and_then(|mut st| st.execute(params![product, available, format_ts(now)]))
            .map(|_| ())
            .map_err(sqlite_err)
        })
        .await
    }

    async fn list_vouchers(&self, customer: &CustomerId) -> Result<Vec<VoucherRecord>, StoreError> {
        let customer = customer.as_str().to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {VOUCHER_COLUMNS} FROM vouchers WHERE customer_id = ?1 ORDER BY created_at, code");
            conn.prepare_cached(&sql)
                .and_then(|mut st| st.query_map([customer], voucher_from_row)?.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(sqlite_err)?
                .into_iter()
                .collect()
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Reads answer on a full disk: only the writer knows that writes are refused.
        if self.write_refusals().refusing {
            return Err(StoreError::StorageFull);
        }
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(sqlite_err)
        })
        .await
    }
}
