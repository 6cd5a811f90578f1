//! The customer's cancellation on SQLite, one writer job: the request recorded on the order
//! (version + 1), the saga's signal and the idempotency record, in one transaction.
//!
//! The idempotency record holds `respond(order after)`, and `respond` is the caller's: it
//! cannot travel to the writer thread. So the order is read first, the response built from
//! what the write will make of it, and the job writes only if the order, read again under the
//! write lock, is still exactly what was read (else it is read and tried again): the stored
//! response is always the one the outcome's order gives.

use super::insert_signal;
use crate::order_reads::read_order;
use crate::orders::live_idempotency;
use crate::{SqliteStore, exec, one, sqlite_err};
use chrono::{DateTime, Utc};
use orders_domain::idempotency::{IdempotencyKey, StoredResponse};
use orders_domain::lifecycle::{CancelRequest, TaskSignal};
use orders_domain::store::{CancelOrder, CancelOutcome, OrderRecord, Respond, StoreError};
use orders_domain::time::format_millis as format_ts;
use orders_domain::{OrderId, OrderStatus};
use rusqlite::{Connection, params};

/// How often a cancellation reads the order again when a step changed it meanwhile, before
/// answering busy: each try loses only to a write that committed in between.
const CANCEL_TRIES: usize = 32;

/// What a cancellation will write, decided from the order as read.
enum Plan {
    Accept {
        after: Box<OrderRecord>,
        response: StoredResponse,
    },
    Already {
        response: StoredResponse,
    },
    Refuse,
}

impl Plan {
    fn for_order(
        seen: &OrderRecord,
        reason: &Option<String>,
        now: DateTime<Utc>,
        respond: Respond<'_>,
    ) -> Self {
        if seen.cancellation.is_some() || seen.status == OrderStatus::Cancelled {
            return Plan::Already {
                response: respond(seen),
            };
        }
        if !seen.status.is_cancellable() {
            return Plan::Refuse;
        }
        let after = OrderRecord {
            version: seen.version + 1,
            updated_at: now,
            cancellation: Some(CancelRequest {
                reason: reason.clone(),
                requested_at: now,
            }),
            ..seen.clone()
        };
        let response = respond(&after);
        Plan::Accept {
            after: Box::new(after),
            response,
        }
    }
}

/// A cancellation's writer job: everything but `respond`, which stays with the caller.
struct CancelJob {
    seen: OrderRecord,
    plan: Plan,
    key: Option<(IdempotencyKey, String)>,
    reason: Option<String>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// What a cancellation's job came to, and whether it wrote a signal; `None` when the order
/// changed after it was read (read it again).
type Ran = Option<(CancelOutcome, bool)>;

fn replay(response: StoredResponse, stored: &str, fingerprint: &str) -> CancelOutcome {
    if stored == fingerprint {
        CancelOutcome::Replayed(response)
    } else {
        CancelOutcome::KeyReused
    }
}

impl CancelJob {
    fn run(mut self, conn: &Connection) -> Result<Ran, StoreError> {
        if let Some((key, fingerprint)) = &self.key
            && let Some(rec) = live_idempotency(conn, key.as_str(), self.now)?
        {
            let outcome = replay(rec.response, &rec.fingerprint, fingerprint);
            return Ok(Some((outcome, false)));
        }
        let id = self.seen.order.id;
        match read_order(conn, &id.to_string())? {
            None => return Ok(Some((CancelOutcome::NotFound, false))),
            Some(now) if now != self.seen => return Ok(None),
            Some(_) => {}
        }
        let (outcome, signalled, response) = match std::mem::replace(&mut self.plan, Plan::Refuse) {
            Plan::Refuse => return Ok(Some((CancelOutcome::NotCancellable(self.seen), false))),
            Plan::Already { response } => (
                CancelOutcome::AlreadyRequested(self.seen.clone()),
                false,
                response,
            ),
            Plan::Accept { after, response } => {
                self.request(conn, id)?;
                (CancelOutcome::Accepted(*after), true, response)
            }
        };
        if let Some((key, fingerprint)) = &self.key {
            // REPLACE: an expired record may still be stored; it counts as absent.
            exec(
                conn,
                "INSERT OR REPLACE INTO idempotency (key, fingerprint, status, location, body, order_id, created_at, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    key.as_str(),
                    fingerprint,
                    response.status,
                    response.location,
                    response.body,
                    id.to_string(),
                    format_ts(self.now),
                    self.expires_at.timestamp_millis()
                ],
            )
            .map_err(sqlite_err)?;
        }
        Ok(Some((outcome, signalled)))
    }

    /// The request on the order (version + 1) and the signal for its saga.
    fn request(&self, conn: &Connection, id: OrderId) -> Result<(), StoreError> {
        let order = id.to_string();
        let now = format_ts(self.now);
        let execution: Option<String> = one(
            conn,
            "SELECT execution FROM orders WHERE order_id = ?1",
            [&order],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
        let execution = execution
            .ok_or_else(|| StoreError::Backend(format!("order {order} has no execution name")))?;
        let changed = exec(
            conn,
            "UPDATE orders SET cancel_requested_at = ?2, cancel_reason = ?3, version = version + 1, updated_at = ?2
             WHERE order_id = ?1 AND version = ?4 AND cancel_requested_at IS NULL",
            params![order, now, self.reason, self.seen.version],
        )
        .map_err(sqlite_err)?;
        if changed != 1 {
            return Err(StoreError::Backend(format!(
                "order {order} changed while its cancellation was written"
            )));
        }
        let reason = self.reason.clone();
        insert_signal(
            conn,
            id,
            self.now,
            TaskSignal::CancelWaiting { execution, reason },
        )
    }
}

impl SqliteStore {
    pub(crate) async fn cancel(
        &self,
        cmd: CancelOrder,
        respond: Respond<'_>,
    ) -> Result<CancelOutcome, StoreError> {
        // What the database keeps of a time, so the order returned is the order read back.
        let now = DateTime::from_timestamp_millis(cmd.now.timestamp_millis()).unwrap_or(cmd.now);
        let expires_at = now
            .checked_add_signed(cmd.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        for _ in 0..CANCEL_TRIES {
            // A replay is answered from a read, never queued behind writes; the decision that
            // counts is repeated inside the write.
            if let Some((key, fingerprint)) = &cmd.idempotency
                && let Some(rec) = self
                    .readers
                    .read_now(|conn| live_idempotency(conn, key.as_str(), now))
                    .await?
            {
                return Ok(replay(rec.response, &rec.fingerprint, fingerprint));
            }
            let id = cmd.order.to_string();
            let Some(seen) = self.read(move |conn| read_order(conn, &id)).await? else {
                return Ok(CancelOutcome::NotFound);
            };
            let job = CancelJob {
                plan: Plan::for_order(&seen, &cmd.reason, now, respond),
                seen,
                key: cmd.idempotency.clone(),
                reason: cmd.reason.clone(),
                now,
                expires_at,
            };
            match self.write(move |conn| job.run(conn)).await? {
                None => continue,
                Some((outcome, signalled)) => {
                    if signalled {
                        self.outbox_signal.notify_one();
                    }
                    return Ok(outcome);
                }
            }
        }
        Err(StoreError::Busy)
    }
}
