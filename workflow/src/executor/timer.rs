//! Parked executions: waiting for a task token with no runner, no thread and no permit.
//!
//! What a parked execution costs is one entry here (its name and, if it has one, its next
//! deadline). One timer task per executor sleeps until the earliest deadline and then wakes
//! the executions that are due, which re-read their snapshot and decide for themselves: a
//! deadline here is only a hint to look, the stored wait is the truth. So an entry that is
//! stale (a heartbeat moved the deadline, an answer closed the wait) costs a wasted look,
//! never a wrong timeout.

use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::Executor;

#[derive(Default)]
struct State {
    deadlines: HashMap<Arc<str>, Option<DateTime<Utc>>>,
    due: BTreeSet<(DateTime<Utc>, Arc<str>)>,
    timer: Option<AbortHandle>,
    stopped: bool,
}

impl State {
    fn remove(&mut self, name: &str) -> bool {
        match self.deadlines.remove_entry(name) {
            Some((name, deadline)) => {
                if let Some(at) = deadline {
                    self.due.remove(&(at, name));
                }
                true
            }
            None => false,
        }
    }
}

#[derive(Default)]
pub(super) struct Parked {
    state: Mutex<State>,
    /// Told when the earliest deadline moves earlier.
    earlier: Notify,
}

impl Parked {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn len(&self) -> usize {
        self.lock().deadlines.len()
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.lock().deadlines.contains_key(name)
    }

    /// Parks `name` until `deadline` (or an answer). Returns whether the timer task must be
    /// started (there is a deadline and no timer yet).
    fn insert(&self, name: &str, deadline: Option<DateTime<Utc>>) -> bool {
        let mut state = self.lock();
        if state.stopped {
            return false;
        }
        state.remove(name);
        let name: Arc<str> = Arc::from(name);
        state.deadlines.insert(Arc::clone(&name), deadline);
        let Some(at) = deadline else { return false };
        let earliest = state.due.first().is_none_or(|(first, _)| at < *first);
        state.due.insert((at, name));
        if earliest {
            self.earlier.notify_one();
        }
        state.timer.is_none()
    }

    /// Moves a parked execution's deadline (a heartbeat); not parked: nothing to do, its
    /// runner reads the stored deadline when it parks.
    pub(super) fn rearm(&self, name: &str, deadline: Option<DateTime<Utc>>) {
        if self.contains(name) {
            self.insert(name, deadline);
        }
    }

    pub(super) fn remove(&self, name: &str) -> bool {
        self.lock().remove(name)
    }

    /// Forgets every parked execution and stops the timer (shutdown).
    pub(super) fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        state.deadlines.clear();
        state.due.clear();
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
    }

    /// Unparks and returns every execution due by `now`, or says when the next one is.
    fn take_due(&self, now: DateTime<Utc>) -> Result<Vec<Arc<str>>, Option<DateTime<Utc>>> {
        let mut state = self.lock();
        let mut due = Vec::new();
        while let Some((at, _)) = state.due.first()
            && *at <= now
        {
            let Some((_, name)) = state.due.pop_first() else {
                break;
            };
            state.deadlines.remove(&name);
            due.push(name);
        }
        if due.is_empty() {
            Err(state.due.first().map(|(at, _)| *at))
        } else {
            Ok(due)
        }
    }
}

impl Executor {
    /// Parks `name` (its runner is about to end), starting the timer on first need.
    pub(super) fn park(self: &Arc<Self>, name: &str, deadline: Option<DateTime<Utc>>) {
        if !self.parked.insert(name, deadline) {
            return;
        }
        let parked = Arc::clone(&self.parked);
        let executor = Arc::downgrade(self);
        let mut state = parked.lock();
        if state.timer.is_none() && !state.stopped {
            let handle = tokio::spawn(timer(executor, Arc::clone(&parked)));
            state.timer = Some(handle.abort_handle());
        }
    }
}

/// Wakes parked executions when their deadline passes. Holds the executor only weakly, so an
/// executor dropped without a shutdown does not live on through its timer.
async fn timer(executor: Weak<Executor>, parked: Arc<Parked>) {
    loop {
        let earlier = parked.earlier.notified();
        match parked.take_due(Utc::now()) {
            Ok(due) => {
                let Some(executor) = executor.upgrade() else {
                    return;
                };
                for name in due {
                    executor.wake(&name);
                }
            }
            Err(next) => {
                if executor.strong_count() == 0 {
                    return;
                }
                match next {
                    Some(at) => {
                        let wait = (at - Utc::now()).to_std().unwrap_or_default();
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = earlier => {}
                        }
                    }
                    None => earlier.await,
                }
            }
        }
    }
}
