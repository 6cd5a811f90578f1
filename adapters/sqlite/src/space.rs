//! Whether storage accepts writes: the writer's record of "storage full" episodes.
//!
//! A full disk (or the database at its size limit, `SqliteOptions::max_db_bytes`) makes SQLite
//! refuse any write that needs a page it cannot have, with `SQLITE_FULL`; such a write is
//! rolled back and changes nothing. Reads still answer, so whether storage is healthy cannot be
//! learnt from a read: only the writer knows. It reports every group it ran to [`Space`], which
//! keeps one episode at a time:
//!
//! - it starts at the first refused write, with one WARN line;
//! - it ends at the first commit after which the database holds more pages than before it
//!   (space that writes needed was there) and that comes at least [`QUIET`] after the last
//!   refused write, with one INFO line carrying the count of refused writes and the episode's
//!   length.
//!
//! Both conditions keep one episode from turning into many (and many pairs of log lines):
//! while the disk is full, small updates that fit into pages already allocated still commit,
//! and near the limit a small insert may take the last free page just after a larger one was
//! refused. Freed space (rows deleted, the limit raised, files removed from the disk) is taken
//! by the next inserts, which grow the database again; under load they keep coming, and when
//! idle the background writers' next attempts make them.
//!
//! Nothing here logs per refused write, and the callers that write in the background wait for
//! [`Space::returned`] between attempts instead of retrying at once: one episode is one pair of
//! log lines, whatever the load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What the store has seen of refused writes since it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRefusals {
    /// Writes are being refused now (an episode is open).
    pub refusing: bool,
    /// Episodes started since the store opened.
    pub episodes: u64,
    /// Writes refused since the store opened.
    pub refused: u64,
}

/// How long after the last refused write a commit must come to end an episode.
pub(crate) const QUIET: Duration = Duration::from_secs(1);

/// An open episode.
struct Episode {
    since: Instant,
    last_refusal: Instant,
    refused: u64,
    /// Pages in use after the last group: a commit that leaves more took new space.
    pages_in_use: i64,
}

pub(crate) struct Space {
    quiet: Duration,
    /// Mirrors `episode.is_some()`, so a group and /health need no lock while all is well.
    refusing: AtomicBool,
    episode: Mutex<Option<Episode>>,
    episodes: AtomicU64,
    refused: AtomicU64,
    returned: Notify,
}

impl Default for Space {
    fn default() -> Self {
        Space::with_quiet(QUIET)
    }
}

impl Space {
    fn with_quiet(quiet: Duration) -> Self {
        Space {
            quiet,
            refusing: AtomicBool::new(false),
            episode: Mutex::new(None),
            episodes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            returned: Notify::new(),
        }
    }

    pub(crate) fn refusing(&self) -> bool {
        self.refusing.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> WriteRefusals {
        WriteRefusals {
            refusing: self.refusing(),
            episodes: self.episodes.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// The writer's report of one group: `refused` of its jobs were refused for want of
    /// space, and `committed` says whether it committed any write. `pages_in_use` measures the
    /// database (outside any transaction); it is only called during an episode.
    pub(crate) fn after_group(
        &self,
        refused: u64,
        committed: bool,
        pages_in_use: impl FnOnce() -> Option<i64>,
    ) {
        if refused == 0 && !(committed && self.refusing()) {
            return;
        }
        let mut episode = self
            .episode
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if refused > 0 {
            self.refused.fetch_add(refused, Ordering::Relaxed);
            // Unmeasurable: any later commit ends the episode rather than none.
            let pages = pages_in_use().unwrap_or(i64::MAX);
            match episode.as_mut() {
                Some(open) => {
                    open.refused += refused;
                    open.pages_in_use = pages;
                    open.last_refusal = Instant::now();
                }
                None => {
                    tracing::warn!(
                        "storage refuses writes: disk full (or the database at its size limit); \
                         writes answer 503 until space returns"
                    );
                    self.episodes.fetch_add(1, Ordering::Relaxed);
                    *episode = Some(Episode {
                        since: Instant::now(),
                        last_refusal: Instant::now(),
                        refused,
                        pages_in_use: pages,
                    });
                    self.refusing.store(true, Ordering::Release);
                }
            }
            return;
        }
        let Some(open) = episode.as_mut() else {
            return;
        };
        let pages = pages_in_use().unwrap_or(i64::MAX);
        let grew = pages > open.pages_in_use;
        open.pages_in_use = pages;
        if !grew || open.last_refusal.elapsed() < self.quiet {
            // It fitted into pages already there, or came too soon after a refusal: no proof
            // yet that space returned.
            return;
        }
        let lasted = open.since.elapsed().as_secs_f64();
        let refused = open.refused;
        *episode = None;
        self.refusing.store(false, Ordering::Release);
        tracing::info!(
            refused,
            lasted_secs = lasted,
            "storage accepts writes again after {refused} refused writes (episode lasted {lasted:.1} s)"
        );
        self.returned.notify_waiters();
    }

    /// Waits until an episode ends or `at_most` passes, whichever is first. A background
    /// writer waits here between attempts: its next attempt is also what finds out that
    /// space returned when no other write does.
    pub(crate) async fn returned(&self, at_most: Duration) {
        let returned = self.returned.notified();
        if !self.refusing() {
            return;
        }
        let _ = tokio::time::timeout(at_most, returned).await;
    }
}

/// Pages of the database holding data (its size less its free pages), measured outside a
/// transaction: what [`Space`] compares to tell that a commit took new space.
pub(crate) fn pages_in_use(conn: &rusqlite::Connection) -> Option<i64> {
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    Some(pragma("page_count").ok()? - pragma("freelist_count").ok()?)
}

/// How long a background writer waits between attempts while storage refuses writes:
/// doubling from a tenth of a second to five seconds.
pub(crate) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Self {
        Backoff(Self::FIRST)
    }

    pub(crate) fn next(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(Self::MOST);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_starts_at_a_refusal_and_ends_when_the_database_grows() {
        let space = Space::with_quiet(Duration::ZERO);
        space.after_group(0, true, || panic!("not measured while all is well"));
        assert!(!space.refusing());
        space.after_group(3, false, || Some(100));
        space.after_group(2, true, || Some(100));
        assert!(space.refusing());
        // Committed, but into pages already there: still refusing.
        space.after_group(0, true, || Some(100));
        assert!(space.refusing());
        // Rows deleted elsewhere: the floor follows, and the next insert that fits ends it.
        space.after_group(0, true, || Some(90));
        assert!(space.refusing());
        space.after_group(0, true, || Some(91));
        assert_eq!(
            space.stats(),
            WriteRefusals {
                refusing: false,
                episodes: 1,
                refused: 5
            }
        );
        space.after_group(1, false, || Some(91));
        assert_eq!(space.stats().episodes, 2);
    }

    #[test]
    fn growth_right_after_a_refusal_does_not_end_the_episode() {
        let space = Space::with_quiet(Duration::from_secs(3600));
        space.after_group(1, false, || Some(100));
        space.after_group(0, true, || Some(101));
        assert!(space.refusing());
        assert_eq!(space.stats().episodes, 1);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let mut b = Backoff::new();
        let waits: Vec<_> = (0..8).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
