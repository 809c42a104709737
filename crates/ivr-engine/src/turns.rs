//! Per-turn timings: for every caller turn the flow answered with audio (an
//! utterance or a key), when each stage of the reply finished, so the
//! latency budget (end of caller speech -> first reply audio on the wire)
//! can be taken apart: endpointing, STT (queue and recognition), flow,
//! integrations, TTS, pacing.
//!
//! [`TurnClock`] is the sans-IO part: the call task tells it what happened
//! and when (instants are passed in, it never reads the clock), and it hands
//! back a [`TurnTiming`] when the first packet of the reply leaves. The call
//! task observes the turn in `/metrics` (`ivr_turn_latency_seconds`) and
//! publishes the record on [`TurnTimings`], which harnesses and diagnostics
//! subscribe to (`Running::turn_timings`).
//!
//! No personal data: a record holds the call reference, the municipality,
//! the flow step that answered, the engine's own RTP address and instants;
//! never what was said or keyed.
//!
//! Queue decision: [`TurnTimings`] is a `tokio::sync::broadcast` channel of
//! [`TURN_TIMINGS_QUEUE`] records. Publishing never waits: with no
//! subscriber the record is dropped; a subscriber that falls behind loses
//! the oldest records (its next `recv` says how many with `Lagged`).
//!
//! A turn the flow answers without audio (a transfer, a hang-up) produces no
//! record; the next turn replaces it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_core::CallId;
use tokio::sync::broadcast;

/// Records a subscriber may fall behind by before it loses the oldest.
pub const TURN_TIMINGS_QUEUE: usize = 256;

/// What the caller did to start the turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnInput {
    /// An utterance (endpointed, then recognised).
    Speech,
    /// A key (RFC 4733 or SIP INFO).
    Dtmf,
}

/// How the recogniser spent an utterance's time (over all its passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SttTiming {
    /// Waiting for a worker.
    pub queued: Duration,
    /// A worker recognising it.
    pub processing: Duration,
    /// Whether a transcript came back (false: refused when overloaded,
    /// model missing, or failed; the flow then heard an empty utterance).
    pub recognised: bool,
    /// Recognitions of the utterance: 2 when the flow had it heard again
    /// in another language (`RecognizeAgain`).
    pub passes: u32,
    /// A pass decoded the encoding its worker still held of the audio
    /// instead of encoding it again.
    pub encoder_reused: bool,
}

impl SttTiming {
    /// This pass added to the ones before it in the same turn.
    fn then(self, next: SttTiming) -> SttTiming {
        SttTiming {
            queued: self.queued + next.queued,
            processing: self.processing + next.processing,
            recognised: next.recognised,
            passes: self.passes + next.passes,
            encoder_reused: self.encoder_reused || next.encoder_reused,
        }
    }
}

/// One answered turn. Instants are the engine process's monotonic clock
/// (comparable with `Instant`s taken in the same process).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnTiming {
    /// The call.
    pub call_ref: CallId,
    /// Its municipality.
    pub municipality: String,
    /// The engine's RTP address of the call (the one in its SDP).
    pub rtp_local: SocketAddr,
    /// Speech or a key.
    pub input: TurnInput,
    /// The flow step that was current after the answer (e.g. `main/menu`).
    pub step: String,
    /// Speech: the endpointer declared the utterance over; keys: the key arrived.
    pub input_at: Instant,
    /// Speech: the end-of-turn model (Smart Turn) ended the utterance after
    /// this long a run (before the end silence was over); None: the end
    /// silence ended it (or it was a key).
    pub turn_model: Option<Duration>,
    /// The utterance was ended early because the speculative transcript
    /// already answered the question (`[turn] end_on_answer`).
    pub ended_by_answer: bool,
    /// Speech: the transcript (or the failure) reached the call.
    pub transcript_at: Option<Instant>,
    /// Speech: the recogniser's own account.
    pub stt: Option<SttTiming>,
    /// Speech: the transcript came from the eager (speculative) recognition
    /// started at the tentative end of the utterance (`[media] eager_stt_ms`),
    /// so `transcript_at - input_at` is only what was left of it when the
    /// end was confirmed (zero if it was already back).
    pub eager: bool,
    /// Time in the flow interpreter during the turn.
    pub flow: Duration,
    /// Time waiting for integration requests during the turn.
    pub integrations: Duration,
    /// The first prompt of the reply was requested (synthesis, file or filler).
    pub reply_started_at: Option<Instant>,
    /// Its first audio was handed to the media session.
    pub audio_ready_at: Option<Instant>,
    /// The first RTP packet of the reply was sent.
    pub first_packet_at: Instant,
}

fn since(later: Instant, earlier: Option<Instant>) -> Option<Duration> {
    earlier.map(|e| later.saturating_duration_since(e))
}

impl TurnTiming {
    /// End of input (endpointed utterance or key) to the first reply packet.
    pub fn latency(&self) -> Duration {
        self.first_packet_at
            .saturating_duration_since(self.input_at)
    }

    /// Speech: end of utterance to transcript in the call (queue + recognition + hand-over).
    pub fn stt_stage(&self) -> Option<Duration> {
        self.transcript_at
            .map(|t| t.saturating_duration_since(self.input_at))
    }

    /// First prompt requested to its first audio ready (synthesis; ~0 for pre-rendered prompts).
    pub fn tts_stage(&self) -> Option<Duration> {
        self.audio_ready_at
            .and_then(|a| since(a, self.reply_started_at))
    }

    /// First audio ready to its first packet sent (the pacer's next 20 ms slot, encoding, send).
    pub fn pacing_stage(&self) -> Option<Duration> {
        since(self.first_packet_at, self.audio_ready_at)
    }
}

#[derive(Debug, Clone)]
struct Pending {
    input: TurnInput,
    input_at: Instant,
    turn_model: Option<Duration>,
    ended_by_answer: bool,
    transcript_at: Option<Instant>,
    stt: Option<SttTiming>,
    eager: bool,
    flow: Duration,
    integrations: Duration,
    step: String,
    answered: bool,
    reply_started_at: Option<Instant>,
    audio_ready_at: Option<Instant>,
}

/// The turn in progress of one call.
#[derive(Debug, Default)]
pub struct TurnClock {
    cur: Option<Pending>,
}

impl TurnClock {
    /// A turn starts (an utterance was endpointed, a key arrived); an
    /// unfinished earlier turn is dropped.
    pub fn begin(&mut self, input: TurnInput, at: Instant) {
        self.cur = Some(Pending {
            input,
            input_at: at,
            turn_model: None,
            ended_by_answer: false,
            transcript_at: None,
            stt: None,
            eager: false,
            flow: Duration::ZERO,
            integrations: Duration::ZERO,
            step: String::new(),
            answered: false,
            reply_started_at: None,
            audio_ready_at: None,
        });
    }

    /// The end-of-turn model ended the utterance after a run of `took`.
    pub fn ended_by_model(&mut self, took: Duration) {
        if let Some(p) = self.cur.as_mut() {
            p.turn_model = Some(took);
        }
    }

    /// The utterance was ended early: its speculative transcript answered the question.
    pub fn ended_by_answer(&mut self) {
        if let Some(p) = self.cur.as_mut() {
            p.ended_by_answer = true;
        }
    }

    /// The transcript (or failure) reached the call; a second one in the
    /// same turn is the utterance heard again, and adds to the first.
    pub fn transcript(&mut self, at: Instant, stt: SttTiming) {
        if let Some(p) = self.cur.as_mut() {
            p.transcript_at = Some(at);
            p.stt = Some(p.stt.map_or(stt, |before| before.then(stt)));
        }
    }

    /// The turn's transcript is the eager (speculative) one.
    pub fn eager(&mut self) {
        if let Some(p) = self.cur.as_mut() {
            p.eager = true;
        }
    }

    /// The flow handled an event in `took`, ending at `step`; `answered`:
    /// it produced actions (the caller's input is answered).
    pub fn flow_step(&mut self, took: Duration, step: &str, answered: bool) {
        if let Some(p) = self.cur.as_mut() {
            p.flow += took;
            p.answered |= answered;
            if answered {
                p.step.clear();
                p.step.push_str(step);
            }
        }
    }

    /// An integration request of the turn took `took`.
    pub fn integration(&mut self, took: Duration) {
        if let Some(p) = self.cur.as_mut() {
            p.integrations += took;
        }
    }

    /// A prompt of the reply was requested (only the first counts).
    pub fn reply_started(&mut self, at: Instant) {
        if let Some(p) = self.cur.as_mut().filter(|p| p.answered) {
            p.reply_started_at.get_or_insert(at);
        }
    }

    /// Audio of the reply was handed to the media session (only the first counts).
    pub fn audio_ready(&mut self, at: Instant) {
        if let Some(p) = self.cur.as_mut().filter(|p| p.answered) {
            p.audio_ready_at.get_or_insert(at);
        }
    }

    /// Whether the flow answered and the reply's first packet is awaited.
    pub fn waiting_first_packet(&self) -> bool {
        self.cur.as_ref().is_some_and(|p| p.answered)
    }

    /// The first packet of the reply left at `at`: the finished record.
    pub fn first_packet(
        &mut self,
        at: Instant,
        call_ref: &CallId,
        municipality: &str,
        rtp_local: SocketAddr,
    ) -> Option<TurnTiming> {
        if !self.waiting_first_packet() {
            return None;
        }
        let p = self.cur.take()?;
        Some(TurnTiming {
            call_ref: call_ref.clone(),
            municipality: municipality.to_string(),
            rtp_local,
            input: p.input,
            step: p.step,
            input_at: p.input_at,
            turn_model: p.turn_model,
            ended_by_answer: p.ended_by_answer,
            transcript_at: p.transcript_at,
            stt: p.stt,
            eager: p.eager,
            flow: p.flow,
            integrations: p.integrations,
            reply_started_at: p.reply_started_at,
            audio_ready_at: p.audio_ready_at,
            first_packet_at: at,
        })
    }
}

/// Where finished turns are published (cheap to clone; see the queue decision above).
#[derive(Debug, Clone)]
pub struct TurnTimings {
    tx: broadcast::Sender<TurnTiming>,
}

impl Default for TurnTimings {
    fn default() -> Self {
        TurnTimings {
            tx: broadcast::channel(TURN_TIMINGS_QUEUE).0,
        }
    }
}

impl TurnTimings {
    /// Publishes a record; never waits, dropped when nobody listens.
    pub fn publish(&self, t: TurnTiming) {
        let _ = self.tx.send(t);
    }

    /// Records of turns finished from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<TurnTiming> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:20000".parse().unwrap()
    }

    #[test]
    fn a_spoken_turn_is_taken_apart_into_its_stages() {
        let t0 = Instant::now();
        let mut c = TurnClock::default();
        c.begin(TurnInput::Speech, t0);
        assert!(
            !c.waiting_first_packet(),
            "nothing to send before the flow answers"
        );
        c.transcript(
            t0 + ms(300),
            SttTiming {
                queued: ms(20),
                processing: ms(270),
                recognised: true,
                passes: 1,
                encoder_reused: false,
            },
        );
        c.flow_step(Duration::from_micros(150), "main/closed_offer", true);
        c.reply_started(t0 + ms(301));
        c.audio_ready(t0 + ms(340));
        c.audio_ready(t0 + ms(400)); // a later sentence: not the first audio
        assert!(c.waiting_first_packet());
        let id = CallId::from_u64(7);
        let t = c
            .first_packet(t0 + ms(352), &id, "nordby", addr())
            .expect("the turn is finished");
        assert_eq!(t.latency(), ms(352));
        assert_eq!(t.stt_stage(), Some(ms(300)));
        assert_eq!(t.tts_stage(), Some(ms(39)));
        assert_eq!(t.pacing_stage(), Some(ms(12)));
        assert_eq!(t.flow, Duration::from_micros(150));
        assert_eq!(t.step, "main/closed_offer");
        assert_eq!(t.stt.unwrap().queued, ms(20));
        assert_eq!(t.rtp_local, addr());
        assert!(!t.eager);
        assert!(
            c.first_packet(t0 + ms(372), &id, "nordby", addr())
                .is_none(),
            "one record per turn"
        );
    }

    /// Heard again in another language: both passes count, the stage ends
    /// at the second transcript.
    #[test]
    fn an_utterance_heard_again_counts_both_passes() {
        let t0 = Instant::now();
        let mut c = TurnClock::default();
        c.begin(TurnInput::Speech, t0);
        let pass = |queued, processing, encoder_reused| SttTiming {
            queued: ms(queued),
            processing: ms(processing),
            recognised: true,
            passes: 1,
            encoder_reused,
        };
        c.transcript(t0 + ms(400), pass(10, 380, false));
        c.flow_step(ms(0), "menu", false);
        c.transcript(t0 + ms(520), pass(0, 110, true));
        c.flow_step(ms(0), "menu/ydelser", true);
        c.reply_started(t0 + ms(521));
        c.audio_ready(t0 + ms(522));
        let t = c
            .first_packet(t0 + ms(530), &CallId::from_u64(8), "nordby", addr())
            .expect("the turn is finished");
        assert_eq!(t.stt_stage(), Some(ms(520)));
        assert_eq!(
            t.stt,
            Some(SttTiming {
                queued: ms(10),
                processing: ms(490),
                recognised: true,
                passes: 2,
                encoder_reused: true,
            })
        );
    }

    #[test]
    fn a_turn_answered_from_the_eager_transcript_says_so() {
        let t0 = Instant::now();
        let mut c = TurnClock::default();
        c.eager(); // no turn yet: nothing to mark
        c.begin(TurnInput::Speech, t0);
        c.eager();
        // The speculative transcript was back before the end was confirmed.
        c.transcript(
            t0,
            SttTiming {
                queued: ms(0),
                processing: ms(420),
                recognised: true,
                passes: 1,
                encoder_reused: false,
            },
        );
        c.flow_step(ms(0), "main/closed_offer", true);
        c.audio_ready(t0 + ms(2));
        let t = c
            .first_packet(t0 + ms(15), &CallId::from_u64(9), "nordby", addr())
            .unwrap();
        assert!(t.eager);
        assert_eq!(t.stt_stage(), Some(ms(0)));
        assert_eq!(t.stt.unwrap().processing, ms(420));
        c.begin(TurnInput::Dtmf, t0 + ms(900));
        c.flow_step(ms(0), "main/menu", true);
        let t = c
            .first_packet(t0 + ms(950), &CallId::from_u64(9), "nordby", addr())
            .unwrap();
        assert!(!t.eager, "a new turn starts unmarked");
    }

    #[test]
    fn a_turn_the_flow_does_not_answer_yields_no_record() {
        let t0 = Instant::now();
        let mut c = TurnClock::default();
        c.begin(TurnInput::Dtmf, t0);
        c.flow_step(ms(0), "main/menu", false);
        c.reply_started(t0 + ms(1));
        assert!(!c.waiting_first_packet());
        assert!(c
            .first_packet(t0 + ms(20), &CallId::from_u64(1), "nordby", addr())
            .is_none());
    }

    #[test]
    fn a_new_turn_replaces_an_unfinished_one_and_integrations_add_up() {
        let t0 = Instant::now();
        let mut c = TurnClock::default();
        c.begin(TurnInput::Speech, t0);
        c.flow_step(ms(1), "main/menu", true);
        c.begin(TurnInput::Dtmf, t0 + ms(500));
        c.flow_step(ms(1), "booking/ask", true);
        c.integration(ms(80));
        c.flow_step(ms(1), "booking/offer", true);
        c.integration(ms(20));
        let t = c
            .first_packet(t0 + ms(700), &CallId::from_u64(2), "nordby", addr())
            .unwrap();
        assert_eq!(t.input, TurnInput::Dtmf);
        assert_eq!(t.latency(), ms(200));
        assert_eq!(t.integrations, ms(100));
        assert_eq!(t.flow, ms(2));
        assert_eq!(t.step, "booking/offer");
        assert_eq!(t.stt_stage(), None);
        assert_eq!(t.tts_stage(), None, "no prompt was marked");
    }

    #[tokio::test]
    async fn published_records_reach_subscribers_and_nobody_listening_is_fine() {
        let hub = TurnTimings::default();
        let t0 = Instant::now();
        let rec = TurnTiming {
            call_ref: CallId::from_u64(3),
            municipality: "nordby".into(),
            rtp_local: addr(),
            input: TurnInput::Speech,
            step: "main/menu".into(),
            input_at: t0,
            turn_model: None,
            ended_by_answer: false,
            transcript_at: None,
            stt: None,
            eager: false,
            flow: Duration::ZERO,
            integrations: Duration::ZERO,
            reply_started_at: None,
            audio_ready_at: None,
            first_packet_at: t0 + ms(10),
        };
        hub.publish(rec.clone());
        let mut rx = hub.subscribe();
        hub.publish(rec.clone());
        assert_eq!(rx.recv().await.unwrap(), rec);
    }
}
