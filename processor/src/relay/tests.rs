//! The relay's pass over a mixed batch, on an in-memory outbox: every kind of row ends where
//! it must, and one failing delivery neither blocks nor loses the rest of its batch.

use super::*;
use crate::tests::{Recorder, Signals, created, signal_row, succeed};
use orders_domain::TaskSignal;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// A row's fate so far.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Row {
    Pending { payload: String, failures: u32 },
    Published,
    Parked,
}

#[derive(Default)]
struct MemoryOutbox(Mutex<BTreeMap<i64, Row>>);

impl MemoryOutbox {
    fn with(rows: &[Vec<u8>]) -> Self {
        let rows = rows.iter().enumerate().map(|(i, p)| {
            let payload = String::from_utf8(p.clone()).unwrap();
            (
                i as i64 + 1,
                Row::Pending {
                    payload,
                    failures: 0,
                },
            )
        });
        MemoryOutbox(Mutex::new(rows.collect()))
    }

    fn row(&self, seq: i64) -> Row {
        self.0.lock().unwrap()[&seq].clone()
    }
}

#[async_trait]
impl OutboxSource for MemoryOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<PendingEvent>, OutboxError> {
        let rows = self.0.lock().unwrap();
        let pending = rows.iter().filter_map(|(seq, row)| match row {
            Row::Pending { payload, failures } => Some(PendingEvent {
                seq: *seq,
                payload: payload.clone(),
                attempts: *failures,
            }),
            _ => None,
        });
        Ok(pending.take(limit).collect())
    }
    async fn mark_published(&self, seqs: &[i64], _: DateTime<Utc>) -> Result<(), OutboxError> {
        let mut rows = self.0.lock().unwrap();
        for seq in seqs {
            rows.insert(*seq, Row::Published);
        }
        Ok(())
    }
    async fn record_failure(&self, seq: i64, _: &str) -> Result<(), OutboxError> {
        if let Some(Row::Pending { failures, .. }) = self.0.lock().unwrap().get_mut(&seq) {
            *failures += 1;
        }
        Ok(())
    }
    async fn park(&self, seq: i64, _: &str, _: DateTime<Utc>) -> Result<(), OutboxError> {
        self.0.lock().unwrap().insert(seq, Row::Parked);
        Ok(())
    }
}

fn relay(source: Arc<MemoryOutbox>, signals: Arc<Signals>) -> (Relay, Arc<Recorder>) {
    let starter = Arc::new(Recorder::default());
    let relay = Relay {
        source,
        starter: starter.clone(),
        signaller: signals,
        signal: Arc::default(),
        options: RelayOptions::default(),
    };
    (relay, starter)
}

#[tokio::test]
async fn a_failed_delivery_is_retried_and_the_batch_goes_on() {
    let cancel = TaskSignal::CancelWaiting {
        execution: "down-exec".into(),
        reason: None,
    };
    let rows = [
        signal_row(cancel.clone()),
        serde_json::to_vec(&created()).unwrap(),
        signal_row(succeed("stale-token")),
        b"{\"type\":\"order.deleted\"}".to_vec(),
        signal_row(succeed("live-token")),
    ];
    let source = Arc::new(MemoryOutbox::with(&rows));
    let signals = Arc::new(Signals::default());
    signals.down.store(true, Ordering::SeqCst);
    let (relay, starter) = relay(source.clone(), signals.clone());

    let err = relay.pass().await.unwrap_err();
    assert!(err.0.contains("1 of 5"), "{err}");
    let payload = String::from_utf8(rows[0].clone()).unwrap();
    assert_eq!(
        source.row(1),
        Row::Pending {
            payload,
            failures: 1
        },
        "the failed delivery stays pending, its failure counted"
    );
    assert_eq!(source.row(2), Row::Published, "the saga start went ahead");
    assert_eq!(source.row(3), Row::Published, "a stale signal is done");
    assert_eq!(source.row(4), Row::Parked, "poison is parked, not retried");
    assert_eq!(source.row(5), Row::Published);
    assert_eq!(starter.0.lock().unwrap().len(), 1);

    // The failure passes: the next pass delivers the one row left, and nothing else again.
    signals.down.store(false, Ordering::SeqCst);
    assert_eq!(relay.pass().await.unwrap(), 1);
    assert_eq!(source.row(1), Row::Published);
    assert_eq!(relay.pass().await.unwrap(), 0);
    // Delivered concurrently, so in no particular order: each one once.
    let delivered = signals.delivered.lock().unwrap();
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    for expected in [succeed("stale-token"), succeed("live-token"), cancel] {
        assert_eq!(delivered.iter().filter(|s| **s == expected).count(), 1);
    }
}
