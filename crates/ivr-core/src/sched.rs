//! CPU priority of the engine's threads: the media path (RTP pacing, on the
//! async runtime's workers) goes first; background work that takes whole
//! cores for long stretches (speech recognition, synthesis, the end-of-turn
//! model) runs at a lower priority, so a waking media thread gets a core at
//! once instead of after the recogniser's time slice. The nice value is a
//! process-wide setting ([`set_background_nice`], from the engine's
//! configuration) applied by each background thread to itself
//! ([`enter_background`]). Raising one's own nice value needs no privilege.

use std::sync::atomic::{AtomicI32, Ordering};

/// The nice value background threads take (0: as the rest of the engine).
static BACKGROUND_NICE: AtomicI32 = AtomicI32::new(DEFAULT_BACKGROUND_NICE);

/// Background threads' nice value unless configured: 10 gives a busy
/// media thread about ten times a background thread's share of a core and
/// lets it preempt one on waking; the background still runs whenever the
/// media leaves a core idle.
pub const DEFAULT_BACKGROUND_NICE: i32 = 10;

/// Sets the nice value background threads take from now on (clamped to 0..=19).
pub fn set_background_nice(nice: i32) {
    BACKGROUND_NICE.store(nice.clamp(0, 19), Ordering::Relaxed);
}

/// The nice value background threads take.
pub fn background_nice() -> i32 {
    BACKGROUND_NICE.load(Ordering::Relaxed)
}

/// Lowers the calling thread's CPU priority to [`background_nice`] (on
/// Linux the nice value is per thread; elsewhere this does nothing). Threads
/// it creates afterwards inherit it. Once lowered, the priority stays: call
/// it only on threads that do background work alone. A thread already at
/// least as nice is left as it is.
pub fn enter_background() -> std::io::Result<()> {
    let nice = background_nice();
    // Already as nice (or nicer, e.g. the whole engine runs under `nice`):
    // leave it; lowering a nice value needs a privilege.
    if nice == 0 || this_thread_nice()? >= nice {
        return Ok(());
    }
    set_this_thread_nice(nice)
}

#[cfg(target_os = "linux")]
fn set_this_thread_nice(nice: i32) -> std::io::Result<()> {
    // SAFETY: gettid and setpriority take and return plain integers; no
    // memory is shared with the kernel.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_this_thread_nice(_nice: i32) -> std::io::Result<()> {
    Ok(())
}

/// The calling thread's nice value (Linux; 0 elsewhere).
pub fn this_thread_nice() -> std::io::Result<i32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as in `set_this_thread_nice`; errno is cleared first
        // because -1 is also a valid nice value.
        let (nice, err) = unsafe {
            *libc::__errno_location() = 0;
            let tid = libc::gettid();
            let n = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            (n, *libc::__errno_location())
        };
        if err != 0 {
            return Err(std::io::Error::from_raw_os_error(err));
        }
        Ok(nice)
    }
    #[cfg(not(target_os = "linux"))]
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_thread_runs_nicer_than_the_thread_that_made_it() {
        set_background_nice(7);
        let before = this_thread_nice().unwrap();
        let (bg, child) = std::thread::spawn(|| {
            enter_background().unwrap();
            let bg = this_thread_nice().unwrap();
            // A thread it starts (whisper's compute threads) inherits it.
            let child = std::thread::spawn(|| this_thread_nice().unwrap())
                .join()
                .unwrap();
            (bg, child)
        })
        .join()
        .unwrap();
        assert_eq!(this_thread_nice().unwrap(), before, "only that thread");
        if cfg!(target_os = "linux") {
            assert_eq!((bg, child), (before.max(7), before.max(7)));
        }
        set_background_nice(DEFAULT_BACKGROUND_NICE);
    }
}
