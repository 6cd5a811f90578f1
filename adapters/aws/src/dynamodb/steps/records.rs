//! The notification records: one `saga` table item per order and kind, put only if absent,
//! so a re-run finds the first run's record.

use super::{DynamoStepStore, format_ts, guarded, saga_key};
use crate::dynamodb::attr;
use crate::tables::attrs::saga;
use async_trait::async_trait;
use orders_workflow::steps::Notifications;
use orders_workflow::steps::store::{Notice, OrderAt, StepResult};

#[async_trait]
impl Notifications for DynamoStepStore {
    async fn notify(&self, at: OrderAt, notice: &Notice<'_>) -> StepResult<bool> {
        let OrderAt { order, now } = at;
        let record = format!("{}{}", saga::NOTIFICATION_PREFIX, notice.kind);
        let mut item = saga_key(order, &record);
        item.insert(saga::CUSTOMER.to_owned(), attr::s(notice.customer.as_str()));
        item.insert(saga::MESSAGE.to_owned(), attr::s(notice.message));
        item.insert(saga::CREATED_AT.to_owned(), attr::s(format_ts(now)));
        let sent = self.put_once(item).send().await;
        guarded("record notification", sent)
    }
}
