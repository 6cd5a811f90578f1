//! The Orders saga as a Restate Virtual Object (`Order`, keyed by the order id; its exclusive
//! `place` handler is the saga) and the stock as another (`Inventory`, keyed by product id),
//! mirroring `workflow/statemachine.asl.json`:
//! ReserveInventory -> RequestPayment (wait for the provider's webhook) -> SendNotification ->
//! PrepareShipment (wait for the warehouse's callback) -> MarkShipped -> IssueVoucher (total
//! strictly over 10,000 cents) -> MarkCompleted; a failure compensates linearly (refund if
//! charged, release what was reserved) and ends FAILED with its reason.
//!
//! Invariants, and why they hold:
//! - One saga per order: a submission carries `idempotency-key: <order id>`, so Restate
//!   deduplicates a retried send (within its idempotency retention, 1 day by default) and
//!   answers it with the first invocation; and `place` is exclusive per key and returns at once
//!   when the order already has a status, so even a send without the key or after the
//!   retention starts no second saga. (A Restate Workflow would give run-once per key by
//!   itself, but its ingress refuses the `idempotency-key` header with 400, and the benchmark's
//!   load generator sends one, as it does to Orders.)
//! - Every effect once: calls to `Inventory` are journaled Restate calls (delivered exactly
//!   once), the provider and the warehouse are asked inside `ctx.run` (journaled; a retry
//!   re-asks with the same payment id / order id, which the actors deduplicate), and the waits
//!   are awakeables, which the actors resolve through the Restate ingress.
//! - All order state is the object's K/V state (`order`, `status`, `payment`, `notification`,
//!   `shipment`, `voucher`, `failureReason`); stock is the `available` key of each product's
//!   object, its first value taken from the catalogue Orders seeds.
//! - The final time of an order is taken only after its final status is durable (a journaled
//!   no-op `ctx.run` after the status write is acknowledged after it, the log being ordered),
//!   and kept in the in-memory [`Finals`] side channel, which is measurement only.

use crate::actors::Finals;
use crate::order;
use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// RequestPayment's TimeoutSeconds in the Orders state machine.
const PAYMENT_TIMEOUT: Duration = Duration::from_secs(900);
/// PrepareShipment's TimeoutSeconds.
const SHIPMENT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Orders strictly over this earn a voucher of [`VOUCHER_CENTS`].
const VOUCHER_THRESHOLD_CENTS: i64 = 10_000;
const VOUCHER_CENTS: i64 = 500;

/// The catalogue Orders seeds on first start (`domain/src/catalogue.rs`).
const CATALOGUE: [(&str, i64); 6] = [
    ("laptop", 1_000_000),
    ("monitor", 1_000_000),
    ("keyboard", 1_000_000),
    ("mouse", 1_000_000),
    ("headphones", 1_000_000),
    ("sold-out", 0),
];

/// What the steps talk to.
pub struct Deps {
    pub http: reqwest::Client,
    /// The in-process actors' base URL (`http://127.0.0.1:port`).
    pub actors: String,
    pub finals: Arc<Finals>,
}

/// The provider's answer, as the webhook handler resolves the payment awakeable with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAnswer {
    /// `payment.succeeded` or `payment.failed`.
    pub result: String,
    pub reason: Option<String>,
}

/// The warehouse's callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    pub tracking_number: String,
    pub shipped_at_micros: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub order_id: String,
    pub status: String,
    pub failure_reason: Option<String>,
}

/// The run's progress, for compensation: what there is to give back.
#[derive(Default)]
struct Held {
    reserved: Vec<(String, u32)>,
    charged: bool,
}

pub struct Order(pub Arc<Deps>);

#[restate_sdk::object]
impl Order {
    #[handler]
    async fn place(
        &self,
        ctx: ObjectContext<'_>,
        body: Json<Value>,
    ) -> HandlerResult<Json<Outcome>> {
        let order_id = ctx.key().to_owned();
        if let Some(status) = ctx.get::<String>("status").await? {
            // Submitted before: that saga is (or was) the order's only one.
            let failure_reason = ctx.get::<String>("failureReason").await?;
            return Ok(Json(Outcome {
                order_id,
                status,
                failure_reason,
            }));
        }
        let hex = order_hex(&order_id)
            .ok_or_else(|| TerminalError::new_with_code(400, "the order id must be a UUID"))?;
        let draft = order::validate(&body.0)
            .map_err(|errs| TerminalError::new_with_code(400, errs.join("; ")))?;
        ctx.set("order", Json(draft.clone()));
        ctx.set("status", "PENDING".to_owned());
        let mut held = Held::default();

        // ReserveInventory: every product or none; OutOfStock is final.
        for (product, quantity) in draft.per_product() {
            let inventory = ctx.object_client::<InventoryClient>(product.clone());
            if !inventory.reserve(quantity).call().await? {
                return self.compensate(&ctx, held, "OutOfStock").await;
            }
            held.reserved.push((product, quantity));
        }
        ctx.set("status", "INVENTORY_RESERVED".to_owned());

        // RequestPayment: ask for the charge, then wait for the signed webhook's answer.
        let payment_id = format!("pay_{hex}");
        ctx.set("status", "AWAITING_PAYMENT".to_owned());
        let (awakeable_id, answer) = ctx.awakeable::<Json<PaymentAnswer>>();
        let charge = serde_json::json!({
            "paymentId": payment_id, "orderId": order_id, "amountCents": draft.total_cents,
            "currency": "EUR", "paymentMethod": draft.payment_method,
            "metadata": {"awakeableId": awakeable_id},
        });
        ctx.run(|| self.post("/charges", Some(&payment_id), charge))
            .name("RequestPayment")
            .await?;
        let answer = restate_sdk::select! {
            a = answer => Some(a?.0),
            _ = ctx.sleep(PAYMENT_TIMEOUT) => None,
        };
        match answer {
            None => return self.compensate(&ctx, held, "PaymentTimeout").await,
            Some(a) if a.result != "payment.succeeded" => {
                return self.compensate(&ctx, held, "PaymentDeclined").await;
            }
            Some(_) => {}
        }
        held.charged = true;
        let payment = serde_json::json!({"paymentId": payment_id, "status": "SUCCEEDED"});
        ctx.set("payment", Json(payment));
        ctx.set("status", "PAYMENT_PROCESSED".to_owned());

        // SendNotification: recorded and logged; it never fails a paid order.
        let customer = draft.customer_id.clone();
        let sent_at = ctx
            .run(|| async move {
                tracing::debug!(customer_id = %customer, "order notification sent");
                Ok(now_micros())
            })
            .name("SendNotification")
            .await?;
        ctx.set(
            "notification",
            Json(serde_json::json!({"sentAtMicros": sent_at})),
        );

        // PrepareShipment: hand the parcel to the warehouse, wait for its callback.
        let (awakeable_id, shipped) = ctx.awakeable::<Json<Shipment>>();
        let request = serde_json::json!({
            "orderId": order_id, "items": draft.items, "awakeableId": awakeable_id,
        });
        ctx.run(|| self.post("/shipments", None, request))
            .name("PrepareShipment")
            .await?;
        let shipped = restate_sdk::select! {
            s = shipped => Some(s?.0),
            _ = ctx.sleep(SHIPMENT_TIMEOUT) => None,
        };
        let Some(shipment) = shipped else {
            return self.compensate(&ctx, held, "ShipmentTimeout").await;
        };

        // MarkShipped: from here on the order can only complete.
        ctx.set("shipment", Json(shipment));
        ctx.set("status", "SHIPPED".to_owned());

        // IssueVoucher, for orders strictly over 100.00 EUR.
        if draft.total_cents > VOUCHER_THRESHOLD_CENTS {
            let voucher = serde_json::json!({
                "voucherCode": format!("V-{}", hex[..16].to_ascii_uppercase()),
                "customerId": draft.customer_id, "discountCents": VOUCHER_CENTS,
                "status": "READY",
            });
            ctx.set("voucher", Json(voucher));
        }

        // MarkCompleted.
        ctx.set("status", "COMPLETED".to_owned());
        self.finish(&ctx, "COMPLETED", None).await
    }

    /// The order's state, for checks: every K/V entry the saga wrote.
    #[handler]
    async fn state(&self, ctx: SharedObjectContext<'_>) -> HandlerResult<Json<Value>> {
        let mut out = serde_json::Map::new();
        for key in ctx.get_keys().await? {
            if let Some(Json(v)) = ctx.get::<Json<Value>>(&key).await? {
                out.insert(key, v);
            }
        }
        Ok(Json(Value::Object(out)))
    }
}

impl Order {
    /// BeginCompensation -> RefundPayment -> ReleaseInventory -> MarkFailed, each a no-op when
    /// there is nothing to give back.
    async fn compensate(
        &self,
        ctx: &ObjectContext<'_>,
        held: Held,
        reason: &str,
    ) -> HandlerResult<Json<Outcome>> {
        ctx.set("status", "COMPENSATING".to_owned());
        if held.charged {
            let key = format!("pay_{}", order_hex(ctx.key()).unwrap_or_default());
            let body = serde_json::json!({"paymentId": key});
            ctx.run(|| self.post("/refunds", Some(&key), body))
                .name("RefundPayment")
                .await?;
        }
        for (product, quantity) in held.reserved {
            ctx.object_client::<InventoryClient>(product)
                .release(quantity)
                .call()
                .await?;
        }
        ctx.set("failureReason", reason.to_owned());
        ctx.set("status", "FAILED".to_owned());
        self.finish(ctx, "FAILED", Some(reason.to_owned())).await
    }

    /// Waits until the final status is durable, then records the final time.
    async fn finish(
        &self,
        ctx: &ObjectContext<'_>,
        status: &str,
        failure_reason: Option<String>,
    ) -> HandlerResult<Json<Outcome>> {
        ctx.run(|| async { Ok(()) })
            .name("FinalStatusDurable")
            .await?;
        let order_id = ctx.key().to_owned();
        self.0.finals.record(&order_id, status, now_micros());
        Ok(Json(Outcome {
            order_id,
            status: status.to_owned(),
            failure_reason,
        }))
    }

    /// POSTs `body` to an actor; anything but 2xx is an error, so the step is retried.
    async fn post(
        &self,
        path: &str,
        idempotency_key: Option<&str>,
        body: Value,
    ) -> HandlerResult<()> {
        let mut req = self
            .0
            .http
            .post(format!("{}{path}", self.0.actors))
            .json(&body);
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        let res = req.send().await?;
        if !res.status().is_success() {
            return Err(format!("{path} answered {}", res.status()).into());
        }
        Ok(())
    }
}

/// The 32 hex digits of a UUID order id, lower case.
fn order_hex(id: &str) -> Option<String> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let shaped = id.len() == 36 && [8, 13, 18, 23].iter().all(|&i| id.as_bytes()[i] == b'-');
    (shaped && hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

pub fn now_micros() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_micros() as u64)
}

/// A product's stock. One object per product, so a reservation is atomic per product; an
/// order over several products reserves them in turn and releases them if one is short.
pub struct Inventory;

#[restate_sdk::object]
impl Inventory {
    /// Takes `quantity` if that many are available; `false` (nothing taken) otherwise, and for
    /// a product not in the catalogue.
    #[handler]
    async fn reserve(&self, ctx: ObjectContext<'_>, quantity: u32) -> HandlerResult<bool> {
        let available = current(&ctx).await?;
        if available < i64::from(quantity) {
            return Ok(false);
        }
        ctx.set("available", available - i64::from(quantity));
        Ok(true)
    }

    #[handler]
    async fn release(&self, ctx: ObjectContext<'_>, quantity: u32) -> HandlerResult<()> {
        let available = current(&ctx).await?;
        ctx.set("available", available + i64::from(quantity));
        Ok(())
    }

    #[handler]
    async fn available(&self, ctx: SharedObjectContext<'_>) -> HandlerResult<i64> {
        let stored = ctx.get::<i64>("available").await?;
        Ok(stored.unwrap_or_else(|| seeded(ctx.key())))
    }
}

async fn current(ctx: &ObjectContext<'_>) -> Result<i64, TerminalError> {
    Ok(ctx
        .get::<i64>("available")
        .await?
        .unwrap_or_else(|| seeded(ctx.key())))
}

fn seeded(product: &str) -> i64 {
    CATALOGUE
        .iter()
        .find(|(p, _)| *p == product)
        .map_or(0, |(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_uuids() {
        assert_eq!(
            order_hex("0190C1D2-E3F4-7A8B-9C0D-1E2F3A4B5C6D").as_deref(),
            Some("0190c1d2e3f47a8b9c0d1e2f3a4b5c6d")
        );
        assert!(order_hex("0190c1d2e3f47a8b9c0d1e2f3a4b5c6d").is_none());
        assert!(order_hex("0190c1d2-e3f4-7a8b-9c0d-1e2f3a4b5c6z").is_none());
    }

    #[test]
    fn catalogue_seeds_stock() {
        assert_eq!(seeded("laptop"), 1_000_000);
        assert_eq!(seeded("sold-out"), 0);
        assert_eq!(seeded("unknown"), 0);
    }
}
