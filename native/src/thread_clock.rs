//! The calling thread's CPU time, for admission control (src/service/admission.ts): a turn of an
//! I/O thread's event loop that ran long in wall time but not in CPU time was stalled (the thread
//! descheduled, the machine busy), not fed more requests than it can answer.

use napi_derive::napi;

/// CPU time the calling thread has used, in milliseconds (CLOCK_THREAD_CPUTIME_ID); -1 where
/// that clock is unavailable.
#[napi]
pub fn current_thread_cpu_ms() -> f64 {
    thread_cpu_ms()
}

#[cfg(unix)]
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return -1.0;
    }
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

#[cfg(not(unix))]
fn thread_cpu_ms() -> f64 {
    -1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn counts_this_threads_work_and_not_its_sleep() {
        let t0 = current_thread_cpu_ms();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let slept = current_thread_cpu_ms() - t0;
        let t1 = current_thread_cpu_ms();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let worked = current_thread_cpu_ms() - t1;
        assert!((0.0..10.0).contains(&slept), "sleeping used {slept} ms of CPU");
        // Busy for 30 ms of wall time: most of it is CPU time unless the machine is very busy.
        assert!(worked > 10.0, "working 30 ms used only {worked} ms of CPU");
    }
}
