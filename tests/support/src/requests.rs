//! Counts the requests an AWS SDK client sends, by operation, for the tests that pin how many
//! requests an operation costs.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use std::sync::{Arc, Mutex};

/// Records the `X-Amz-Target` operation of every HTTP request the client sends, retries
/// included (the hook runs once per transmission).
#[derive(Debug, Clone, Default)]
pub struct Requests(Arc<Mutex<Vec<String>>>);

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.note(ctx.request().headers().get("x-amz-target"));
        Ok(())
    }
}

impl Requests {
    /// Notes one request by its `X-Amz-Target` (`DynamoDB_20120810.PutItem` -> `PutItem`).
    pub fn note(&self, target: Option<&str>) {
        let target = target.unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.0.lock().unwrap().push(op);
    }

    /// The operations sent since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}
