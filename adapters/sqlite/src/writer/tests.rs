//! The writer's grouping of client and background jobs, on a real SQLite file.

use super::*;

/// Queues jobs that, when run, say which kind they were.
struct Tagged {
    queues: Queues,
    ran: Arc<Mutex<Vec<Priority>>>,
    conn: TxConn,
}

impl Tagged {
    fn new() -> Self {
        Tagged {
            queues: Queues::default(),
            ran: Arc::default(),
            conn: TxConn(Arc::new(Mutex::new(Connection::open_in_memory().unwrap()))),
        }
    }

    fn push(&mut self, priority: Priority, n: usize) {
        for _ in 0..n {
            let ran = self.ran.clone();
            let job: Job = Box::new(move |_| {
                ran.lock().unwrap().push(priority);
                (Fate::Keep, Box::new(|_| {}))
            });
            self.queues.push((priority, job));
        }
    }

    /// Runs the next job of the open group; its kind, or `None` when the group commits.
    fn next(&mut self, budget: &mut Budget) -> Option<Priority> {
        let job = self.queues.next_job(budget)?;
        let _ = job(Ok(&self.conn));
        self.ran.lock().unwrap().pop()
    }

    /// The kinds of one whole group, in the order it ran them.
    fn group(&mut self) -> Vec<Priority> {
        let mut budget = Budget::new();
        std::iter::from_fn(|| self.next(&mut budget)).collect()
    }
}

fn count(group: &[Priority], p: Priority) -> usize {
    group.iter().filter(|k| **k == p).count()
}

#[test]
fn waiting_clients_get_the_group_and_the_background_a_few_places() {
    let mut t = Tagged::new();
    t.push(Priority::Background, 100);
    t.push(Priority::Client, 300);
    let first = t.group();
    assert_eq!(first.len(), MAX_GROUP);
    assert_eq!(count(&first, Priority::Background), MIN_BACKGROUND);
    assert!(
        first[..MAX_GROUP - MIN_BACKGROUND]
            .iter()
            .all(|k| *k == Priority::Client)
    );

    // 300 - 248 clients left: they all go, with the same few background jobs.
    let second = t.group();
    assert_eq!(
        count(&second, Priority::Client),
        300 - (MAX_GROUP - MIN_BACKGROUND)
    );
    assert_eq!(count(&second, Priority::Background), MIN_BACKGROUND);

    // No client waits: the background fills the group.
    let third = t.group();
    assert_eq!(third.len(), 100 - 2 * MIN_BACKGROUND);
    assert!(third.iter().all(|k| *k == Priority::Background));
    assert!(t.queues.is_empty());
}

#[test]
fn a_client_arriving_during_a_background_group_joins_it_and_ends_it_soon() {
    let mut t = Tagged::new();
    t.push(Priority::Background, 100);
    let mut budget = Budget::new();
    for _ in 0..10 {
        assert_eq!(t.next(&mut budget), Some(Priority::Background));
    }
    t.push(Priority::Client, 5);
    let rest: Vec<Priority> = std::iter::from_fn(|| t.next(&mut budget)).collect();
    // The five clients at once, then only MIN_BACKGROUND more background jobs.
    let mut expected = vec![Priority::Client; 5];
    expected.extend([Priority::Background; MIN_BACKGROUND]);
    assert_eq!(rest, expected);
    assert_eq!(t.queues.background.len(), 100 - 10 - MIN_BACKGROUND);
}

#[tokio::test]
async fn background_writes_commit_like_client_writes() {
    let writer = Writer::spawn(Connection::open_in_memory().unwrap(), Arc::default()).unwrap();
    writer
        .write(|c| {
            c.execute_batch("CREATE TABLE t (v TEXT)")
                .map_err(sqlite_err)
        })
        .await
        .unwrap();
    let bg = writer.write_tx(Priority::Background, |tx| {
        tx.with(|c| {
            c.execute("INSERT INTO t VALUES ('bg')", [])
                .map_err(sqlite_err)
        })
    });
    let client = writer.write(|c| {
        c.execute("INSERT INTO t VALUES ('client')", [])
            .map_err(sqlite_err)
    });
    let (bg, client) = tokio::join!(bg, client);
    assert_eq!((bg.unwrap(), client.unwrap()), (1, 1));
    let n = writer
        .write(|c| {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                .map_err(sqlite_err)
        })
        .await
        .unwrap();
    assert_eq!(n, 2);
}
