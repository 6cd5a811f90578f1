//! The dispatcher's side of the deliveries: what is due, and what came of each attempt.
//!
//! Order per order and subscription is kept by [`due`]: a PENDING delivery is offered only
//! when no PENDING delivery of the same order to the same subscription has a lower event seq
//! (the `deliveries_pending_by_order` index answers that), so event N+1 waits for N's
//! delivery or dead letter. The deliveries held back that way would otherwise be read again
//! on every pass while their order's first one backs off, so [`record`] moves their due time
//! along with its retry: each pass reads little beyond what can go out.

use super::{corrupt, disable, subscription_id};
use crate::{all, exec, one, sqlite_err};
use chrono::{DateTime, Utc};
use orders_domain::SubscriptionId;
use orders_domain::standard_webhooks::WebhookSecret;
use orders_domain::store::StoreError;
use orders_domain::subscriptions::{
    AttemptResult, DeliveryOutcome, DueBatch, DueDelivery, SubscriberUrl, Target,
};
use orders_domain::time::format_millis as format_ts;
use rusqlite::{Connection, params};

/// Why a subscription is disabled when its subscriber answers 410 Gone.
pub(crate) const GONE_REASON: &str = "the subscriber answered 410 Gone";

pub(super) fn targets(conn: &Connection) -> Result<Vec<Target>, StoreError> {
    let rows: Vec<(String, String, String)> = all(
        conn,
        "SELECT id, url, secret FROM subscriptions WHERE disabled_at IS NULL ORDER BY created_at, id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(sqlite_err)?;
    rows.into_iter()
        .map(|(id, url, secret)| {
            Ok(Target {
                id: subscription_id(&id)?,
                url: SubscriberUrl::from_checked(url),
                secret: WebhookSecret::parse(&secret)
                    .map_err(|_| corrupt("subscription secret"))?,
            })
        })
        .collect()
}

/// The due deliveries of a subscription, each the first PENDING one of its order: read by
/// `deliveries_due`, the order rule answered by `deliveries_pending_by_order`.
pub(super) const DUE: &str =
    "SELECT d.event_seq, o.event_id, o.payload, d.attempts, d.first_attempt_ms
         FROM deliveries d JOIN outbox o ON o.seq = d.event_seq
         WHERE d.subscription_id = ?1 AND d.state = 'PENDING' AND d.next_at_ms <= ?2
           AND NOT EXISTS (SELECT 1 FROM deliveries e
                           WHERE e.subscription_id = d.subscription_id AND e.order_id = d.order_id
                             AND e.state = 'PENDING' AND e.event_seq < d.event_seq)
         ORDER BY d.next_at_ms, d.event_seq LIMIT ?3";

pub(super) fn due(
    conn: &Connection,
    subscription: SubscriptionId,
    now: DateTime<Utc>,
    limit: usize,
    in_flight: &[i64],
) -> Result<DueBatch, StoreError> {
    let id = subscription.to_string();
    let now_ms = now.timestamp_millis();
    // Those in flight are still PENDING and due: read past them rather than passing them in.
    let wanted = (limit + in_flight.len()) as i64;
    let rows: Vec<(i64, String, String, u32, Option<i64>)> =
        all(conn, DUE, params![id, now_ms, wanted], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(sqlite_err)?;
    let mut deliveries = Vec::with_capacity(limit.min(rows.len()));
    for (seq, event_id, payload, attempts, first) in rows {
        if in_flight.contains(&seq) || deliveries.len() == limit {
            continue;
        }
        deliveries.push(DueDelivery {
            subscription,
            event_seq: seq,
            event_id: event_id.parse().map_err(|_| corrupt("event id"))?,
            payload,
            attempts,
            first_attempt: first
                .map(|ms| {
                    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt("first attempt"))
                })
                .transpose()?,
        });
    }
    let next: Option<i64> = one(
        conn,
        "SELECT MIN(next_at_ms) FROM deliveries
         WHERE subscription_id = ?1 AND state = 'PENDING' AND next_at_ms > ?2",
        params![id, now_ms],
        |r| r.get(0),
    )
    .map_err(sqlite_err)?;
    Ok(DueBatch {
        deliveries,
        next_retry_at: next.and_then(DateTime::from_timestamp_millis),
    })
}

/// Holds the PENDING deliveries behind `seq` in its order until at least `at_ms`, when the
/// one they wait for is tried again. Once that one is delivered or dead they are due already:
/// their time was never moved past its.
fn hold_followers(conn: &Connection, id: &str, seq: i64, at_ms: i64) -> Result<(), StoreError> {
    exec(
        conn,
        "UPDATE deliveries SET next_at_ms = MAX(next_at_ms, ?3)
         WHERE subscription_id = ?1 AND state = 'PENDING' AND event_seq > ?2
           AND order_id = (SELECT order_id FROM deliveries WHERE subscription_id = ?1 AND event_seq = ?2)",
        params![id, seq, at_ms],
    )
    .map(|_| ())
    .map_err(sqlite_err)
}

/// Records every outcome in the open write. An outcome for a delivery that is gone (its
/// subscription deleted) changes nothing; a failure of one that is no longer PENDING (its
/// subscription disabled meanwhile) neither. A success is kept whatever the state: it was
/// delivered.
pub(super) fn record(conn: &Connection, outcomes: &[DeliveryOutcome]) -> Result<(), StoreError> {
    for o in outcomes {
        let id = o.subscription.to_string();
        let at = format_ts(o.at);
        let first_ms = o.first_attempt.timestamp_millis();
        match o.result {
            AttemptResult::Delivered => {
                exec(
                    conn,
                    "UPDATE deliveries SET state = 'DELIVERED', attempts = attempts + 1,
                            first_attempt_ms = COALESCE(first_attempt_ms, ?3), last_status = ?4,
                            last_error = ?5, finished_at = ?6
                     WHERE subscription_id = ?1 AND event_seq = ?2 AND state <> 'DELIVERED'",
                    params![id, o.event_seq, first_ms, o.status, o.error, at],
                )
                .map_err(sqlite_err)?;
            }
            AttemptResult::Retry { next_at } => {
                let next_ms = next_at.timestamp_millis();
                exec(
                    conn,
                    "UPDATE deliveries SET attempts = attempts + 1,
                            first_attempt_ms = COALESCE(first_attempt_ms, ?3), last_status = ?4,
                            last_error = ?5, next_at_ms = ?6
                     WHERE subscription_id = ?1 AND event_seq = ?2 AND state = 'PENDING'",
                    params![id, o.event_seq, first_ms, o.status, o.error, next_ms],
                )
                .map_err(sqlite_err)?;
                hold_followers(conn, &id, o.event_seq, next_ms)?;
            }
            AttemptResult::Dead | AttemptResult::Gone => {
                exec(
                    conn,
                    "UPDATE deliveries SET state = 'FAILED', attempts = attempts + 1,
                            first_attempt_ms = COALESCE(first_attempt_ms, ?3), last_status = ?4,
                            last_error = ?5, finished_at = ?6
                     WHERE subscription_id = ?1 AND event_seq = ?2 AND state = 'PENDING'",
                    params![id, o.event_seq, first_ms, o.status, o.error, at],
                )
                .map_err(sqlite_err)?;
                if o.result == AttemptResult::Gone {
                    disable(conn, &id, GONE_REASON, &at)?;
                }
            }
        }
    }
    Ok(())
}
