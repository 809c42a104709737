//! Counters for `/metrics` in the Prometheus text format (version 0.0.4):
//! active calls, calls by outcome per municipality, STT queue depth, a
//! histogram of turn latency (end of the caller's utterance to the first
//! packet of reply audio), and what became of eager (speculative) recognitions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the turn-latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0];

/// Upper bounds of the RTP pacing-lateness buckets (send time after the
/// pacer's deadline), in seconds: 0.25 ms steps up to 5 ms, so a p99 under
/// the 5 ms target can be read from them, then coarser.
pub const LATENESS_BUCKETS: [f64; 27] = [
    0.00025, 0.0005, 0.00075, 0.001, 0.00125, 0.0015, 0.00175, 0.002, 0.00225, 0.0025, 0.00275,
    0.003, 0.00325, 0.0035, 0.00375, 0.004, 0.00425, 0.0045, 0.00475, 0.005, 0.0075, 0.01, 0.015,
    0.02, 0.05, 0.1, 0.5,
];
/// Upper bounds of the RTP packet-gap buckets (between a call's packets;
/// 20 ms is the packet interval), in seconds: 0.5 ms steps from 18 to 25 ms
/// (the 22 ms target among them), then coarser.
pub const GAP_BUCKETS: [f64; 24] = [
    0.018, 0.0185, 0.019, 0.0195, 0.02, 0.0205, 0.021, 0.0215, 0.022, 0.0225, 0.023, 0.0235, 0.024,
    0.0245, 0.025, 0.0275, 0.03, 0.035, 0.04, 0.05, 0.06, 0.1, 0.25, 0.5,
];
/// Upper bounds of the greeting-delay buckets (answer to the first packet
/// of prompt audio), in seconds.
pub const GREETING_BUCKETS: [f64; 10] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0];

/// A Prometheus histogram over fixed bounds (seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds` (ascending, seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// One observation (one bucket increment: the exposition sums them).
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            d.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, s: &mut String, name: &str, help: &str) {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(s, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "{name}_sum {}",
            self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(s, "{name}_count {count}");
    }
}

/// The engine's counters.
#[derive(Debug)]
pub struct Metrics {
    active: AtomicU64,
    rejected: AtomicU64,
    outcomes: Mutex<BTreeMap<(String, String), u64>>,
    turn_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    turn_count: AtomicU64,
    turn_sum_us: AtomicU64,
    eager: [AtomicU64; EagerOutcome::ALL.len()],
    foreign_media: AtomicU64,
    srtp_refused: AtomicU64,
    /// Caller turns by input, in the order of [`TURN_INPUTS`].
    caller_turns: [AtomicU64; TURN_INPUTS.len()],
    /// RTP packets: how late against the pacer's deadline, and the gap
    /// between a call's packets.
    rtp_lateness: Histogram,
    rtp_gap: Histogram,
    /// Answer to the first packet of prompt audio.
    greeting: Histogram,
    /// Retention: rows purged per data kind, passes run, and the age of the
    /// oldest personal row per kind after the last pass (seconds; -1: none).
    purged: Mutex<BTreeMap<&'static str, u64>>,
    retention_runs: AtomicU64,
    oldest: Mutex<BTreeMap<&'static str, i64>>,
}

/// The inputs a caller turn is counted by (`ivr_caller_turns_total{input}`):
/// served by speech, by keys, no input, and speech the recogniser could not
/// take (the call moved to keys).
pub const TURN_INPUTS: [&str; 4] = ["speech", "dtmf", "no_input", "stt_busy"];

/// What became of a tentative end of utterance (`[media] eager_stt_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EagerOutcome {
    /// Recognised speculatively and the transcript answered the turn.
    Used,
    /// Recognised speculatively, then the caller spoke on: thrown away.
    Discarded,
    /// Not started: no STT worker was idle (confirmed utterances come first).
    Skipped,
}

impl EagerOutcome {
    /// Every outcome, in the order of the counters.
    pub const ALL: [EagerOutcome; 3] = [Self::Used, Self::Discarded, Self::Skipped];

    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Used => "used",
            Self::Discarded => "discarded",
            Self::Skipped => "skipped",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            active: AtomicU64::default(),
            rejected: AtomicU64::default(),
            outcomes: Mutex::default(),
            turn_buckets: Default::default(),
            turn_count: AtomicU64::default(),
            turn_sum_us: AtomicU64::default(),
            eager: Default::default(),
            foreign_media: AtomicU64::default(),
            srtp_refused: AtomicU64::default(),
            caller_turns: Default::default(),
            rtp_lateness: Histogram::new(&LATENESS_BUCKETS),
            rtp_gap: Histogram::new(&GAP_BUCKETS),
            greeting: Histogram::new(&GREETING_BUCKETS),
            purged: Mutex::default(),
            retention_runs: AtomicU64::default(),
            oldest: Mutex::default(),
        }
    }
}

impl Metrics {
    /// An RTP packet left `late` after its pacer deadline, `gap` after the
    /// call's previous one (None: the call's first).
    pub fn rtp_sent(&self, late: Option<Duration>, gap: Option<Duration>) {
        if let Some(l) = late {
            self.rtp_lateness.observe(l);
        }
        if let Some(g) = gap {
            self.rtp_gap.observe(g);
        }
    }

    /// A call's first prompt audio left `after` its answer.
    pub fn greeting(&self, after: Duration) {
        self.greeting.observe(after);
    }

    /// A call started.
    pub fn call_started(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// A call ended with `outcome` in `municipality`.
    pub fn call_ended(&self, municipality: &str, outcome: &str) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        let mut m = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((municipality.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    /// A call was refused (no route, busy, draining, bad SDP).
    pub fn call_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls in progress.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// One turn's latency.
    pub fn observe_turn(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if s <= *b {
                self.turn_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.turn_count.fetch_add(1, Ordering::Relaxed);
        self.turn_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// A tentative end of utterance came to `outcome`.
    pub fn eager(&self, outcome: EagerOutcome) {
        self.eager[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A caller turn reached the flow by `input` (one of [`TURN_INPUTS`];
    /// others are not counted).
    pub fn caller_turn(&self, input: &str) {
        if let Some(i) = TURN_INPUTS.iter().position(|t| *t == input) {
            self.caller_turns[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many caller turns came by `input`.
    pub fn caller_turns(&self, input: &str) -> u64 {
        TURN_INPUTS
            .iter()
            .position(|t| *t == input)
            .map_or(0, |i| self.caller_turns[i].load(Ordering::Relaxed))
    }

    /// How many tentative ends came to `outcome`.
    pub fn eager_count(&self, outcome: EagerOutcome) -> u64 {
        self.eager[outcome as usize].load(Ordering::Relaxed)
    }

    /// An RTP or RTCP datagram from an address the call's SDP did not
    /// negotiate was dropped.
    pub fn foreign_media_dropped(&self) {
        self.foreign_media.fetch_add(1, Ordering::Relaxed);
    }

    /// An SRTP/SRTCP packet failed authentication or the replay check (or
    /// came in clear on an SRTP call) and was dropped.
    pub fn srtp_refused(&self) {
        self.srtp_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A retention pass deleted (or blanked) `n` rows of `kind`.
    pub fn purged(&self, kind: &'static str, n: u64) {
        if let Ok(mut m) = self.purged.lock() {
            *m.entry(kind).or_insert(0) += n;
        }
    }

    /// A retention pass finished; `oldest` gives, per kind, the age in
    /// seconds of the oldest personal row left (`None`: no row).
    pub fn retention_pass(&self, oldest: &[(&'static str, Option<i64>)]) {
        self.retention_runs.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.oldest.lock() {
            for (k, age) in oldest {
                m.insert(k, age.unwrap_or(-1));
            }
        }
    }

    /// The Prometheus text exposition, with the values other parts of the
    /// engine own sampled by the caller.
    pub fn render(&self, sampled: Sampled) -> String {
        let Sampled {
            stt_queue_depth,
            sip_dropped_datagrams,
            sip_dropped_outside,
            sip_guard,
        } = sampled;
        let mut s = String::new();
        let _ = writeln!(s, "# HELP ivr_active_calls Calls in progress.");
        let _ = writeln!(s, "# TYPE ivr_active_calls gauge");
        let _ = writeln!(s, "ivr_active_calls {}", self.active());
        let _ = writeln!(
            s,
            "# HELP ivr_calls_rejected_total Calls refused before answer."
        );
        let _ = writeln!(s, "# TYPE ivr_calls_rejected_total counter");
        let _ = writeln!(
            s,
            "ivr_calls_rejected_total {}",
            self.rejected.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP ivr_calls_total Finished calls by municipality and outcome."
        );
        let _ = writeln!(s, "# TYPE ivr_calls_total counter");
        for ((m, o), n) in self
            .outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "ivr_calls_total{{municipality=\"{}\",outcome=\"{}\"}} {n}",
                esc(m),
                esc(o)
            );
        }
        let _ = writeln!(
            s,
            "# HELP ivr_stt_queue_depth Utterances waiting for a speech-to-text worker."
        );
        let _ = writeln!(s, "# TYPE ivr_stt_queue_depth gauge");
        let _ = writeln!(s, "ivr_stt_queue_depth {stt_queue_depth}");
        let _ = writeln!(
            s,
            "# HELP ivr_sip_dropped_datagrams_total SIP datagrams dropped because the SIP driver's input queue was full (the sender retransmits)."
        );
        let _ = writeln!(s, "# TYPE ivr_sip_dropped_datagrams_total counter");
        let _ = writeln!(s, "ivr_sip_dropped_datagrams_total {sip_dropped_datagrams}");
        let _ = writeln!(
            s,
            "# HELP ivr_rtp_dropped_foreign_total RTP and RTCP datagrams dropped because they came from an address the call's SDP did not negotiate."
        );
        let _ = writeln!(s, "# TYPE ivr_rtp_dropped_foreign_total counter");
        let _ = writeln!(
            s,
            "ivr_rtp_dropped_foreign_total {}",
            self.foreign_media.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP ivr_srtp_refused_total SRTP and SRTCP packets dropped: authentication or replay check failed, or plain RTP on an SRTP call."
        );
        let _ = writeln!(s, "# TYPE ivr_srtp_refused_total counter");
        let _ = writeln!(
            s,
            "ivr_srtp_refused_total {}",
            self.srtp_refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP ivr_sip_dropped_outside_total SIP datagrams from outside the trunks dropped because their own queue was full."
        );
        let _ = writeln!(s, "# TYPE ivr_sip_dropped_outside_total counter");
        let _ = writeln!(s, "ivr_sip_dropped_outside_total {sip_dropped_outside}");
        let _ = writeln!(
            s,
            "# HELP ivr_sip_guard_total Requests outside dialogs the SIP guard refused: 403 to a source outside the trunks, silence towards one, dropped over a rate limit, challenged (401), 503 at a trunk's call limit."
        );
        let _ = writeln!(s, "# TYPE ivr_sip_guard_total counter");
        for (d, n) in [
            ("forbidden", sip_guard.forbidden),
            ("ignored", sip_guard.ignored),
            ("rate_limited", sip_guard.rate_limited),
            ("challenged", sip_guard.challenged),
            ("trunk_busy", sip_guard.trunk_busy),
        ] {
            let _ = writeln!(s, "ivr_sip_guard_total{{decision=\"{d}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP ivr_retention_purged_total Rows of personal data deleted (or transcripts blanked) by the retention task, per kind."
        );
        let _ = writeln!(s, "# TYPE ivr_retention_purged_total counter");
        if let Ok(m) = self.purged.lock() {
            for (k, n) in m.iter() {
                let _ = writeln!(s, "ivr_retention_purged_total{{kind=\"{k}\"}} {n}");
            }
        }
        let _ = writeln!(s, "# HELP ivr_retention_runs_total Retention passes run.");
        let _ = writeln!(s, "# TYPE ivr_retention_runs_total counter");
        let _ = writeln!(
            s,
            "ivr_retention_runs_total {}",
            self.retention_runs.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP ivr_retention_oldest_age_seconds Age of the oldest row of personal data left after the last retention pass, per kind (-1: none)."
        );
        let _ = writeln!(s, "# TYPE ivr_retention_oldest_age_seconds gauge");
        if let Ok(m) = self.oldest.lock() {
            for (k, a) in m.iter() {
                let _ = writeln!(s, "ivr_retention_oldest_age_seconds{{kind=\"{k}\"}} {a}");
            }
        }
        let _ = writeln!(
            s,
            "# HELP ivr_turn_latency_seconds End of caller speech to first reply audio packet."
        );
        let _ = writeln!(s, "# TYPE ivr_turn_latency_seconds histogram");
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "ivr_turn_latency_seconds_bucket{{le=\"{b}\"}} {}",
                self.turn_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.turn_count.load(Ordering::Relaxed);
        let _ = writeln!(s, "ivr_turn_latency_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "ivr_turn_latency_seconds_sum {}",
            self.turn_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "ivr_turn_latency_seconds_count {count}");
        self.rtp_lateness.render(
            &mut s,
            "ivr_rtp_pacing_lateness_seconds",
            "RTP packets sent: time after the pacer's deadline (scheduling delay under load).",
        );
        self.rtp_gap.render(
            &mut s,
            "ivr_rtp_packet_gap_seconds",
            "RTP packets sent: time since the call's previous packet (20 ms when on time).",
        );
        self.greeting.render(
            &mut s,
            "ivr_greeting_delay_seconds",
            "Calls: answer (200 OK) to the first packet of prompt audio.",
        );
        let _ = writeln!(
            s,
            "# HELP ivr_caller_turns_total Caller turns by input: speech, keys (dtmf), no input, or speech the recogniser could not take (stt_busy: the call moved to keys)."
        );
        let _ = writeln!(s, "# TYPE ivr_caller_turns_total counter");
        for input in TURN_INPUTS {
            let _ = writeln!(
                s,
                "ivr_caller_turns_total{{input=\"{input}\"}} {}",
                self.caller_turns(input)
            );
        }
        let _ = writeln!(
            s,
            "# HELP ivr_eager_stt_total Tentative ends of utterance: recognised early and used, thrown away when the caller spoke on, or skipped for want of an idle STT worker."
        );
        let _ = writeln!(s, "# TYPE ivr_eager_stt_total counter");
        for o in EagerOutcome::ALL {
            let _ = writeln!(
                s,
                "ivr_eager_stt_total{{outcome=\"{}\"}} {}",
                o.as_str(),
                self.eager_count(o)
            );
        }
        s
    }
}

/// Values owned elsewhere (the STT pool, the SIP driver), read when
/// `/metrics` is served.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampled {
    /// Utterances waiting for a speech-to-text worker.
    pub stt_queue_depth: usize,
    /// SIP datagrams dropped at the driver's full input queue, since start.
    pub sip_dropped_datagrams: u64,
    /// Datagrams from outside the trunks dropped at their full queue.
    pub sip_dropped_outside: u64,
    /// The SIP guard's decisions.
    pub sip_guard: ivr_sip::guard::GuardStats,
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_show_active_calls_outcomes_and_cumulative_latency_buckets() {
        let m = Metrics::default();
        m.call_started();
        m.call_started();
        m.call_ended("nordby", "transferred");
        m.observe_turn(Duration::from_millis(400));
        m.eager(EagerOutcome::Used);
        m.eager(EagerOutcome::Used);
        m.eager(EagerOutcome::Discarded);
        m.foreign_media_dropped();
        m.foreign_media_dropped();
        m.caller_turn("speech");
        m.caller_turn("stt_busy");
        m.caller_turn("dtmf");
        m.caller_turn("dtmf");
        m.rtp_sent(Some(Duration::from_micros(300)), None);
        m.rtp_sent(
            Some(Duration::from_millis(4)),
            Some(Duration::from_millis(20)),
        );
        m.greeting(Duration::from_millis(400));
        let t = m.render(Sampled {
            stt_queue_depth: 3,
            sip_dropped_datagrams: 7,
            ..Default::default()
        });
        assert!(
            t.contains("ivr_eager_stt_total{outcome=\"used\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("ivr_eager_stt_total{outcome=\"discarded\"} 1\n"));
        assert!(
            t.contains("ivr_caller_turns_total{input=\"dtmf\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("ivr_caller_turns_total{input=\"stt_busy\"} 1\n"));
        assert!(t.contains("ivr_caller_turns_total{input=\"no_input\"} 0\n"));
        assert!(
            t.contains("ivr_rtp_pacing_lateness_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("ivr_rtp_pacing_lateness_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(t.contains("ivr_rtp_pacing_lateness_seconds_count 2\n"));
        assert!(t.contains("ivr_rtp_packet_gap_seconds_bucket{le=\"0.0205\"} 1\n"));
        assert!(t.contains("ivr_rtp_packet_gap_seconds_count 1\n"));
        assert!(t.contains("ivr_greeting_delay_seconds_bucket{le=\"0.3\"} 0\n"));
        assert!(t.contains("ivr_greeting_delay_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(t.contains("ivr_eager_stt_total{outcome=\"skipped\"} 0\n"));
        assert!(t.contains("ivr_active_calls 1\n"), "{t}");
        assert!(t.contains("ivr_calls_total{municipality=\"nordby\",outcome=\"transferred\"} 1\n"));
        assert!(t.contains("ivr_stt_queue_depth 3\n"));
        assert!(t.contains("ivr_sip_dropped_datagrams_total 7\n"), "{t}");
        assert!(t.contains("ivr_rtp_dropped_foreign_total 2\n"), "{t}");
        assert!(t.contains("ivr_turn_latency_seconds_bucket{le=\"0.3\"} 0\n"));
        assert!(t.contains("ivr_turn_latency_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(t.contains("ivr_turn_latency_seconds_count 1\n"));
    }
}
