//! The order's step history and cancellation request, both on the orders item; its status
//! moves are in `moves.rs`. The step history is the item's `steps` map; its entry
//! is created on a step's first attempt, whether or not the map exists yet (the order writer
//! may or may not have written an empty one).

use super::{DynamoStepStore, corrupt, format_ts, order_key, sdk_err};
use crate::dynamodb::attr::{self, Item};
use crate::dynamodb::item::cancellation;
use crate::tables::attrs::order as o;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use orders_domain::OrderId;
use orders_domain::lifecycle::CancelRequest;
use orders_workflow::steps::store::StatusChange;
use orders_workflow::steps::store::{OrderAt, StatusMove, StepResult};
use orders_workflow::steps::{Progress, Step, StepStoreError};
use std::collections::HashMap;

/// Reads and conditional writes one change may take before giving up as contended.
pub(super) const STATUS_TRIES: usize = 5;

const RUNNING: &str = "RUNNING";
pub(super) const SUCCEEDED: &str = "SUCCEEDED";
const FAILED: &str = "FAILED";

/// How a step's first-attempt write must look, given the item as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    /// The entry exists: count one more attempt.
    Again,
    /// The map exists without this step's entry.
    AddEntry,
    /// The item has no `steps` map yet.
    CreateMap,
}

pub(super) fn attempt_for(item: &Item, step: Step) -> Result<Attempt, StepStoreError> {
    Ok(
        match attr::get_map(item, o::STEPS).map_err(|e| corrupt("order", e))? {
            None => Attempt::CreateMap,
            Some(steps) if steps.contains_key(step.name()) => Attempt::Again,
            Some(_) => Attempt::AddEntry,
        },
    )
}

pub(super) fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(super) fn is_condition_failure(e: &UpdateItemError) -> bool {
    matches!(e, UpdateItemError::ConditionalCheckFailedException(_))
}

#[async_trait]
impl Progress for DynamoStepStore {
    async fn cancellation(&self, order: OrderId) -> StepResult<Option<CancelRequest>> {
        let got = self
            .get(&self.tables.orders, order_key(order))
            .projection_expression("#id, #cancel, #reason")
            .set_expression_attribute_names(Some(names(&[
                ("#id", o::ID),
                ("#cancel", o::CANCEL_REQUESTED_AT),
                ("#reason", o::CANCEL_REASON),
            ])))
            .send()
            .await
            .map_err(|e| sdk_err("read order", &e))?;
        let item = got.item().ok_or(StepStoreError::OrderNotFound(order))?;
        cancel_request(item)
    }

    async fn step_attempt(&self, at: OrderAt, step: Step) -> StepResult<()> {
        let OrderAt { order, now } = at;
        let now = format_ts(now);
        let entry = AttributeValue::M(HashMap::from([
            (o::STEP_STATUS.to_owned(), attr::s(RUNNING)),
            (o::STEP_ATTEMPTS.to_owned(), attr::n(1)),
            (o::STEP_STARTED_AT.to_owned(), attr::s(&now)),
        ]));
        // Most calls are a step's first attempt on an order whose map exists; a failed
        // condition returns the item, which says which write fits instead.
        let mut how = Attempt::AddEntry;
        for _ in 0..STATUS_TRIES {
            let base = self
                .update(&self.tables.orders, order_key(order))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            let req = match how {
                Attempt::Again => base
                    .update_expression(
                        "SET #steps.#step.#attempts = #steps.#step.#attempts + :one, #steps.#step.#status = :running REMOVE #steps.#step.#finished",
                    )
                    .condition_expression("attribute_exists(#steps.#step)")
                    .set_expression_attribute_names(Some(names(&[
                        ("#steps", o::STEPS),
                        ("#step", step.name()),
                        ("#attempts", o::STEP_ATTEMPTS),
                        ("#status", o::STEP_STATUS),
                        ("#finished", o::STEP_FINISHED_AT),
                    ])))
                    .expression_attribute_values(":one", attr::n(1))
                    .expression_attribute_values(":running", attr::s(RUNNING)),
                Attempt::AddEntry => base
                    .update_expression("SET #steps.#step = :entry")
                    .condition_expression(
                        "attribute_exists(#steps) AND attribute_not_exists(#steps.#step)",
                    )
                    .set_expression_attribute_names(Some(names(&[
                        ("#steps", o::STEPS),
                        ("#step", step.name()),
                    ])))
                    .expression_attribute_values(":entry", entry.clone()),
                Attempt::CreateMap => base
                    .update_expression("SET #steps = :steps")
                    .condition_expression("attribute_exists(#id) AND attribute_not_exists(#steps)")
                    .set_expression_attribute_names(Some(names(&[
                        ("#id", o::ID),
                        ("#steps", o::STEPS),
                    ])))
                    .expression_attribute_values(
                        ":steps",
                        AttributeValue::M(HashMap::from([(
                            step.name().to_owned(),
                            entry.clone(),
                        )])),
                    ),
            };
            match req.send().await {
                Ok(_) => return Ok(()),
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                        let Some(old) = c.item() else {
                            return Err(StepStoreError::OrderNotFound(order));
                        };
                        how = attempt_for(old, step)?;
                    }
                    _ => return Err(sdk_err("record step attempt", &e)),
                },
            }
        }
        Err(StepStoreError::Unavailable(format!(
            "step history of order {order} kept changing"
        )))
    }

    async fn step_result(&self, at: OrderAt, step: Step, error: Option<&str>) -> StepResult<()> {
        let OrderAt { order, now } = at;
        let req = self
            .update(&self.tables.orders, order_key(order))
            .condition_expression("attribute_exists(#steps.#step)")
            .expression_attribute_values(":now", attr::s(format_ts(now)))
            .expression_attribute_names("#steps", o::STEPS)
            .expression_attribute_names("#step", step.name())
            .expression_attribute_names("#status", o::STEP_STATUS)
            .expression_attribute_names("#finished", o::STEP_FINISHED_AT)
            .expression_attribute_names("#error", o::STEP_ERROR);
        let req = match error {
            Some(message) => req
                .update_expression(
                    "SET #steps.#step.#status = :st, #steps.#step.#finished = :now, #steps.#step.#error = :error",
                )
                .expression_attribute_values(":st", attr::s(FAILED))
                .expression_attribute_values(":error", attr::s(message)),
            None => req
                .update_expression(
                    "SET #steps.#step.#status = :st, #steps.#step.#finished = :now REMOVE #steps.#step.#error",
                )
                .expression_attribute_values(":st", attr::s(SUCCEEDED)),
        };
        match req.send().await {
            Ok(_) => Ok(()),
            // No attempt recorded for this step: nothing to close, as in the SQLite store.
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(()),
            Err(e) => Err(sdk_err("record step result", &e)),
        }
    }

    async fn set_status(&self, at: OrderAt, change: StatusMove<'_>) -> StepResult<StatusChange> {
        self.move_order(at, change, None).await
    }
}

/// The cancellation request of an order item (or of a projection holding its attributes).
pub(super) fn cancel_request(item: &Item) -> StepResult<Option<CancelRequest>> {
    cancellation(item).map_err(|e| StepStoreError::Unavailable(e.to_string()))
}
