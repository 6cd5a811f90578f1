//! DynamoDB: the API's order store and the steps' store, over the tables of
//! [`crate::tables`]. The orders item is written by both (the API creates it, the steps move
//! it along) and encoded and decoded in one place, [`item`]. The public events each change
//! writes with it are built in one place too (`events`).

pub mod attr;
mod events;
pub mod item;
mod orders;
mod steps;

pub use events::OutboxRetention;
pub use orders::{DynamoStore, RetryPolicy};
pub use steps::DynamoStepStore;

#[cfg(all(test, feature = "moto"))]
mod lifecycle_tests;
