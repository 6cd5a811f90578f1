//! The relay and the saga executor run on a Tokio runtime of their own, whose threads have a
//! lower scheduling priority (a higher nice value) than the API's.
//!
//! Why: on a saturated machine the API and the sagas compete for the same cores. An order the
//! API has answered is already durable, with its outbox event, so accepting orders comes
//! first and the sagas use what the API leaves. They never stall: the kernel's fair scheduler
//! still gives a niced thread its weighted share (at nice 10, about a tenth of a nice-0
//! thread's), and all of an otherwise idle core. The single writer applies the same rule to
//! writes, where a client's job goes before background jobs.
//!
//! Linux keeps a nice value per thread, which is what makes this possible inside one process;
//! elsewhere the threads keep the process's priority.

use tokio::runtime::{Builder, Runtime};

/// Builds the background runtime: one worker per core, each of its threads (workers and
/// blocking pool alike) at `niceness` (0 = the API's priority).
pub fn runtime(niceness: u8) -> std::io::Result<Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("saga")
        .on_thread_start(move || lower_priority(niceness))
        .enable_all()
        .build()
}

#[cfg(target_os = "linux")]
fn lower_priority(niceness: u8) {
    if niceness == 0 {
        return;
    }
    // On Linux, PRIO_PROCESS with id 0 names the calling thread only, not the whole process.
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, libc::c_int::from(niceness)) };
    if rc != 0 {
        // Raising one's own nice value needs no privilege, so this is unexpected; the thread
        // still works, only without the lower priority.
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower a saga thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_niceness: u8) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The nice value the calling thread runs at.
    fn own_niceness() -> i32 {
        // getpriority may return -1 legitimately; errno tells, but nice values here are >= 0.
        // SAFETY: plain integers in and out.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn background_threads_run_at_the_given_niceness_and_others_do_not() {
        let before = own_niceness();
        let rt = super::runtime(7).expect("runtime");
        let worker = rt.block_on(async { tokio::spawn(async { own_niceness() }).await.unwrap() });
        let blocking =
            rt.block_on(async { tokio::task::spawn_blocking(own_niceness).await.unwrap() });
        assert_eq!(worker, before + 7, "worker thread");
        assert_eq!(blocking, before + 7, "blocking-pool thread");
        assert_eq!(own_niceness(), before, "the calling thread is left alone");

        let same = super::runtime(0).expect("runtime");
        let worker = same.block_on(async { tokio::spawn(async { own_niceness() }).await.unwrap() });
        assert_eq!(worker, before, "niceness 0 changes nothing");
    }
}
