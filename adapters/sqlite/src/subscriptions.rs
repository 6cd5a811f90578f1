//! [`SubscriptionStore`] on SQLite: the `subscriptions` and `deliveries` tables of schema V7.
//!
//! The deliveries themselves are created by `events::fan_out`, in the transaction of the
//! event they carry; this module creates and removes subscriptions, lists deliveries, sends a
//! dead letter again, and serves the dispatcher (`dispatch.rs`: what is due, what came of it).
//! Writes go through the writer, reads through the reader pool, so a slow listing never holds
//! up a commit. Disabling a subscription and dead-lettering its PENDING deliveries is one
//! transaction: no delivery is left PENDING for a subscription the dispatcher no longer serves.

mod dispatch;

use super::order_reads::corrupt;
use super::{SqliteStore, all, exec, one, sqlite_err};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use orders_domain::store::StoreError;
use orders_domain::subscriptions::{
    Delivery, DeliveryCursor, DeliveryOutcome, DeliveryPage, DeliveryQuery, DeliveryState,
    Disabled, DueBatch, NewSubscription, RetryOutcome, SubscriberUrl, Subscription,
    SubscriptionStore, Target,
};
use orders_domain::time::{format_millis as format_ts, parse_ts};
use orders_domain::{EventId, EventType, SubscriptionId};
use rusqlite::{Connection, OptionalExtension, params};

const SUBSCRIPTION_COLUMNS: &str = "id, url, types, created_at, disabled_at, disabled_reason";

type SubscriptionRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn subscription_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn subscription_id(text: &str) -> Result<SubscriptionId, StoreError> {
    text.parse().map_err(|_| corrupt("subscription id"))
}

fn timestamp(text: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_ts(text).ok_or_else(|| corrupt(what))
}

fn types_text(types: &[EventType]) -> String {
    serde_json::to_string(types).expect("event types serialize")
}

fn subscription(row: SubscriptionRow) -> Result<Subscription, StoreError> {
    let (id, url, types, created_at, disabled_at, reason) = row;
    let disabled = disabled_at
        .map(|at| {
            Ok::<_, StoreError>(Disabled {
                at: timestamp(&at, "subscription disabled_at")?,
                reason: reason.unwrap_or_default(),
            })
        })
        .transpose()?;
    Ok(Subscription {
        id: subscription_id(&id)?,
        url: SubscriberUrl::from_checked(url),
        types: serde_json::from_str(&types).map_err(|_| corrupt("subscription types"))?,
        created_at: timestamp(&created_at, "subscription created_at")?,
        disabled,
    })
}

/// Disables `id` and dead-letters its PENDING deliveries; `false` if it was not enabled.
fn disable(conn: &Connection, id: &str, reason: &str, at: &str) -> Result<bool, StoreError> {
    let changed = exec(
        conn,
        "UPDATE subscriptions SET disabled_at = ?2, disabled_reason = ?3
         WHERE id = ?1 AND disabled_at IS NULL",
        params![id, at, reason],
    )
    .map_err(sqlite_err)?;
    if changed == 1 {
        exec(
            conn,
            "UPDATE deliveries SET state = 'FAILED', last_error = ?2, finished_at = ?3
             WHERE subscription_id = ?1 AND state = 'PENDING'",
            params![id, reason, at],
        )
        .map_err(sqlite_err)?;
    }
    Ok(changed == 1)
}

/// A delivery row as the listing selects it (see [`deliveries_page`]).
type DeliveryRow = (
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    u32,
    Option<u16>,
    Option<String>,
    i64,
    Option<String>,
);

fn delivery(row: DeliveryRow) -> Result<(i64, Delivery), StoreError> {
    let (seq, event_id, kind, order_id, sequence, state, attempts, status, error, next_at, done) =
        row;
    let state: DeliveryState = state.parse().map_err(|_| corrupt("delivery state"))?;
    let next_attempt_at = match state {
        DeliveryState::Pending => Some(
            DateTime::from_timestamp_millis(next_at).ok_or_else(|| corrupt("delivery next_at"))?,
        ),
        _ => None,
    };
    let delivery = Delivery {
        event_id: event_id.parse().map_err(|_| corrupt("event id"))?,
        event_type: kind
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| corrupt("event type"))?,
        order_id: order_id.parse().map_err(|_| corrupt("order id"))?,
        sequence: sequence
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("event sequence"))?,
        state,
        attempts,
        last_status: status,
        last_error: error,
        next_attempt_at,
        finished_at: done
            .map(|t| timestamp(&t, "delivery finished_at"))
            .transpose()?,
    };
    Ok((seq, delivery))
}

/// One page of a subscription's deliveries, oldest event first.
fn deliveries_page(conn: &Connection, q: &DeliveryQuery) -> Result<DeliveryPage, StoreError> {
    // The state is a literal, not a parameter, so the partial index of FAILED ones serves the
    // dead-letter listing.
    let state = q
        .state
        .map(|s| format!("AND d.state = '{}'", s.as_str()))
        .unwrap_or_default();
    let sql = format!(
        "SELECT d.event_seq, o.event_id, json_extract(o.payload, '$.type'), d.order_id,
                json_extract(o.payload, '$.sequence'), d.state, d.attempts, d.last_status,
                d.last_error, d.next_at_ms, d.finished_at
         FROM deliveries d JOIN outbox o ON o.seq = d.event_seq
         WHERE d.subscription_id = ?1 {state} AND d.event_seq > ?2
         ORDER BY d.event_seq LIMIT ?3"
    );
    let after = q.after.map_or(0, |c| c.0);
    let rows = all(
        conn,
        &sql,
        params![q.subscription.to_string(), after, i64::from(q.limit) + 1],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        },
    )
    .map_err(sqlite_err)?;
    let more = rows.len() > q.limit as usize;
    let mut deliveries = Vec::with_capacity(rows.len().min(q.limit as usize));
    let mut last = None;
    for row in rows.into_iter().take(q.limit as usize) {
        let (seq, d) = delivery(row)?;
        last = Some(seq);
        deliveries.push(d);
    }
    Ok(DeliveryPage {
        deliveries,
        next: last.filter(|_| more).map(DeliveryCursor),
    })
}

fn retry(
    conn: &Connection,
    id: &str,
    event: &str,
    now_ms: i64,
) -> Result<RetryOutcome, StoreError> {
    let found: Option<(i64, String, Option<String>)> = one(
        conn,
        "SELECT d.event_seq, d.state, s.disabled_at
         FROM outbox o JOIN deliveries d ON d.event_seq = o.seq AND d.subscription_id = ?1
                       JOIN subscriptions s ON s.id = d.subscription_id
         WHERE o.event_id = ?2",
        params![id, event],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
    .map_err(sqlite_err)?;
    let Some((seq, state, disabled_at)) = found else {
        return Ok(RetryOutcome::NotFound);
    };
    if disabled_at.is_some() {
        return Ok(RetryOutcome::SubscriptionDisabled);
    }
    if state.parse::<DeliveryState>() != Ok(DeliveryState::Failed) {
        return Ok(RetryOutcome::NotFailed);
    }
    // A new retry window: the backoff starts again from its first delay.
    exec(
        conn,
        "UPDATE deliveries SET state = 'PENDING', attempts = 0, first_attempt_ms = NULL,
                               next_at_ms = ?3, finished_at = NULL
         WHERE subscription_id = ?1 AND event_seq = ?2 AND state = 'FAILED'",
        params![id, seq, now_ms],
    )
    .map_err(sqlite_err)?;
    Ok(RetryOutcome::Retried)
}

#[async_trait]
impl SubscriptionStore for SqliteStore {
    async fn create_subscription(&self, new: NewSubscription) -> Result<Subscription, StoreError> {
        let created = Subscription {
            id: new.id,
            url: new.url.clone(),
            types: new.types.clone(),
            created_at: new.created_at,
            disabled: None,
        };
        self.write(move |conn| {
            exec(
                conn,
                "INSERT INTO subscriptions (id, url, types, secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    new.id.to_string(),
                    new.url.as_str(),
                    types_text(&new.types),
                    new.secret.to_string(),
                    format_ts(new.created_at)
                ],
            )
            .map(|_| ())
            .map_err(sqlite_err)
        })
        .await?;
        Ok(created)
    }

    async fn list_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.read(|conn| {
            let sql =
                format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY created_at, id");
            all(conn, &sql, [], subscription_row)
                .map_err(sqlite_err)?
                .into_iter()
                .map(subscription)
                .collect()
        })
        .await
    }

    async fn get_subscription(
        &self,
        id: SubscriptionId,
    ) -> Result<Option<Subscription>, StoreError> {
        self.read(move |conn| {
            let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = ?1");
            one(conn, &sql, [id.to_string()], subscription_row)
                .optional()
                .map_err(sqlite_err)?
                .map(subscription)
                .transpose()
        })
        .await
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let id = id.to_string();
            exec(
                conn,
                "DELETE FROM deliveries WHERE subscription_id = ?1",
                [&id],
            )
            .and_then(|_| exec(conn, "DELETE FROM subscriptions WHERE id = ?1", [&id]))
            .map(|n| n == 1)
            .map_err(sqlite_err)
        })
        .await
    }

    async fn disable_subscription(
        &self,
        id: SubscriptionId,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let reason = reason.to_owned();
        self.write(move |conn| disable(conn, &id.to_string(), &reason, &format_ts(at)))
            .await
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Option<DeliveryPage>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let exists = one(
                conn,
                "SELECT 1 FROM subscriptions WHERE id = ?1",
                [query.subscription.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map_err(sqlite_err)?;
            exists.map(|()| deliveries_page(conn, &query)).transpose()
        })
        .await
    }

    async fn retry_delivery(
        &self,
        id: SubscriptionId,
        event: EventId,
        now: DateTime<Utc>,
    ) -> Result<RetryOutcome, StoreError> {
        let outcome = self
            .write(move |conn| {
                retry(
                    conn,
                    &id.to_string(),
                    &event.to_string(),
                    now.timestamp_millis(),
                )
            })
            .await?;
        if outcome == RetryOutcome::Retried {
            // Due at once: the dispatcher need not wait for its next poll.
            self.events_signal.notify_one();
        }
        Ok(outcome)
    }

    async fn targets(&self) -> Result<Vec<Target>, StoreError> {
        self.read(dispatch::targets).await
    }

    async fn due(
        &self,
        subscription: SubscriptionId,
        now: DateTime<Utc>,
        limit: usize,
        in_flight: &[i64],
    ) -> Result<DueBatch, StoreError> {
        let in_flight = in_flight.to_vec();
        self.read(move |conn| dispatch::due(conn, subscription, now, limit, &in_flight))
            .await
    }

    async fn record_attempts(&self, outcomes: Vec<DeliveryOutcome>) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.write_background(move |conn| dispatch::record(conn, &outcomes))
            .await
    }
}

#[cfg(test)]
mod tests;
