//! EventBridge as the stream processor's [`EventPublisher`]: each public event of the outbox
//! becomes one `PutEvents` entry on the stack's custom bus, with Source [`SOURCE`], DetailType
//! the CloudEvent's `type`, Time its `time`, and Detail the CloudEvent exactly as the API wrote
//! it (the bytes of the outbox item, never re-serialized), so a consumer reads the same envelope
//! whichever runtime it subscribes to.
//!
//! `PutEvents` takes at most [`MAX_ENTRIES`] entries and [`MAX_REQUEST_BYTES`] (counted as
//! EventBridge counts them, [`entry_size`]) per call; a batch is split into calls within both,
//! in order, sent concurrently. Success is per entry: a call can succeed with some entries
//! refused (`FailedEntryCount`, an `ErrorCode` on the entry at the same position), so each
//! event gets its own answer, and a failed call fails every event it carried. An event too
//! large for any call is refused here, without a request: no retry can make it fit.

use crate::lambda::stream::{EventPublisher, Publication, PublishError};
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use tokio::task::JoinSet;

/// The Source of every event this service publishes, which rules match on. Sources starting
/// with `aws.` are EventBridge's own; any other string of 1 to 256 characters is allowed.
pub const SOURCE: &str = "orders";
/// Entries per `PutEvents` call.
pub const MAX_ENTRIES: usize = 10;
/// Bytes per `PutEvents` call, entries summed as [`entry_size`] counts them (256 KiB).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// What EventBridge counts for an entry's `Time`, whatever it holds.
const TIME_BYTES: usize = 14;

/// The name of a custom event bus: 1 to 256 of `A-Z a-z 0-9 . - _`. A custom bus cannot be
/// named `default` (the account's own bus) nor hold `/` (only partner buses do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBusName(String);

impl EventBusName {
    pub fn parse(value: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if value.is_empty() || value.len() > 256 {
            return Err(format!(
                "expected an event bus name of 1 to 256 characters, got {value:?}"
            ));
        }
        if !value.chars().all(allowed) {
            return Err(format!(
                "an event bus name holds only letters, digits, '.', '-' and '_', got {value:?}"
            ));
        }
        if value == "default" {
            return Err("the events go to the stack's custom bus, not the default bus".into());
        }
        Ok(EventBusName(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EventBusName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct EventBridgePublisher {
    client: Client,
    bus: EventBusName,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: EventBusName) -> Self {
        EventBridgePublisher { client, bus }
    }

    fn entry(&self, event: &Publication) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(self.bus.as_str())
            .source(SOURCE)
            .detail_type(event.event_type.as_str())
            .detail(event.detail.as_str())
            .time(DateTime::from_millis(event.time.timestamp_millis()))
            .build()
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[Publication]) -> Vec<Result<(), PublishError>> {
        // Failed until its call answers for it.
        let unanswered = PublishError("PutEvents gave no answer for the event".into());
        let mut results: Vec<Result<(), PublishError>> = vec![Err(unanswered); events.len()];
        let plan = plan_calls(events);
        for index in plan.oversized {
            results[index] = Err(PublishError(format!(
                "{} bytes: over the {MAX_REQUEST_BYTES} bytes of a PutEvents call",
                entry_size(&events[index])
            )));
        }
        let mut calls = JoinSet::new();
        for indexes in plan.calls {
            let entries: Vec<PutEventsRequestEntry> =
                indexes.iter().map(|&i| self.entry(&events[i])).collect();
            let client = self.client.clone();
            calls.spawn(async move {
                let sent = client.put_events().set_entries(Some(entries)).send().await;
                let answers = match sent {
                    Ok(output) => entry_results(&output, indexes.len()),
                    Err(e) => {
                        let why = PublishError(format!("PutEvents: {}", crate::sdk::describe(&e)));
                        vec![Err(why); indexes.len()]
                    }
                };
                (indexes, answers)
            });
        }
        while let Some(joined) = calls.join_next().await {
            // A call that panicked cannot say which of its entries arrived: they stay failed.
            let Ok((indexes, answers)) = joined else {
                continue;
            };
            for (index, answer) in indexes.into_iter().zip(answers) {
                results[index] = answer;
            }
        }
        results
    }
}

/// The calls a batch is sent in: indexes into it, in order, each call within
/// [`MAX_ENTRIES`] and [`MAX_REQUEST_BYTES`]; and the events that fit in no call.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CallPlan {
    pub calls: Vec<Vec<usize>>,
    pub oversized: Vec<usize>,
}

pub(crate) fn plan_calls(events: &[Publication]) -> CallPlan {
    let mut plan = CallPlan::default();
    let mut call: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for (index, event) in events.iter().enumerate() {
        let size = entry_size(event);
        if size > MAX_REQUEST_BYTES {
            plan.oversized.push(index);
            continue;
        }
        if call.len() == MAX_ENTRIES || bytes + size > MAX_REQUEST_BYTES {
            plan.calls.push(std::mem::take(&mut call));
            bytes = 0;
        }
        call.push(index);
        bytes += size;
    }
    if !call.is_empty() {
        plan.calls.push(call);
    }
    plan
}

/// An entry's size as EventBridge counts it against the call's limit: the Time (a fixed 14
/// bytes), and the UTF-8 bytes of Source, DetailType and Detail (this service sends no
/// Resources; the bus name does not count).
pub(crate) fn entry_size(event: &Publication) -> usize {
    TIME_BYTES + SOURCE.len() + event.event_type.as_str().len() + event.detail.len()
}

/// Each of the `sent` entries' answer, by position: EventBridge answers every entry in the
/// order sent, with an EventId or an ErrorCode. An entry missing from the answer is failed,
/// since nothing says it arrived.
pub(crate) fn entry_results(
    output: &PutEventsOutput,
    sent: usize,
) -> Vec<Result<(), PublishError>> {
    (0..sent)
        .map(|i| match output.entries().get(i) {
            Some(entry) if entry.error_code().is_some() || entry.event_id().is_none() => {
                Err(PublishError(format!(
                    "entry refused: {}: {}",
                    entry.error_code().unwrap_or("no error code"),
                    entry.error_message().unwrap_or("no message")
                )))
            }
            Some(_) => Ok(()),
            None => Err(PublishError(format!(
                "PutEvents answered {} of {sent} entries (FailedEntryCount {})",
                output.entries().len(),
                output.failed_entry_count()
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use chrono::Utc;
    use orders_domain::{EventId, EventType};

    fn event(detail_bytes: usize) -> Publication {
        Publication {
            event_id: EventId::new(),
            event_type: EventType::OrderShipped,
            time: Utc::now(),
            detail: "x".repeat(detail_bytes),
        }
    }

    #[test]
    fn bus_names_follow_eventbridge_s_rules() {
        for good in ["orders-prod-events", "a", "A.b_c-9", &"n".repeat(256)] {
            assert_eq!(EventBusName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "default",
            "orders/events",
            "orders events",
            &"n".repeat(257),
        ] {
            assert!(EventBusName::parse(bad).is_err(), "{bad:?}");
        }
        let arn = "arn:aws:events:us-east-1:123456789012:event-bus/orders";
        assert!(EventBusName::parse(arn).is_err(), "a name, not an ARN");
    }

    #[test]
    fn calls_hold_at_most_ten_entries_in_order() {
        let events: Vec<_> = (0..23).map(|_| event(100)).collect();
        let plan = plan_calls(&events);
        let sizes: Vec<usize> = plan.calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);
        let order: Vec<usize> = plan.calls.concat();
        assert_eq!(order, (0..23).collect::<Vec<_>>());
        assert!(plan.oversized.is_empty());
    }

    #[test]
    fn calls_stay_within_the_request_size_and_a_too_large_event_is_refused() {
        let overhead = entry_size(&event(0));
        let half = MAX_REQUEST_BYTES / 2 - overhead;
        let exact = MAX_REQUEST_BYTES - overhead;
        let events = vec![
            event(half),
            event(half),
            event(1),
            event(exact + 1),
            event(exact),
        ];
        assert_eq!(entry_size(&events[0]) * 2, MAX_REQUEST_BYTES);
        let plan = plan_calls(&events);
        assert_eq!(plan.calls, vec![vec![0, 1], vec![2], vec![4]]);
        assert_eq!(plan.oversized, vec![3]);
        for call in &plan.calls {
            let bytes: usize = call.iter().map(|&i| entry_size(&events[i])).sum();
            assert!(bytes <= MAX_REQUEST_BYTES, "{call:?}: {bytes}");
        }
    }

    #[test]
    fn each_entry_is_answered_by_its_position() {
        let ok = |id: &str| PutEventsResultEntry::builder().event_id(id).build();
        let refused = PutEventsResultEntry::builder()
            .error_code("InternalFailure")
            .error_message("try again")
            .build();
        // An ErrorCode fails the entry whatever else it carries; so does an answer without
        // an EventId.
        let refused_with_id = PutEventsResultEntry::builder()
            .event_id("e-4")
            .error_code("ThrottlingException")
            .build();
        let output = PutEventsOutput::builder()
            .failed_entry_count(2)
            .entries(ok("e-1"))
            .entries(refused)
            .entries(ok("e-3"))
            .entries(refused_with_id)
            .entries(PutEventsResultEntry::builder().build())
            .build();
        let results = entry_results(&output, 6);
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        let refused = results[1].as_ref().unwrap_err().to_string();
        assert!(refused.contains("InternalFailure") && refused.contains("try again"));
        assert!(results[3].is_err(), "{results:?}");
        assert!(results[4].is_err(), "{results:?}");
        assert!(
            results[5].is_err(),
            "an entry without an answer is not taken as sent"
        );
    }
}
