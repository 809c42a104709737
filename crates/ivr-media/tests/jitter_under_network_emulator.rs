//! The jitter buffer under a seeded network emulator on simulated time:
//! 5% loss, 60 ms of uniformly distributed extra delay (which reorders
//! packets sent 20 ms apart), 1% duplicates and a sender clock 0.3% fast.
//! Playout must be in order, the loss seen near the emulated loss, and the
//! buffer depth bounded.

use std::time::Duration;

use ivr_media::jitter::{JitterBuffer, JitterConfig, Playout};
use ivr_media::rtp::SourceStats;

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Outcome {
    played_in_order: bool,
    loss_rate: f64,
    late_rate: f64,
    max_depth: u64,
    skew_dropped: u64,
}

fn run(seed: u64, sender_speedup: f64) -> Outcome {
    let mut rng = Rng(seed);
    let n_packets = 15_000u64; // 5 minutes of 20 ms packets
                               // (arrival time in us, seq); the sender's clock runs `sender_speedup` fast.
    let mut arrivals: Vec<(u64, u64)> = Vec::new();
    for seq in 0..n_packets {
        if rng.next_f64() < 0.05 {
            continue; // lost
        }
        let sent = (seq as f64 * 20_000.0 / sender_speedup) as u64;
        let delay = 30_000 + (rng.next_f64() * 60_000.0) as u64;
        arrivals.push((sent + delay, seq));
        if rng.next_f64() < 0.01 {
            arrivals.push((sent + delay + (rng.next_f64() * 40_000.0) as u64, seq));
        }
    }
    arrivals.sort();
    let epoch = std::time::Instant::now();
    let mut stats = SourceStats::new(0, 8000, epoch);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut last_played: Option<u64> = None;
    let mut in_order = true;
    let mut max_depth = 0;
    let mut ai = 0;
    let end_us = (n_packets as f64 * 20_000.0 / sender_speedup) as u64;
    let mut tick = 0u64;
    while tick * 20_000 < end_us {
        let now = tick * 20_000;
        while ai < arrivals.len() && arrivals[ai].0 <= now {
            let (at, seq) = arrivals[ai];
            let ts = (seq * 160) as u32;
            stats.update(seq as u16, ts, epoch + Duration::from_micros(at));
            jb.set_jitter(stats.jitter());
            jb.insert(seq, &seq.to_be_bytes());
            max_depth = max_depth.max(jb.depth());
            ai += 1;
        }
        if let Playout::Frame(seq, payload) = jb.pop() {
            assert_eq!(
                payload,
                seq.to_be_bytes(),
                "payload belongs to its sequence number"
            );
            if last_played.is_some_and(|l| seq <= l) {
                in_order = false;
            }
            last_played = Some(seq);
        }
        tick += 1;
    }
    let s = jb.stats();
    let positions = s.played + s.lost;
    Outcome {
        played_in_order: in_order,
        loss_rate: s.lost as f64 / positions as f64,
        late_rate: s.late as f64 / n_packets as f64,
        max_depth,
        skew_dropped: s.skew_dropped,
    }
}

#[test]
fn five_percent_loss_sixty_ms_jitter_plays_in_order_with_bounded_depth() {
    for seed in [1, 7, 42] {
        let o = run(seed, 1.0);
        eprintln!(
            "seed {seed}: loss seen {:.4}, late {:.4}, max depth {}",
            o.loss_rate, o.late_rate, o.max_depth
        );
        assert!(o.played_in_order, "seed {seed}: out of order playout");
        assert!(
            (0.04..0.09).contains(&o.loss_rate),
            "seed {seed}: loss seen {:.3} vs 0.05 emulated",
            o.loss_rate
        );
        assert!(
            o.late_rate < 0.03,
            "seed {seed}: {:.3} of packets arrived too late",
            o.late_rate
        );
        assert!(o.max_depth <= 32, "seed {seed}: depth {}", o.max_depth);
    }
}

#[test]
fn fast_sender_clock_is_absorbed_by_dropping_frames_not_by_growing() {
    // 0.3% fast sender: 45 extra frames over 5 minutes must be dropped, not buffered.
    let o = run(3, 1.003);
    eprintln!(
        "skew: loss seen {:.4}, late {:.4}, max depth {}, skew drops {}",
        o.loss_rate, o.late_rate, o.max_depth, o.skew_dropped
    );
    assert!(o.played_in_order);
    assert!(o.max_depth <= 32, "depth {}", o.max_depth);
    assert!(
        o.skew_dropped >= 30,
        "dropped {} frames for skew",
        o.skew_dropped
    );
    assert!(o.loss_rate < 0.1, "loss {:.3}", o.loss_rate);
}
