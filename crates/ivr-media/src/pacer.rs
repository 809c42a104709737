//! Drift-free packet pacing on absolute deadlines.
//!
//! Deadline `n` is `start + n * ptime`, computed from the start every time, so
//! rounding never accumulates: after ten minutes packet 30 000 is due exactly
//! 600 s after the first.
//!
//! After a stall (the engine task did not run for longer than one packet
//! interval) the pacer does NOT burst the missed packets. It **skips**: it sends
//! one packet for the current slot and stays on the original grid; the slots
//! missed are counted in [`Tick::skipped`] and the RTP timestamp advances over
//! them (the far end sees a timestamp gap, like after silence suppression, and
//! its playout stays in step with real time). The audio itself is not dropped:
//! the prompt continues where it was, a stall delays it.

use std::time::{Duration, Instant};

/// One packet is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Slot number since start (RTP timestamp = base + slot * units per packet).
    pub slot: u64,
    /// Slots skipped just before this one because of a stall.
    pub skipped: u64,
    /// The deadline this tick was for.
    pub deadline: Instant,
}

/// Absolute-deadline pacer.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    ptime: Duration,
    next: u64,
    skipped_total: u64,
}

impl Pacer {
    /// First packet due at `start`, then every `ptime`.
    pub fn new(start: Instant, ptime: Duration) -> Self {
        Pacer {
            start,
            ptime: ptime.max(Duration::from_millis(1)),
            next: 0,
            skipped_total: 0,
        }
    }

    /// Deadline of slot `n`.
    pub fn deadline(&self, n: u64) -> Instant {
        // u32 multiply would overflow after ~2.7 years of 20 ms slots; use nanos in u128.
        let nanos = self.ptime.as_nanos() * u128::from(n);
        self.start + Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }

    /// When the next packet is due.
    pub fn next_deadline(&self) -> Instant {
        self.deadline(self.next)
    }

    /// Slots skipped over the whole call.
    pub fn skipped_total(&self) -> u64 {
        self.skipped_total
    }

    /// Returns the due tick if `now` has reached the next deadline (at most one per call).
    pub fn poll(&mut self, now: Instant) -> Option<Tick> {
        let deadline = self.next_deadline();
        if now < deadline {
            return None;
        }
        // The slot that `now` falls in; anything between `next` and it was missed.
        let current = (now.duration_since(self.start).as_nanos() / self.ptime.as_nanos()) as u64;
        let skipped = current.saturating_sub(self.next);
        self.skipped_total += skipped;
        let slot = self.next + skipped;
        self.next = slot + 1;
        Some(Tick {
            slot,
            skipped,
            deadline: self.deadline(slot),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_simulated_minutes_have_zero_drift() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_millis(20));
        let mut now = t0;
        let mut sent = 0u64;
        // The engine sleeps until the returned deadline, waking up to 3 ms late.
        while now < t0 + Duration::from_secs(600) {
            if let Some(t) = p.poll(now) {
                assert_eq!(t.skipped, 0);
                assert_eq!(t.deadline, t0 + Duration::from_millis(20 * t.slot));
                sent += 1;
            }
            now = p.next_deadline() + Duration::from_micros((sent * 7919) % 3000);
        }
        assert_eq!(sent, 30_000);
        assert_eq!(p.next_deadline(), t0 + Duration::from_secs(600));
    }

    #[test]
    fn a_500_ms_stall_sends_one_packet_then_resumes_on_grid() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_millis(20));
        for i in 0..10 {
            assert_eq!(
                p.poll(t0 + Duration::from_millis(20 * i)).map(|t| t.slot),
                Some(i)
            );
        }
        // Stall: the next poll comes 500 ms after slot 9's deadline.
        let late = t0 + Duration::from_millis(180 + 500);
        let t = p.poll(late).unwrap();
        assert_eq!((t.slot, t.skipped), (34, 24));
        // No burst: nothing else is due at the same instant.
        assert_eq!(p.poll(late), None);
        assert_eq!(p.next_deadline(), t0 + Duration::from_millis(700));
    }
}
