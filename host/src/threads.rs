//! The priority of the calling thread: pipeline threads run at the
//! default, background work below it.

/// Background workers run at the lowest priority (nice 19): they use idle
/// CPU freely but yield it to everyone else under contention.
pub(crate) fn lower_priority() {
    set_nice(19);
}

/// Sets the calling thread's nice value (Linux; elsewhere nothing).
pub(crate) fn set_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on the calling thread (tid from gettid) with a
    // plain integer; no memory is passed.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) != 0 {
            tracing::warn!(nice, "could not lower a thread's priority");
        }
    }
}
