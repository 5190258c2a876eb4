//! Lowering one thread's CPU priority (its nice value), for work that must yield to serving:
//! the embedded database's thread (src/registry/pglite-thread-worker.ts). On Linux a nice value
//! belongs to a thread (setpriority with its thread id), not to the whole process.

use napi_derive::napi;

/// Sets the calling thread's nice value to `nice` (0..=19: lowering only, which needs no
/// privilege). Returns false where that is not supported or was refused.
#[napi]
pub fn lower_current_thread_priority(nice: i32) -> bool {
    if !(0..=19).contains(&nice) {
        return false;
    }
    set_nice(nice)
}

#[cfg(target_os = "linux")]
fn set_nice(nice: i32) -> bool {
    // SAFETY: gettid takes no arguments; setpriority only reads its integer arguments.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn set_nice(_nice: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_values_outside_the_lowering_range() {
        assert!(!lower_current_thread_priority(-1));
        assert!(!lower_current_thread_priority(20));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn lowers_only_the_calling_thread() {
        let main_before = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let t = std::thread::spawn(|| {
            assert!(lower_current_thread_priority(19));
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) }
        });
        assert_eq!(t.join().unwrap(), 19);
        // getpriority(PRIO_PROCESS, 0) reads the calling (main test) thread: unchanged.
        assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, main_before);
    }
}
