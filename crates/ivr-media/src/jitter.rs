//! Adaptive jitter buffer (receive side).
//!
//! Packets are placed by extended sequence number (RFC 3550 A.1) into a ring of
//! preallocated slots; playout pulls one frame per packet interval.
//!
//! - Reordering: slots are indexed by sequence, so order of arrival is irrelevant.
//! - Duplicates: a slot already holding the same sequence is kept; the copy is counted and dropped.
//! - Late packets (sequence already played or skipped): dropped and counted.
//! - Loss: a missing frame at its playout time is reported as [`Playout::Lost`];
//!   the session conceals it (repeat the last frame with fading, then silence).
//! - Adaptive target depth: `min_frames + ceil(jitter_factor * jitter / ptime)`,
//!   with `jitter` the RFC 3550 sec. 6.4.1 interarrival jitter of the source.
//! - Clock skew and changing jitter: when the buffer runs empty, playout holds
//!   for a frame (a concealment frame is inserted, the delay grows by one
//!   frame) rather than skipping a packet that is only late; when the smoothed
//!   depth stays more than two frames above target, one frame is dropped.
//! - Bounded: `capacity` slots (default 32 = 640 ms at 20 ms). A packet further
//!   ahead than that means the stream jumped: the buffer restarts from it.
//! - Sized by need: a slot is as wide as the longest payload received so far
//!   (160 bytes for 20 ms of G.711), not the largest any codec could send,
//!   so a G.711 call's buffer holds 5 KB, not 16 KB; nothing is allocated
//!   before the first packet.
//!   After `max_underrun` consecutive empty pulls (a silent far end, e.g. hold),
//!   the buffer re-primes on the next packet.

use std::time::Duration;

use crate::codec::MAX_PAYLOAD;

/// Tuning of the jitter buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterConfig {
    /// Packet interval.
    pub ptime: Duration,
    /// Smallest target depth in frames.
    pub min_frames: u32,
    /// Largest target depth in frames.
    pub max_frames: u32,
    /// Slots in the ring (hard bound on buffered packets).
    pub capacity: usize,
    /// Target = min_frames + jitter_factor * jitter / ptime.
    pub jitter_factor: f64,
    /// Consecutive empty pulls after which the buffer re-primes.
    pub max_underrun: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            ptime: Duration::from_millis(20),
            min_frames: 3,
            max_frames: 12,
            capacity: 32,
            jitter_factor: 3.0,
            max_underrun: 10,
        }
    }
}

/// What the buffer gives for one packet interval.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// The frame due now, with its extended sequence number.
    Frame(u64, &'a [u8]),
    /// The frame due now is missing (lost or not yet arrived) or a frame was
    /// inserted for clock skew: conceal.
    Lost,
    /// Nothing is playing (not primed yet, or the far end went silent): play silence.
    Idle,
}

/// Counters of what happened to packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Frames played from packets.
    pub played: u64,
    /// Intervals concealed because the packet was missing.
    pub lost: u64,
    /// Packets dropped because they arrived after their playout time.
    pub late: u64,
    /// Duplicate packets dropped.
    pub duplicates: u64,
    /// Frames dropped to shrink the buffer (clock skew / target lowered).
    pub skew_dropped: u64,
    /// Frames inserted to grow the buffer (clock skew / target raised).
    pub skew_inserted: u64,
    /// Restarts because a packet was beyond the buffer's capacity.
    pub overflows: u64,
}

/// The adaptive jitter buffer.
pub struct JitterBuffer {
    cfg: JitterConfig,
    /// Extended sequence number held by each slot.
    seqs: Vec<Option<u64>>,
    /// Payload length in each slot.
    lens: Vec<u16>,
    /// The slots' payloads, `width` bytes each (empty before the first packet).
    data: Vec<u8>,
    /// Bytes per slot: the longest payload so far.
    width: usize,
    next_play: Option<u64>,
    max_seq: Option<u64>,
    primed: bool,
    underruns: u32,
    target: u32,
    depth_avg: f64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer of `cfg.capacity` slots; their payload space is allocated
    /// as packets need it.
    pub fn new(cfg: JitterConfig) -> Self {
        let capacity = cfg.capacity.max(4);
        JitterBuffer {
            cfg: JitterConfig { capacity, ..cfg },
            seqs: vec![None; capacity],
            lens: vec![0; capacity],
            data: Vec::new(),
            width: 0,
            next_play: None,
            max_seq: None,
            primed: false,
            underruns: 0,
            target: cfg.min_frames.max(1),
            depth_avg: 0.0,
            stats: JitterStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Current target depth in frames.
    pub fn target_frames(&self) -> u32 {
        self.target
    }

    /// Frames buffered from the next one due up to the newest received.
    pub fn depth(&self) -> u64 {
        match (self.next_play, self.max_seq) {
            (Some(n), Some(m)) if m >= n => m - n + 1,
            _ => 0,
        }
    }

    /// Bytes held for payloads (capacity times the widest payload so far).
    pub fn payload_bytes(&self) -> usize {
        self.data.len()
    }

    /// Forgets everything (new source).
    pub fn reset(&mut self) {
        self.seqs.fill(None);
        self.next_play = None;
        self.max_seq = None;
        self.primed = false;
        self.underruns = 0;
        self.depth_avg = 0.0;
    }

    /// Updates the target from the measured interarrival jitter.
    pub fn set_jitter(&mut self, jitter: Duration) {
        let p = self.cfg.ptime.as_secs_f64().max(1e-3);
        let extra = (self.cfg.jitter_factor * jitter.as_secs_f64() / p).ceil() as u32;
        self.target = (self.cfg.min_frames + extra).clamp(
            self.cfg.min_frames.max(1),
            self.cfg.max_frames.min(self.cfg.capacity as u32 - 2),
        );
    }

    /// Stores a packet's payload under its extended sequence number.
    pub fn insert(&mut self, seq: u64, payload: &[u8]) {
        let cap = self.seqs.len() as u64;
        if let Some(n) = self.next_play {
            if seq < n && self.primed {
                self.stats.late += 1;
                return;
            }
            if seq >= n + cap || (!self.primed && seq + cap <= self.max_seq.unwrap_or(n)) {
                // The stream jumped further than we can hold: restart from this packet.
                self.stats.overflows += 1;
                self.reset();
            }
        }
        let next = *self.next_play.get_or_insert(seq);
        if !self.primed && seq < next {
            // Before playout starts, an earlier packet moves the start back.
            self.next_play = Some(seq);
        }
        let idx = (seq % cap) as usize;
        if self.seqs[idx] == Some(seq) {
            self.stats.duplicates += 1;
            return;
        }
        let n = payload.len().min(MAX_PAYLOAD);
        if n > self.width {
            self.widen(n);
        }
        self.seqs[idx] = Some(seq);
        self.lens[idx] = n as u16;
        let at = idx * self.width;
        self.data[at..at + n].copy_from_slice(&payload[..n]);
        self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
    }

    /// Makes every slot `width` bytes wide, keeping what they hold.
    fn widen(&mut self, width: usize) {
        let mut data = vec![0u8; width * self.seqs.len()];
        if self.width > 0 {
            for (i, old) in self.data.chunks_exact(self.width).enumerate() {
                data[i * width..i * width + self.width].copy_from_slice(old);
            }
        }
        self.data = data;
        self.width = width;
    }

    /// The frame for the current packet interval (call once per ptime).
    pub fn pop(&mut self) -> Playout<'_> {
        let Some(n) = self.next_play else {
            return Playout::Idle;
        };
        let depth = self.depth();
        if !self.primed {
            if depth >= u64::from(self.target) {
                self.primed = true;
                self.depth_avg = depth as f64;
            } else {
                return Playout::Idle;
            }
        }
        if depth == 0 {
            self.underruns += 1;
            if self.underruns >= self.cfg.max_underrun {
                // The far end stopped sending: re-prime on the next packet.
                self.primed = false;
                self.next_play = None;
                self.max_seq = None;
                return Playout::Idle;
            }
            // Nothing buffered: the next packet is late, not necessarily lost. Hold
            // playout (insert one concealment frame) instead of skipping it, so
            // the delay grows to what the network needs; the drop rule below
            // takes it back when it is more than needed.
            self.stats.skew_inserted += 1;
            return Playout::Lost;
        }
        self.underruns = 0;
        self.depth_avg += (depth as f64 - self.depth_avg) * 0.01;
        let target = f64::from(self.target);
        let cap = self.seqs.len() as u64;
        let mut n = n;
        if self.depth_avg > target + 2.0 && depth > u64::from(self.target) + 1 {
            // Persistently more buffered than needed (sender clock faster, or the
            // jitter went down): drop one frame.
            let idx = (n % cap) as usize;
            if self.seqs[idx] == Some(n) {
                self.seqs[idx] = None;
            }
            n += 1;
            self.stats.skew_dropped += 1;
            self.depth_avg -= 1.0;
        }
        self.next_play = Some(n + 1);
        let idx = (n % cap) as usize;
        if self.seqs[idx] == Some(n) {
            self.seqs[idx] = None;
            self.stats.played += 1;
            let at = idx * self.width;
            Playout::Frame(n, &self.data[at..at + usize::from(self.lens[idx])])
        } else {
            self.stats.lost += 1;
            Playout::Lost
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_drops_duplicates_and_late_packets() {
        let mut jb = JitterBuffer::new(JitterConfig {
            min_frames: 3,
            ..Default::default()
        });
        jb.insert(11, &[11]);
        jb.insert(10, &[10]);
        assert_eq!(jb.pop(), Playout::Idle, "primes at 3 frames");
        jb.insert(12, &[12]);
        jb.insert(12, &[12]);
        assert_eq!(jb.pop(), Playout::Frame(10, &[10][..]));
        assert_eq!(jb.pop(), Playout::Frame(11, &[11][..]));
        jb.insert(10, &[10]);
        assert_eq!(jb.pop(), Playout::Frame(12, &[12][..]));
        let s = jb.stats();
        assert_eq!((s.duplicates, s.late, s.played), (1, 1, 3));
    }

    #[test]
    fn missing_frame_is_lost_and_long_silence_reprimes() {
        let mut jb = JitterBuffer::new(JitterConfig {
            min_frames: 1,
            max_underrun: 3,
            ..Default::default()
        });
        jb.insert(0, &[0]);
        jb.insert(2, &[2]);
        assert!(matches!(jb.pop(), Playout::Frame(0, _)));
        assert_eq!(jb.pop(), Playout::Lost);
        assert!(matches!(jb.pop(), Playout::Frame(2, _)));
        assert_eq!(jb.pop(), Playout::Lost);
        assert_eq!(jb.pop(), Playout::Lost);
        assert_eq!(jb.pop(), Playout::Idle);
        // The far end comes back much later: playout restarts from its packet.
        jb.insert(500, &[1]);
        assert!(matches!(jb.pop(), Playout::Frame(500, _)));
    }

    #[test]
    fn packet_far_beyond_capacity_restarts_the_buffer() {
        let mut jb = JitterBuffer::new(JitterConfig {
            min_frames: 1,
            ..Default::default()
        });
        jb.insert(0, &[0]);
        jb.insert(1000, &[9]);
        assert_eq!(jb.stats().overflows, 1);
        assert!(matches!(jb.pop(), Playout::Frame(1000, _)));
    }

    #[test]
    fn slots_are_as_wide_as_the_longest_payload_and_keep_what_they_hold() {
        let mut jb = JitterBuffer::new(JitterConfig {
            min_frames: 2,
            ..Default::default()
        });
        assert_eq!(jb.payload_bytes(), 0, "nothing before the first packet");
        jb.insert(0, &[7; 160]);
        assert_eq!(jb.payload_bytes(), 32 * 160, "a G.711 call's 20 ms frames");
        // A longer packet (40 ms) widens every slot; the one held survives.
        jb.insert(1, &[9; 320]);
        assert_eq!(jb.payload_bytes(), 32 * 320);
        assert_eq!(jb.pop(), Playout::Frame(0, &[7; 160][..]));
        assert_eq!(jb.pop(), Playout::Frame(1, &[9; 320][..]));
    }

    #[test]
    fn target_grows_with_jitter_within_bounds() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.set_jitter(Duration::ZERO);
        assert_eq!(jb.target_frames(), 3);
        jb.set_jitter(Duration::from_millis(20));
        assert_eq!(jb.target_frames(), 6);
        jb.set_jitter(Duration::from_secs(5));
        assert_eq!(jb.target_frames(), 12);
    }
}
