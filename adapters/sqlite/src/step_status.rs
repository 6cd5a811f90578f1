//! The order's status as the steps move it, on the writer's open transaction: a conditional
//! update on the order's version that also marks the moving step SUCCEEDED, and refuses every
//! forward move not yet made once the customer asked to cancel. That refusal is part of the
//! UPDATE's own condition, so a cancellation and a step racing on one order come out one way
//! or the other: the step moved first (and the cancellation stops the next one), or it is
//! refused. A move to a status that publishes an event writes it in the same transaction
//! (`events.rs`).

use super::{events, exec, one, sqlite_err};
use orders_domain::lifecycle::{CancelRequest, Shipment};
use orders_domain::store::StoreError;
use orders_domain::time::{format_millis as format_ts, parse_ts};
use orders_domain::{OrderId, OrderStatus};
use orders_workflow::steps::store::StatusChange;
use orders_workflow::steps::{Step, StepStoreError};
use rusqlite::{Connection, OptionalExtension, params};

/// A refusal (unknown order, forbidden move, cancelled) is an answer, not a storage failure:
/// it travels inside the outer `Ok`.
pub(crate) type Answer<T> = Result<Result<T, StepStoreError>, StoreError>;

/// One status change of one step.
pub(crate) struct Move<'a> {
    pub(crate) order: OrderId,
    pub(crate) step: Step,
    pub(crate) to: OrderStatus,
    pub(crate) reason: Option<&'a str>,
    pub(crate) now: &'a str,
}

struct Current {
    status: OrderStatus,
    version: i64,
    cancellation: Option<CancelRequest>,
}

fn unreadable(what: &str) -> StoreError {
    StoreError::Backend(format!("unreadable {what} in the database"))
}

fn current(conn: &Connection, order: &str) -> Result<Option<Current>, StoreError> {
    let row: Option<(String, i64, Option<String>, Option<String>)> = one(
        conn,
        "SELECT status, version, cancel_requested_at, cancel_reason FROM orders WHERE order_id = ?1",
        [order],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .optional()
    .map_err(sqlite_err)?;
    row.map(|(status, version, at, reason)| {
        let cancellation = at
            .map(|at| {
                let requested_at = parse_ts(&at).ok_or_else(|| unreadable("timestamp"))?;
                Ok::<_, StoreError>(CancelRequest {
                    reason,
                    requested_at,
                })
            })
            .transpose()?;
        Ok(Current {
            status: status.parse().map_err(|_| unreadable("order status"))?,
            version,
            cancellation,
        })
    })
    .transpose()
}

/// The customer's cancellation of the order, if asked for.
pub(crate) fn cancellation(conn: &Connection, order: OrderId) -> Answer<Option<CancelRequest>> {
    Ok(match current(conn, &order.to_string())? {
        Some(c) => Ok(c.cancellation),
        None => Err(StepStoreError::OrderNotFound(order)),
    })
}

fn cancelled(c: CancelRequest) -> StepStoreError {
    StepStoreError::Cancelled { reason: c.reason }
}

/// `set_status`'s rules: already at or past the target: `Unchanged` (the step marked
/// SUCCEEDED all the same); a forward move once cancelled: `Cancelled`; a move the lifecycle
/// forbids: `InvalidTransition`; else the conditional update.
pub(crate) fn move_status(conn: &Connection, m: &Move<'_>) -> Answer<StatusChange> {
    let moved = apply_move(conn, m)?;
    if let Ok(StatusChange::Changed { .. }) = moved {
        events::publish_status(conn, m.order, m.now)?;
    }
    Ok(moved)
}

/// `move_status` without its event, for a move that writes more before it publishes.
fn apply_move(conn: &Connection, m: &Move<'_>) -> Answer<StatusChange> {
    let order = m.order.to_string();
    let Some(from) = current(conn, &order)? else {
        return Ok(Err(StepStoreError::OrderNotFound(m.order)));
    };
    let finish_step = || {
        exec(
            conn,
            "UPDATE saga_steps SET status = 'SUCCEEDED', finished_at = ?3, error = NULL WHERE order_id = ?1 AND step = ?2",
            params![order, m.step.name(), m.now],
        )
        .map_err(sqlite_err)
    };
    if from.status.has_reached(m.to) {
        finish_step()?;
        return Ok(Ok(StatusChange::Unchanged));
    }
    if !from.status.can_move_to(m.to) {
        // A cancelled order's forward moves are all refused as cancelled, allowed or not.
        return Ok(Err(match from.cancellation {
            Some(c) if m.to.is_forward() => cancelled(c),
            _ => StepStoreError::InvalidTransition {
                from: from.status,
                to: m.to,
            },
        }));
    }
    let changed = exec(
        conn,
        "UPDATE orders SET status = ?3, version = version + 1, updated_at = ?4,
             failure_reason = COALESCE(?5, failure_reason)
         WHERE order_id = ?1 AND version = ?2 AND (?6 OR cancel_requested_at IS NULL)",
        params![
            order,
            from.version,
            m.to.as_str(),
            m.now,
            m.reason,
            !m.to.is_forward()
        ],
    )
    .map_err(sqlite_err)?;
    if changed != 1 {
        return Ok(Err(
            match current(conn, &order)?.and_then(|c| c.cancellation) {
                Some(c) if m.to.is_forward() => cancelled(c),
                _ => StepStoreError::Unavailable(format!(
                    "order {order} changed concurrently (version {})",
                    from.version
                )),
            },
        ));
    }
    finish_step()?;
    Ok(Ok(StatusChange::Changed {
        version: from.version + 1,
    }))
}

/// The warehouse's shipment and the move to SHIPPED, with `move_status`'s rules: the shipment
/// is recorded only by the move that ships the order, so a re-run keeps the first one.
pub(crate) fn mark_shipped(
    conn: &Connection,
    order: OrderId,
    step: Step,
    shipment: &Shipment,
    now: &str,
) -> Answer<StatusChange> {
    let to = OrderStatus::Shipped;
    let moved = apply_move(
        conn,
        &Move {
            order,
            step,
            to,
            reason: None,
            now,
        },
    )?;
    if let Ok(StatusChange::Changed { .. }) = moved {
        exec(
            conn,
            "INSERT INTO shipments (order_id, tracking_number, shipped_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (order_id) DO NOTHING",
            params![
                order.to_string(),
                shipment.tracking_number,
                format_ts(shipment.shipped_at)
            ],
        )
        .map_err(sqlite_err)?;
        events::publish_status(conn, order, now)?;
    }
    Ok(moved)
}
