//! How many whisper threads an utterance gets, decided again before every
//! encoder and decoder call.
//!
//! Each worker has `[stt] threads` (one by default: more workers of few
//! threads serve many calls best, and ggml's threads spin while they wait
//! for each other, so extra threads on a busy machine are slower, not
//! faster). But an utterance recognised while no other is, on a machine
//! with idle cores, would leave those cores idle while the caller waits:
//! then it takes up to `[stt] idle_threads` (a 3 s Danish utterance: 265 ms
//! on one thread, 150 ms on two, `benches/stt.rs`). Whether the cores are
//! idle is read from the kernel's count of runnable threads at that moment
//! (`/proc/loadavg`), so a call's media, a synthesis or a build running
//! beside it keeps the utterance at its base count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The thread count of one worker's utterances.
#[derive(Debug, Clone)]
pub(crate) struct Threads {
    base: usize,
    idle: usize,
    cores: usize,
    /// Workers recognising an utterance now (this one included).
    busy: Arc<AtomicUsize>,
}

impl Threads {
    /// `base` threads always, up to `idle` when this worker's utterance is
    /// the only one and the machine has the cores for them.
    pub(crate) fn new(base: usize, idle: usize, cores: usize, busy: Arc<AtomicUsize>) -> Self {
        Self {
            base: base.max(1),
            idle,
            cores,
            busy,
        }
    }

    /// Always `n`.
    #[cfg(test)]
    pub(crate) fn fixed(n: usize) -> Self {
        Self::new(n, n, n, Arc::new(AtomicUsize::new(0)))
    }

    /// Threads for the next whisper call.
    pub(crate) fn now(&self) -> usize {
        if self.idle <= self.base || self.busy.load(Ordering::Relaxed) > 1 {
            return self.base;
        }
        match runnable_threads() {
            Some(running) => self.for_runnable(running),
            None => self.base,
        }
    }

    /// Given the machine's runnable threads (the calling one included).
    fn for_runnable(&self, running: usize) -> usize {
        let others = running.saturating_sub(1);
        let free = self.cores.saturating_sub(others);
        free.min(self.idle).max(self.base)
    }

    /// Marks this worker busy until the guard is dropped.
    pub(crate) fn working(&self) -> Working {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Working(Arc::clone(&self.busy))
    }
}

/// A worker's utterance in progress (see [`Threads::working`]).
pub(crate) struct Working(Arc<AtomicUsize>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runnable threads on the machine now (`/proc/loadavg`'s fourth field,
/// "running/total"), or None where there is no such file.
fn runnable_threads() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    parse_runnable(&text)
}

fn parse_runnable(loadavg: &str) -> Option<usize> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split_once('/')?
        .0
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_runnable_count_is_read() {
        assert_eq!(parse_runnable("0.52 0.58 0.59 3/512 12345\n"), Some(3));
        assert_eq!(parse_runnable("garbage"), None);
    }

    #[test]
    fn an_utterance_alone_on_an_idle_machine_takes_the_idle_cores() {
        let t = Threads::new(1, 4, 2, Arc::new(AtomicUsize::new(0)));
        let _w = t.working();
        // Only the worker itself is runnable: both cores are free.
        assert_eq!(t.for_runnable(1), 2);
        // Something else runs: the base count.
        assert_eq!(t.for_runnable(2), 1);
        assert_eq!(t.for_runnable(9), 1);
    }

    #[test]
    fn a_second_utterance_in_progress_keeps_both_at_their_base() {
        let busy = Arc::new(AtomicUsize::new(0));
        let a = Threads::new(1, 2, 2, Arc::clone(&busy));
        let b = Threads::new(1, 2, 2, busy);
        let _wa = a.working();
        let wb = b.working();
        assert_eq!(a.now(), 1);
        drop(wb);
        assert!(a.now() >= 1);
    }

    #[test]
    fn idle_threads_at_or_below_the_base_change_nothing() {
        let t = Threads::new(2, 1, 8, Arc::new(AtomicUsize::new(0)));
        let _w = t.working();
        assert_eq!(t.now(), 2);
        assert_eq!(Threads::fixed(3).now(), 3);
    }
}
