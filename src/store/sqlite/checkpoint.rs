//! Checkpoints off the writer thread.
//!
//! In WAL mode a commit appends pages to the WAL; a checkpoint copies them into the database
//! file so that the WAL can start over. SQLite runs it on the connection whose commit crossed
//! the mark (`wal_autocheckpoint`): on the writer thread, and every group behind it waits for
//! the copying and the database fsync. Here a second connection, on a thread of its own,
//! copies as the WAL grows while the writer goes on committing. The writer still checkpoints
//! at the mark, but by then most pages are copied and its share is small. It has to be the
//! writer: a WAL starts over only after a checkpoint that left nothing behind, and while
//! groups commit back to back only the writer, between two of them, can run one.
//!
//! Durability does not depend on any of this. A group is on disk (`synchronous = FULL`) before
//! the writer answers it; a checkpoint only moves committed pages from one file into the
//! other, and SQLite recovers from a crash in the middle of one by reading the WAL again.

use super::{OpenError, open_connection};
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};
use std::os::raw::c_int;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Background passes per WAL restart: more copy less per pass, and leave the writer less,
/// but each pass also rewrites the pages every group touches and fsyncs the database.
const PASSES_PER_RESTART: u32 = 4;

/// What the writer does after a commit, given the WAL's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Nothing,
    /// Wake the background thread to copy what the WAL holds.
    Copy,
    /// Checkpoint on the writer, so the next group starts the WAL over.
    Restart,
}

#[derive(Debug)]
struct Policy {
    restart_at: u32,
    copy_every: u32,
    /// The WAL's length at the last wake-up.
    woken_at: u32,
}

impl Policy {
    fn new(restart_at: u32) -> Self {
        Policy {
            restart_at,
            copy_every: (restart_at / PASSES_PER_RESTART).max(1),
            woken_at: 0,
        }
    }

    fn after_commit(&mut self, frames: u32) -> Action {
        if frames < self.woken_at {
            // The WAL started over since.
            self.woken_at = 0;
        }
        if frames >= self.restart_at {
            Action::Restart
        } else if frames - self.woken_at >= self.copy_every {
            self.woken_at = frames;
            Action::Copy
        } else {
            Action::Nothing
        }
    }
}

/// The background thread; joined on drop, after the writer's connection (and with it the
/// hook that wakes the thread) is gone.
pub(super) struct Checkpointer {
    thread: Option<JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the background thread on its own connection to `path` and replaces SQLite's
/// automatic checkpoint on `writer` with the hook that drives it, `restart_at` WAL pages being
/// the mark where the writer has the WAL start over.
pub(super) fn install(
    writer: &mut Connection,
    path: &Path,
    restart_at: u32,
) -> Result<Checkpointer, OpenError> {
    let open_err = |source| OpenError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = open_connection(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    // One pending wake-up is enough: a pass copies everything committed before it starts.
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                copy(&conn);
            }
        })
        .map_err(OpenError::Thread)?;
    let mut policy = Policy::new(restart_at);
    writer
        .wal_hook(Some(move |wal: &mut Wal, frames: c_int| {
            match policy.after_commit(u32::try_from(frames).unwrap_or(0)) {
                Action::Nothing => {}
                Action::Copy => {
                    // Full: a pass is already due, and it will copy these pages too.
                    let _ = wake.try_send(());
                }
                Action::Restart => {
                    // Busy when the background pass holds the checkpoint lock: the next
                    // commit tries again.
                    if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                        tracing::debug!(error = %e, "the writer's checkpoint did not run");
                    }
                }
            }
            // Never an error: the commit that called the hook has happened, and an error here
            // would make it look failed to the jobs of its group.
            Ok(())
        }))
        .map_err(open_err)?;
    Ok(Checkpointer {
        thread: Some(thread),
    })
}

/// One background pass: PASSIVE never waits for the writer or for readers; it copies what it
/// can, and what it cannot is left for the next pass or the writer's checkpoint.
fn copy(conn: &Connection) {
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match done {
        Ok((wal, copied)) => tracing::trace!(wal, copied, "background checkpoint"),
        Err(e) => tracing::warn!(error = %e, "background checkpoint failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteOptions, SqliteStore, exec, sqlite_err};
    use std::time::{Duration, Instant};

    #[test]
    fn the_writer_wakes_the_background_four_times_then_restarts_the_wal() {
        let mut p = Policy::new(400);
        let actions: Vec<Action> = [50, 99, 100, 150, 199, 200, 310, 399, 400, 420]
            .into_iter()
            .map(|f| p.after_commit(f))
            .collect();
        use Action::{Copy, Nothing, Restart};
        let expected = [
            Nothing, Nothing, Copy, Nothing, Nothing, Copy, Copy, Nothing, Restart, Restart,
        ];
        assert_eq!(actions, expected);
        // The WAL started over: counting starts again from its new length.
        assert_eq!(p.after_commit(30), Nothing);
        assert_eq!(p.after_commit(100), Copy);
    }

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// Commits `n` groups one after the other, each about `pages` new 2 KiB pages.
    async fn commit_groups(store: &SqliteStore, n: usize, pages: usize) {
        store
            .write(|c| {
                exec(c, "CREATE TABLE IF NOT EXISTS filler (b BLOB)", []).map_err(sqlite_err)
            })
            .await
            .unwrap();
        for _ in 0..n {
            store
                .write(move |c| {
                    for _ in 0..pages {
                        exec(c, "INSERT INTO filler VALUES (zeroblob(1800))", [])
                            .map_err(sqlite_err)?;
                    }
                    Ok(())
                })
                .await
                .unwrap();
        }
    }

    const FRAME: u64 = 2048 + 24;

    #[tokio::test]
    async fn the_wal_starts_over_under_back_to_back_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.db");
        let options = SqliteOptions {
            wal_autocheckpoint: 200,
        };
        let store = SqliteStore::open_with(&path, options).unwrap();
        // About 1,500 WAL pages in all, 7 times the mark.
        commit_groups(&store, 300, 5).await;
        let wal = file_len(&dir.path().join("orders.db-wal"));
        assert!(
            wal <= 2 * 200 * FRAME,
            "the WAL grew to {} pages",
            wal / FRAME
        );
    }

    #[tokio::test]
    async fn the_background_copies_pages_before_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.db");
        let options = SqliteOptions {
            wal_autocheckpoint: 2_000,
        };
        let store = SqliteStore::open_with(&path, options).unwrap();
        let before = file_len(&path);
        // About 1,000 WAL pages: past two wake-ups, short of the writer's checkpoint.
        commit_groups(&store, 100, 10).await;
        // The pass runs beside the writer: wait for it, but not for ever.
        let deadline = Instant::now() + Duration::from_secs(10);
        while file_len(&path) < before + 300 * 2048 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let grown = (file_len(&path) - before) / 2048;
        assert!(grown >= 300, "the database file grew by {grown} pages only");
    }
}
