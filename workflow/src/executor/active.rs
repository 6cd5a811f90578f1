//! The runners of this process: at most one per execution, each registered while it runs.
//!
//! A runner ends when its execution finishes, when its store fails, or when it parks waiting
//! for a task token. Something that must make an execution move on (an answer to its token,
//! its deadline) asks for a runner with `wake`: one is started, or, if one is registered, it is
//! flagged, and a runner about to park checks that flag under the same lock (`retire`) and
//! re-reads the store instead of ending. So a wake is never lost between a runner's last look
//! at the store and its end.

use super::Executor;
use super::run::{self, Start};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use tokio::task::AbortHandle;

struct Run {
    id: u64,
    /// Set once spawned.
    handle: Option<AbortHandle>,
    /// Something was stored that this runner has not seen: re-read before parking.
    woken: bool,
}

/// Executions running in this process.
#[derive(Default)]
pub(super) struct Active {
    next_id: u64,
    runs: HashMap<String, Run>,
}

/// Held by a spawned execution; dropping it (finished, failed or aborted) deregisters it.
struct RunGuard {
    executor: Arc<Executor>,
    name: String,
    id: u64,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        {
            let mut active = self.executor.lock_active();
            if active.runs.get(&self.name).is_some_and(|r| r.id == self.id) {
                active.runs.remove(&self.name);
            }
        }
        self.executor.running.send_modify(|n| *n -= 1);
    }
}

impl Executor {
    pub(super) fn lock_active(&self) -> MutexGuard<'_, Active> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_running_here(&self, name: &str) -> bool {
        self.lock_active().runs.contains_key(name)
    }

    /// Every runner's abort handle (for shutdown).
    pub(super) fn abort_handles(&self) -> Vec<AbortHandle> {
        let active = self.lock_active();
        active
            .runs
            .values()
            .filter_map(|r| r.handle.clone())
            .collect()
    }

    /// Makes a parked or running execution look at its stored snapshot again.
    pub(super) fn wake(self: &Arc<Self>, name: &str) {
        self.parked.remove(name);
        self.spawn(Start::Load(name.to_owned()), true);
    }

    /// Ends the registration of a runner that is about to park; false if it was woken
    /// meanwhile (then it must re-read the store and carry on).
    pub(super) fn retire(&self, name: &str, id: u64) -> bool {
        let mut active = self.lock_active();
        match active.runs.get_mut(name) {
            Some(run) if run.id == id && run.woken => {
                run.woken = false;
                self.parked.remove(name);
                false
            }
            Some(run) if run.id == id => {
                active.runs.remove(name);
                true
            }
            _ => true,
        }
    }

    /// Spawns a runner unless one runs here (then, with `wake`, flags it); returns whether
    /// one was spawned.
    pub(super) fn spawn(self: &Arc<Self>, start: Start, wake: bool) -> bool {
        let name = match &start {
            Start::Snapshot(s) => s.name.clone(),
            Start::Load(name) => name.clone(),
        };
        let id = {
            let mut active = self.lock_active();
            if self.shutting_down.load(Ordering::SeqCst) {
                return false;
            }
            if let Some(run) = active.runs.get_mut(&name) {
                run.woken |= wake;
                return false;
            }
            active.next_id += 1;
            let id = active.next_id;
            let run = Run {
                id,
                handle: None,
                woken: false,
            };
            active.runs.insert(name.clone(), run);
            id
        };
        self.running.send_modify(|n| *n += 1);
        let guard = RunGuard {
            executor: Arc::clone(self),
            name: name.clone(),
            id,
        };
        let handle = tokio::spawn(async move {
            let executor = Arc::clone(&guard.executor);
            run::run(executor, guard.id, start).await;
            drop(guard);
        });
        let abort_now = {
            let mut active = self.lock_active();
            match active.runs.get_mut(&name) {
                Some(run) if run.id == id => {
                    run.handle = Some(handle.abort_handle());
                    // Read under the lock `shutdown` collects handles under: either it saw
                    // this handle or this sees its flag, so no run escapes a shutdown.
                    self.shutting_down.load(Ordering::SeqCst)
                }
                _ => false,
            }
        };
        if abort_now {
            handle.abort();
        }
        true
    }
}
