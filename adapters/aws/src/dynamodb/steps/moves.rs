//! The order's status moves, on the orders item: `set_status`, and `mark_shipped`, which is
//! the move to SHIPPED with the shipment written by the same update.
//!
//! A move to a status that publishes (`EventType::for_status`) is sent with its public event
//! in one transaction; any other move is the update alone (`publish.rs`), at the same one
//! request. The event is built from the move's read (its projection includes the snapshot's
//! attributes) at the version the update writes, so a re-run (`Unchanged`) or a refused move
//! writes none, and a move that lost a race publishes only once it is made.
//!
//! A move is a read, then an update conditional on the `version` read: a writer that lost the
//! race re-reads and decides again (a bounded number of times), never overwrites. The same
//! update marks the step that made the change SUCCEEDED, so no reader sees the new status with
//! its step still RUNNING. The cancel guard is in that condition too: a forward move also
//! requires `attribute_not_exists(cancelRequestedAt)`, so a cancellation and a step racing on
//! one order come out one way or the other. A failed condition returns the item (`ALL_OLD`),
//! which tells a cancellation (refused, `Cancelled`) from a stale version (read again) without
//! another request.

use super::publish::Written;
use super::status::{Attempt, STATUS_TRIES, SUCCEEDED, attempt_for, cancel_request, names};
use super::{DynamoStepStore, built, corrupt, format_ts, order_key, sdk_err};
use crate::dynamodb::attr;
use crate::dynamodb::events::{Change, SNAPSHOT, outbox_put, snapshot_projection, status_event};
use crate::tables::attrs::order as o;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, Update};
use orders_domain::lifecycle::Shipment;
use orders_domain::{OrderId, OrderStatus, time::format_millis};
use orders_workflow::steps::store::{OrderAt, StatusChange, StatusMove, StepResult};
use orders_workflow::steps::{Progress, Shipments, Step, StepStoreError};

#[async_trait]
impl Shipments for DynamoStepStore {
    async fn mark_shipped(
        &self,
        at: OrderAt,
        step: Step,
        shipment: &Shipment,
    ) -> StepResult<StatusChange> {
        let change = StatusMove {
            step,
            to: OrderStatus::Shipped,
            reason: None,
        };
        self.move_order(at, change, Some(shipment)).await
    }
}

impl DynamoStepStore {
    /// `set_status`, and with `shipment` also `mark_shipped`.
    pub(super) async fn move_order(
        &self,
        at: OrderAt,
        change: StatusMove<'_>,
        shipment: Option<&Shipment>,
    ) -> StepResult<StatusChange> {
        let OrderAt { order, now } = at;
        let StatusMove { step, to, reason } = change;
        let stamp = format_ts(now);
        for _ in 0..STATUS_TRIES {
            let mut read_names = names(&[
                ("#id", o::ID),
                ("#status", o::STATUS),
                ("#version", o::VERSION),
                ("#steps", o::STEPS),
                ("#step", step.name()),
                ("#cancel", o::CANCEL_REQUESTED_AT),
                ("#creason", o::CANCEL_REASON),
            ]);
            read_names.extend(names(&SNAPSHOT));
            let got = self
                .get(&self.tables.orders, order_key(order))
                // Only what the decision and the event need, not the order's items.
                .projection_expression(format!(
                    "#id, #status, #version, #steps.#step, #cancel, #creason, {}",
                    snapshot_projection()
                ))
                .set_expression_attribute_names(Some(read_names))
                .send()
                .await
                .map_err(|e| sdk_err("read order", &e))?;
            let Some(item) = got.item() else {
                return Err(StepStoreError::OrderNotFound(order));
            };
            let bad = |e| corrupt("order", e);
            let from: OrderStatus = attr::get_s(item, o::STATUS)
                .map_err(bad)?
                .parse()
                .map_err(|e| StepStoreError::Unavailable(format!("order {order}: {e}")))?;
            let version = attr::get_n(item, o::VERSION).map_err(bad)?;
            let has_entry = attempt_for(item, step)? == Attempt::Again;
            if from.has_reached(to) {
                if has_entry {
                    self.step_result(at, step, None).await?;
                }
                return Ok(StatusChange::Unchanged);
            }
            let guarded = to.is_forward();
            if guarded && let Some(c) = cancel_request(item)? {
                return Err(StepStoreError::Cancelled { reason: c.reason });
            }
            if !from.can_move_to(to) {
                return Err(StepStoreError::InvalidTransition { from, to });
            }
            let next = version + 1;
            let write = MoveWrite {
                step,
                to,
                reason,
                shipment,
                has_entry,
                guarded,
                version,
                stamp: &stamp,
            };
            let update = built(move_update(&self.tables.orders, order, &write))?;
            let event = status_event(
                item,
                Change {
                    order,
                    to,
                    version: next,
                    now,
                    failure_reason: reason,
                    payment_id: None,
                    tracking_number: shipment.map(|p| p.tracking_number.as_str()),
                },
            )
            .map_err(bad)?;
            let event = match &event {
                Some(event) => Some(built(outbox_put(
                    &self.tables.outbox,
                    self.outbox_retention,
                    event,
                ))?),
                None => None,
            };
            match self
                .write_order("update order status", update, event)
                .await?
            {
                Written::Done => return Ok(StatusChange::Changed { version: next }),
                // A cancellation since the read refuses the move; anything else made the
                // version stale: read again and decide again.
                // (Unless the move was made meanwhile: the re-read says Unchanged.)
                Written::Refused(old) => {
                    let reached = |old: &attr::Item| {
                        attr::get_s(old, o::STATUS)
                            .ok()
                            .and_then(|s| s.parse::<OrderStatus>().ok())
                            .is_some_and(|s| s.has_reached(to))
                    };
                    if guarded
                        && let Some(old) = &old
                        && !reached(old)
                        && let Some(req) = cancel_request(old)?
                    {
                        return Err(StepStoreError::Cancelled { reason: req.reason });
                    }
                }
                Written::Contended => {}
            }
        }
        Err(StepStoreError::Unavailable(format!(
            "order {order} changed concurrently {STATUS_TRIES} times"
        )))
    }
}

/// What a move's update writes, decided from the read.
struct MoveWrite<'a> {
    step: Step,
    to: OrderStatus,
    reason: Option<&'a str>,
    shipment: Option<&'a Shipment>,
    /// Whether the step has an entry to mark SUCCEEDED.
    has_entry: bool,
    /// A forward move: refused once a cancellation is requested.
    guarded: bool,
    /// The version read.
    version: i64,
    stamp: &'a str,
}

/// The move's update: status, version + 1 and time, the failure reason and the shipment it
/// records, its step marked SUCCEEDED; conditional on the version read and, for a forward
/// move, on no cancellation request; the old item returned when that condition fails.
fn move_update(
    table: &str,
    order: OrderId,
    m: &MoveWrite<'_>,
) -> Result<Update, aws_sdk_dynamodb::error::BuildError> {
    let mut set = vec!["#status = :to", "#version = :next", "#updated = :now"];
    let mut names = names(&[
        ("#status", o::STATUS),
        ("#version", o::VERSION),
        ("#updated", o::UPDATED_AT),
    ]);
    let mut condition = "#version = :expected".to_owned();
    let mut req = Update::builder()
        .table_name(table)
        .set_key(Some(order_key(order)))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .expression_attribute_values(":to", attr::s(m.to.as_str()))
        .expression_attribute_values(":next", attr::n(m.version + 1))
        .expression_attribute_values(":expected", attr::n(m.version))
        .expression_attribute_values(":now", attr::s(m.stamp));
    if m.guarded {
        condition.push_str(" AND attribute_not_exists(#cancel)");
        names.insert("#cancel".into(), o::CANCEL_REQUESTED_AT.into());
    }
    if let Some(reason) = m.reason {
        set.push("#reason = :reason");
        names.insert("#reason".into(), o::FAILURE_REASON.into());
        req = req.expression_attribute_values(":reason", attr::s(reason));
    }
    if let Some(parcel) = m.shipment {
        set.extend(["#tracking = :tracking", "#shippedAt = :shippedAt"]);
        names.insert("#tracking".into(), o::TRACKING_NUMBER.into());
        names.insert("#shippedAt".into(), o::SHIPPED_AT.into());
        req = req
            .expression_attribute_values(":tracking", attr::s(&parcel.tracking_number))
            .expression_attribute_values(":shippedAt", attr::s(format_millis(parcel.shipped_at)));
    }
    let mut remove = String::new();
    if m.has_entry {
        set.extend([
            "#steps.#step.#stepStatus = :succeeded",
            "#steps.#step.#finished = :now",
        ]);
        names.extend(super::status::names(&[
            ("#steps", o::STEPS),
            ("#step", m.step.name()),
            ("#stepStatus", o::STEP_STATUS),
            ("#finished", o::STEP_FINISHED_AT),
            ("#error", o::STEP_ERROR),
        ]));
        req = req.expression_attribute_values(":succeeded", attr::s(SUCCEEDED));
        remove = " REMOVE #steps.#step.#error".to_owned();
    }
    req.update_expression(format!("SET {}{remove}", set.join(", ")))
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .build()
}
