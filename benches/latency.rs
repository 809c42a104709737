//! Turn-latency harness (issue 7): real calls over loopback into the real
//! engine, measuring the time from the end of the caller's speech to the
//! first packet of reply audio, at several numbers of concurrent talking
//! calls.
//!
//! - The engine is `ivr_engine::engine::start` (what `ivr serve` runs),
//!   in-process on its own multi-thread runtime, with the default
//!   configuration (`config/default.toml`'s values: the default whisper
//!   model, VAD, end silence, eager recognition and end of turn by answer),
//!   the shipped `voices/` and `models/`, the harness's flows and a
//!   temporary SQLite database.
//! - Kinds of turn ([`KINDS`]), in Danish and English: a menu turn, yes/no,
//!   a date and a CPR number, in a municipality of that language alone;
//!   and the menu as the call's first turn in one offering both (`first_da`,
//!   `first_en`), where the language is identified on the turn as in the
//!   shipped municipalities. The harness's own deployment
//!   (`benches/latency-flows/`) has one number per kind and language whose
//!   flow asks that question first (the menu with the shipped menu's hints
//!   and keywords; date and CPR read the value back, so that reply is
//!   synthesised for the caller, not pre-rendered).
//! - Each caller is a small UAC on a second runtime: SIP over UDP through the
//!   workspace's SIP stack (INVITE with a PCMA offer, 100/180/200, ACK, BYE),
//!   RTP from its own socket: 20 ms PCMA packets on real-time deadlines,
//!   silence until the question's prompt has finished (the engine's audio
//!   has been quiet for [`QUIET`]), then the kind's utterance (the speech
//!   test set's G.711 files: espeak-ng Danish, piper English; the English CPR
//!   number, which the set lacks, is synthesised with the engine's piper
//!   voice at start), then silence again. Callers take the kinds in turn.
//! - End of speech is ground truth from the audio: the last 20 ms frame of
//!   the WAV whose RMS is within 40 dB of the loudest frame, found once at
//!   start; its instant is when the packet carrying that frame was sent.
//! - Reply: the first RTP packet from the engine after that instant whose
//!   decoded RMS is above [`REPLY_RMS`] (comfort silence decodes to +-8).
//!   The flow answers with what it understood (the menu's choice, yes/no,
//!   the date or number read back) or that it did not understand; the step
//!   that answered is recorded per kind (`reply_steps`).
//! - Breakdown, from the engine's per-turn timings
//!   (`Running::turn_timings`, matched to the call by the engine's RTP
//!   address): endpointing (end of speech -> utterance endpointed: the
//!   silence waited plus, when Smart Turn ended the turn, its run, also
//!   given apart as `turn_model`), STT
//!   (-> transcript in the call; its queue wait is shown apart), flow
//!   (-> reply prompt requested), TTS (-> first reply audio ready), pacing
//!   (-> first reply packet sent), wire (-> first non-silent packet received
//!   by the caller: leading quiet samples of the prompt, loopback, the
//!   caller's own wake-up).
//!
//! Levels: 1, 10 and 20 concurrent calls, then a search for the largest
//! number of concurrent calls whose p95 stays under 1 s (upward when 20
//! passes, bisection below the first level that fails), bounded by
//! `--search-levels`. A level passes when p95 < 1 s, every turn got a reply,
//! and no utterance was refused by the STT queue (a refused utterance is
//! answered fast, with "not understood", and must not count as fast).
//! Callers start staggered over one call's length and redial at once, so
//! `n` calls are in progress; only turns whose speech ended after the last
//! caller's first INVITE and before the level was stopped count.
//!
//! Browser calls (`--transport webrtc`, or `both`: at every level the SIP
//! calls, then as many browser calls, on the same engine in the same run):
//! the same turns from a WebRTC client placed through the console API, with
//! Opus as a browser sends it ([`latency_webrtc`]); measured, summed up and
//! tabled as the SIP calls, written under `webrtc_levels`. The search for
//! the largest passing level is the SIP calls' only.
//!
//! Per level: totals and stages over all turns (at least `--min-turns`,
//! default 24: three of each kind), and per kind of turn.
//!
//! Usage: `cargo run --release -p ivr-benches --bin latency -- [--levels 1,10,20]
//! [--search-levels 3] [--max-calls 60] [--min-turns 24] [--stt-threads N]
//! [--stt-idle-threads N] [--stt-workers N] [--eager-stt-ms N] [--end-silence-ms N] [--smart-turn
//! true|false] [--vad silero|energy]` (defaults: the engine's, as
//! `config/default.toml`; `--eager-stt-ms 0` turns the eager end of turn
//! off). Turns answered from the eager (speculative) transcript
//! are counted per level (`eager_turns`; per turn `eager`), and the totals
//! are also given apart for eager and other turns.
//! (part of `make bench`). Writes `target/bench/latency.json` and prints a table.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

mod latency_webrtc;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ivr_benches::uac::Router;
use ivr_engine::config::EngineConfig;
use ivr_engine::sip::{SipHandle, SipListenConfig, SipService};
use ivr_engine::turns::TurnTiming;
use ivr_media::g711;
use ivr_media::rtp::{build_rtp, parse_rtp};
use ivr_sip::msg::Uri;
use ivr_sip::sdp::{self, Codec, LocalMedia, SdpConfig, SessionDescription};
use ivr_sip::{CallHandle, EndpointConfig, Event, OutgoingCall, Transport};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// One kind of turn: its name, the number whose flow asks it
/// (`benches/latency-flows/tenants.toml`), and what the caller says: a file
/// of the speech test set (G.711 version), or text for the engine's voice.
struct Kind {
    name: &'static str,
    called: &'static str,
    /// The municipality `called` belongs to (browser calls name it).
    municipality: &'static str,
    lang: ivr_core::Lang,
    speech: Said,
}

enum Said {
    File(&'static str),
    Synth(&'static str),
}

/// The kinds of turn measured, in the order callers take them.
const KINDS: [Kind; 10] = [
    Kind {
        name: "menu_da",
        called: "+4579000001",
        municipality: "latency-da",
        lang: ivr_core::Lang::Da,
        speech: Said::File("da-boligstoette-01"),
    },
    Kind {
        name: "menu_en",
        called: "+4579000011",
        municipality: "latency-en",
        lang: ivr_core::Lang::En,
        speech: Said::File("en-housing-benefit-01"),
    },
    Kind {
        name: "yesno_da",
        called: "+4579000002",
        municipality: "latency-da",
        lang: ivr_core::Lang::Da,
        speech: Said::File("da-ja-01"),
    },
    Kind {
        name: "yesno_en",
        called: "+4579000012",
        municipality: "latency-en",
        lang: ivr_core::Lang::En,
        speech: Said::File("en-yes-01"),
    },
    Kind {
        name: "date_da",
        called: "+4579000003",
        municipality: "latency-da",
        lang: ivr_core::Lang::Da,
        speech: Said::File("da-dato-01"),
    },
    Kind {
        name: "date_en",
        called: "+4579000013",
        municipality: "latency-en",
        lang: ivr_core::Lang::En,
        speech: Said::File("en-date-01"),
    },
    Kind {
        name: "cpr_da",
        called: "+4579000004",
        municipality: "latency-da",
        lang: ivr_core::Lang::Da,
        speech: Said::File("da-cpr-01"),
    },
    Kind {
        name: "cpr_en",
        called: "+4579000014",
        municipality: "latency-en",
        lang: ivr_core::Lang::En,
        speech: Said::Synth("My CPR number is zero one zero two zero three, one two three four."),
    },
    // The menu as the call's first turn where Danish and English are both
    // offered: the language is identified on the turn, and Danish that
    // whisper takes for English is heard again in Danish.
    Kind {
        name: "first_da",
        called: "+4579000021",
        municipality: "latency-both",
        lang: ivr_core::Lang::Da,
        speech: Said::File("da-boligstoette-01"),
    },
    Kind {
        name: "first_en",
        called: "+4579000021",
        municipality: "latency-both",
        lang: ivr_core::Lang::En,
        speech: Said::File("en-housing-benefit-01"),
    },
];
/// Samples per 20 ms PCMA packet.
const FRAME: usize = 160;
const PTIME: Duration = Duration::from_millis(20);
/// Engine audio quiet this long after it spoke: the prompt is over, speak.
const QUIET: Duration = Duration::from_millis(600);
/// Decoded RMS above which a received packet is reply audio.
const REPLY_RMS: f64 = 64.0;
/// The p95 a level must stay under.
const P95_LIMIT: Duration = Duration::from_secs(1);
/// The console operator who places the browser calls (`--transport webrtc`).
const OPERATOR: &str = "latency-op";
const OPERATOR_PASSWORD: &str = "latency harness 2026";
/// Fixed instant outside opening hours (19:00 in Copenhagen, a Tuesday).
const FIXED_TIME: &str = "2026-12-01T18:00:00Z";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Counts the calls placed, to vary each one's speech by one A-law step.
static CALL_VARIANT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The caller's audio, as PCMA payloads, with the ground-truth end of speech.
struct Speech {
    packets: Vec<[u8; FRAME]>,
    /// Index of the packet carrying the last speech frame.
    last_speech_packet: usize,
    threshold_rms: f64,
}

fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    (pcm.iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / pcm.len() as f64)
        .sqrt()
}

fn load_speech(path: &Path) -> Speech {
    let mut r = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{}: {e} (the speech test set is in git)", path.display()));
    let spec = r.spec();
    assert!(
        spec.sample_rate == 8000 && spec.channels == 1 && spec.bits_per_sample == 16,
        "{}: expected 8 kHz mono 16-bit (the G.711 version of the test set)",
        path.display()
    );
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("wav sample")).collect();
    speech_of(&samples)
}

/// Text said by the engine's own voice for `lang` (the English CPR number
/// the speech test set lacks), at 8 kHz, with 150 ms of silence either side
/// as the test set's files have.
fn synthesised_speech(tts: &ivr_tts::Tts, text: &str, lang: ivr_core::Lang) -> Speech {
    use ivr_tts::TextToSpeech;
    let pcm = tts
        .synthesize_lang(text, lang)
        .expect("synthesis for the harness");
    let pcm8 = ivr_core::resample::resample(&pcm, 8000).expect("resample to 8 kHz");
    let mut samples = vec![0i16; 1200];
    samples.extend_from_slice(&pcm8.samples);
    samples.extend(std::iter::repeat_n(0, 1200));
    speech_of(&samples)
}

fn speech_of(samples: &[i16]) -> Speech {
    let frames: Vec<&[i16]> = samples.chunks(FRAME).collect();
    let peak = frames.iter().map(|f| rms(f)).fold(0.0, f64::max);
    let threshold = peak / 100.0; // 40 dB below the loudest frame
    let last = frames
        .iter()
        .rposition(|f| rms(f) > threshold)
        .expect("the utterance has speech");
    let packets = frames
        .iter()
        .map(|f| {
            let mut p = [g711::alaw_from_linear(0); FRAME];
            g711::encode_alaw(f, &mut p);
            p
        })
        .collect();
    Speech {
        packets,
        last_speech_packet: last,
        threshold_rms: threshold,
    }
}

struct Harness {
    sip: SipHandle,
    router: Arc<Router>,
    engine_sip: SocketAddr,
    /// What the caller says, per kind of turn ([`KINDS`]).
    speech: Vec<Arc<Speech>>,
    /// Engine turn timings by the engine's RTP address.
    timings: Arc<Mutex<HashMap<SocketAddr, Vec<TurnTiming>>>>,
    timings_lagged: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
    /// The callers are browsers (WebRTC) rather than phones (SIP).
    webrtc: AtomicBool,
    /// The operator's console session for browser calls.
    console: Option<latency_webrtc::Console>,
    /// What the browser caller says, per kind of turn.
    browser_speech: Vec<Arc<latency_webrtc::BrowserSpeech>>,
}

/// One measured turn.
#[derive(Debug, Clone)]
struct TurnResult {
    /// Index into [`KINDS`].
    kind: usize,
    concurrency: usize,
    active_at_speech_end: usize,
    counted: bool,
    /// Speech end -> first non-silent reply packet received.
    total: Option<Duration>,
    engine: Option<TurnTiming>,
    speech_end_at: Instant,
    reply_at: Option<Instant>,
    /// Engine audio heard while the caller was speaking (the prompt was not over).
    overlap_packets: usize,
    error: Option<String>,
}

/// Whether a caller's turn is over at `now`: `Some(None)` once the reply
/// has played for 200 ms; `Some(Some(why))` when the greeting was not over
/// in 30 s or no reply came 10 s after the speech; `None`: go on.
fn turn_over(
    start: Instant,
    now: Instant,
    speech_end_at: Option<Instant>,
    reply_at: Option<Instant>,
) -> Option<Option<String>> {
    let Some(end) = speech_end_at else {
        return (now > start + Duration::from_secs(30))
            .then(|| Some("prompts never went quiet".to_string()));
    };
    match reply_at {
        Some(r) if now >= r + Duration::from_millis(200) => Some(None),
        None if now > end + Duration::from_secs(10) => {
            Some(Some("no reply audio within 10 s".to_string()))
        }
        _ => None,
    }
}

impl TurnResult {
    /// A turn that could not be measured, and why.
    fn failed(kind: usize, why: String) -> TurnResult {
        TurnResult {
            kind,
            concurrency: 0,
            active_at_speech_end: 0,
            counted: false,
            total: None,
            engine: None,
            speech_end_at: Instant::now(),
            reply_at: None,
            overlap_packets: 0,
            error: Some(why),
        }
    }
}

impl TurnResult {
    fn signed_ms(later: Instant, earlier: Instant) -> f64 {
        if later >= earlier {
            later.duration_since(earlier).as_secs_f64() * 1000.0
        } else {
            -(earlier.duration_since(later).as_secs_f64() * 1000.0)
        }
    }

    /// (stage name, milliseconds) in order; they add up to `total`.
    fn stages(&self) -> Option<Vec<(&'static str, f64)>> {
        let e = self.engine.as_ref()?;
        let reply_at = self.reply_at?;
        let transcript = e.transcript_at?;
        let started = e.reply_started_at.unwrap_or(e.first_packet_at);
        let ready = e.audio_ready_at.unwrap_or(e.first_packet_at);
        Some(vec![
            (
                "endpointing",
                Self::signed_ms(e.input_at, self.speech_end_at),
            ),
            ("stt", Self::signed_ms(transcript, e.input_at)),
            ("flow", Self::signed_ms(started, transcript)),
            ("tts", Self::signed_ms(ready, started)),
            ("pacing", Self::signed_ms(e.first_packet_at, ready)),
            ("wire", Self::signed_ms(reply_at, e.first_packet_at)),
        ])
    }
}

impl Harness {
    fn register(&self, call: CallHandle) -> mpsc::UnboundedReceiver<Event> {
        self.router.register(call)
    }

    fn unregister(&self, call: CallHandle) {
        self.router.unregister(call);
    }

    /// Places one call, waits for the prompts to end, speaks, measures the
    /// reply, hangs up. The turn counts when its speech ended (or, failing,
    /// the call failed) after `count_after`.
    async fn call(
        &self,
        caller: &str,
        kind: usize,
        concurrency: usize,
        count_after: Instant,
    ) -> TurnResult {
        let mut r = if self.webrtc.load(Ordering::Relaxed) {
            self.call_webrtc(kind).await
        } else {
            self.call_inner(caller, kind).await
        };
        r.kind = kind;
        r.concurrency = concurrency;
        r.counted = r.speech_end_at >= count_after;
        r
    }

    async fn call_inner(&self, caller: &str, kind: usize) -> TurnResult {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("RTP socket");
        let port = rtp.local_addr().expect("RTP address").port();
        let sdp_cfg = SdpConfig {
            codecs: vec![Codec::Pcma],
            ..SdpConfig::default()
        };
        let offer = sdp::offer(
            &LocalMedia::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port, u64::from(port)),
            &sdp_cfg,
        );
        let failed = |why: String| TurnResult::failed(kind, why);
        let out = OutgoingCall {
            target: Uri::parse(&format!("sip:{}@{}", KINDS[kind].called, self.engine_sip))
                .expect("target URI"),
            dest: self.engine_sip,
            transport: Transport::Udp,
            from: Uri::parse(&format!("sip:{caller}@127.0.0.1")).expect("from URI"),
            offer: Some(offer.to_string().into_bytes()),
            headers: Vec::new(),
        };
        let handle = match self.sip.invite(out).await {
            Ok(h) => h,
            Err(e) => return failed(format!("INVITE not sent: {e}")),
        };
        let mut events = self.register(handle);
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(e) = events.recv().await {
                match e {
                    Event::CallAnswered { answer, .. } => return Ok(answer),
                    Event::CallFailed { status, .. } => {
                        return Err(format!("call failed {status}"))
                    }
                    Event::CallEnded { reason, .. } => return Err(format!("ended {reason:?}")),
                    _ => {}
                }
            }
            Err("event channel closed".to_string())
        })
        .await;
        let negotiated = match answer {
            Ok(Ok(Some(body))) => SessionDescription::parse_bytes(&body)
                .map_err(|e| e.to_string())
                .and_then(|a| sdp::accept_answer(&offer, &a).map_err(|e| e.to_string())),
            Ok(Ok(None)) => Err("200 without SDP".into()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("no answer in 10 s".into()),
        };
        let n = match negotiated {
            Ok(n) => n,
            Err(e) => {
                let _ = self.sip.hangup(handle).await;
                self.unregister(handle);
                return failed(e);
            }
        };
        self.active.fetch_add(1, Ordering::Relaxed);
        let mut r = self
            .media(
                &rtp,
                n.remote_rtp,
                n.payload_type,
                &mut events,
                &self.speech[kind],
            )
            .await;
        self.active.fetch_sub(1, Ordering::Relaxed);
        let _ = self.sip.hangup(handle).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(e) = events.recv().await {
                if matches!(e, Event::CallEnded { .. }) {
                    return;
                }
            }
        })
        .await;
        self.unregister(handle);
        self.match_timing(&mut r, n.remote_rtp).await;
        r
    }

    /// The engine's timing of the turn `r` measured, from the call whose
    /// engine RTP address is `engine_rtp` (then forgets the call's timings).
    async fn match_timing(&self, r: &mut TurnResult, engine_rtp: SocketAddr) {
        // The engine publishes the turn when it sends the reply's first packet.
        if r.reply_at.is_some() {
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let found = self
                    .timings
                    .lock()
                    .unwrap()
                    .get_mut(&engine_rtp)
                    .and_then(|v| {
                        let i = v
                            .iter()
                            .position(|t| t.first_packet_at >= r.speech_end_at)?;
                        Some(v.remove(i))
                    });
                if let Some(t) = found {
                    if Some(t.first_packet_at) > r.reply_at {
                        r.error = Some("reply heard before the engine sent it".into());
                    }
                    r.engine = Some(t);
                    break;
                }
                if Instant::now() >= deadline {
                    r.error
                        .get_or_insert("no turn timing from the engine".into());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.timings.lock().unwrap().remove(&engine_rtp);
    }

    /// The RTP side of a call: silence until the prompts are over, the
    /// utterance, silence until the reply.
    async fn media(
        &self,
        rtp: &UdpSocket,
        remote: SocketAddr,
        pt: u8,
        events: &mut mpsc::UnboundedReceiver<Event>,
        speech: &Speech,
    ) -> TurnResult {
        enum Phase {
            Listening,
            Speaking(usize),
            Waiting,
        }
        let silence = [g711::alaw_from_linear(0); FRAME];
        // No two calls send bit-identical speech (no real line does): one
        // A-law step of one sample in the middle of the utterance differs
        // per call, inaudibly. Otherwise a worker still holding the same
        // clip's encoding from an earlier call would skip the encoder.
        let variant = CALL_VARIANT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marked_packet = speech.packets.len() / 2 + (variant / FRAME) % 8;
        let marked = speech.packets.get(marked_packet).map(|p| {
            let mut m = *p;
            m[variant % FRAME] ^= 1;
            m
        });
        let ssrc = 0x1234_0000 ^ u32::from(rtp.local_addr().map(|a| a.port()).unwrap_or(0));
        let (mut seq, mut ts) = (1u16, 160u32);
        let start = Instant::now();
        let mut next_send = start + PTIME;
        let mut phase = Phase::Listening;
        let mut heard_bot = false;
        let mut last_bot_audio = start;
        let mut speech_end_at: Option<Instant> = None;
        let mut reply_at: Option<Instant> = None;
        let mut overlap = 0usize;
        let mut out = [0u8; 12 + FRAME];
        let mut buf = [0u8; 2048];
        let mut pcm = [0i16; FRAME];
        let mut marker = true;
        let mut active_at_end = 0usize;
        let error = loop {
            let now = Instant::now();
            if let Some(end) = turn_over(start, now, speech_end_at, reply_at) {
                break end;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next_send)) => {
                    let payload: &[u8; FRAME] = match phase {
                        Phase::Listening => {
                            if heard_bot && now.duration_since(last_bot_audio) >= QUIET {
                                phase = Phase::Speaking(0);
                                marker = true;
                                &speech.packets[0]
                            } else {
                                &silence
                            }
                        }
                        Phase::Speaking(i) if i == marked_packet && marked.is_some() => {
                            marked.as_ref().unwrap_or(&speech.packets[i])
                        }
                        Phase::Speaking(i) => &speech.packets[i],
                        Phase::Waiting => &silence,
                    };
                    if let Ok(len) = build_rtp(&mut out, 8, marker, seq, ts, ssrc, payload) {
                        let _ = rtp.send_to(&out[..len], remote).await;
                    }
                    let sent = Instant::now();
                    marker = false;
                    seq = seq.wrapping_add(1);
                    ts = ts.wrapping_add(FRAME as u32);
                    next_send += PTIME;
                    if let Phase::Speaking(i) = phase {
                        if i == speech.last_speech_packet {
                            speech_end_at = Some(sent);
                            active_at_end = self.active.load(Ordering::Relaxed);
                        }
                        phase = if i + 1 < speech.packets.len() {
                            Phase::Speaking(i + 1)
                        } else {
                            Phase::Waiting
                        };
                    }
                }
                r = rtp.recv_from(&mut buf) => {
                    let Ok((len, from)) = r else { continue };
                    let at = Instant::now();
                    if from != remote {
                        continue;
                    }
                    let Ok(p) = parse_rtp(&buf[..len]) else { continue };
                    if p.payload_type != pt {
                        continue;
                    }
                    let n = g711::decode_alaw(p.payload, &mut pcm);
                    if rms(&pcm[..n]) <= REPLY_RMS {
                        continue;
                    }
                    match phase {
                        Phase::Listening => {
                            heard_bot = true;
                            last_bot_audio = at;
                        }
                        _ => match speech_end_at {
                            Some(end) if at >= end => {
                                reply_at.get_or_insert(at);
                            }
                            _ => overlap += 1,
                        },
                    }
                }
                e = events.recv() => {
                    if let Some(Event::CallEnded { reason, .. }) = e {
                        break Some(format!("engine ended the call: {reason:?}"));
                    }
                    if e.is_none() {
                        break Some("event channel closed".to_string());
                    }
                }
            }
        };
        let speech_end_at = speech_end_at.unwrap_or(start);
        TurnResult {
            kind: 0,
            concurrency: 0,
            active_at_speech_end: active_at_end,
            counted: false,
            total: reply_at.map(|r| r.duration_since(speech_end_at)),
            engine: None,
            speech_end_at,
            reply_at,
            overlap_packets: overlap,
            error: error.or_else(|| {
                (overlap > 0).then(|| format!("{overlap} packets of prompt audio while speaking"))
            }),
        }
    }
}

/// One concurrency level: `n` callers, staggered over `cycle`, redialling
/// until `min_turns` counted turns (at least 2 per caller) are in. Turns
/// count from the last caller's first INVITE until the level is told to
/// stop (calls still in progress then finish with fewer calls around them).
async fn run_level(
    h: &Arc<Harness>,
    n: usize,
    cycle: Duration,
    min_turns: usize,
    max_wall: Duration,
) -> Vec<TurnResult> {
    let t0 = Instant::now();
    let stagger = cycle / n as u32;
    let count_after = t0 + stagger * (n as u32 - 1);
    let want = min_turns.max(2 * n);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped_at = Arc::new(Mutex::new(None::<Instant>));
    let results = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (h, stop, results) = (h.clone(), stop.clone(), results.clone());
        let stopped_at = stopped_at.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(stagger * i as u32).await;
            let caller = format!("+452{:07}", 1000 + i);
            let mut k = i;
            while !stop.load(Ordering::Relaxed) {
                let r = h.call(&caller, k % KINDS.len(), n, count_after).await;
                k += 1;
                let failed_setup = r.engine.is_none() && r.reply_at.is_none();
                {
                    let mut all = results.lock().unwrap();
                    all.push(r);
                    if all.iter().filter(|r| r.counted).count() >= want {
                        stop.store(true, Ordering::Relaxed);
                        stopped_at.lock().unwrap().get_or_insert_with(Instant::now);
                    }
                }
                if failed_setup {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }));
    }
    let watchdog = {
        let (stop, stopped_at) = (stop.clone(), stopped_at.clone());
        tokio::spawn(async move {
            tokio::time::sleep(max_wall).await;
            stop.store(true, Ordering::Relaxed);
            stopped_at.lock().unwrap().get_or_insert_with(Instant::now);
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    watchdog.abort();
    let stopped_at = *stopped_at.lock().unwrap();
    let mut v = std::mem::take(&mut *results.lock().unwrap());
    for r in &mut v {
        if stopped_at.is_some_and(|s| r.speech_end_at > s) {
            r.counted = false;
        }
    }
    v
}

/// Runs and prints one level (bounded: the calls it needs plus three call lengths and 30 s).
async fn measure(h: &Arc<Harness>, n: usize, cycle: Duration, min_turns: usize) -> LevelSummary {
    let calls_each = (2 * n).max(min_turns).div_ceil(n) as u32;
    let max_wall = cycle * (3 + calls_each) + Duration::from_secs(30);
    let t = Instant::now();
    let (load_before, stt_before) = (load_average(), stt_worker_time());
    let turns = run_level(h, n, cycle, min_turns, max_wall).await;
    let (load_after, stt_after) = (load_average(), stt_worker_time());
    let mut s = summarise(n, &turns, t.elapsed());
    // What the STT workers cost and how long they waited for a core (the
    // machine's other work): wall time minus these is what a quiet machine
    // would not spend.
    let recognitions = turns
        .iter()
        .filter(|t| t.engine.as_ref().is_some_and(|e| e.stt.is_some()))
        .count()
        .max(1);
    let cpu_ms = (stt_after.0.saturating_sub(stt_before.0)) as f64 / 1e6;
    let wait_ms = (stt_after.1.saturating_sub(stt_before.1)) as f64 / 1e6;
    let machine = serde_json::json!({
        "load_average_before": load_before,
        "load_average_after": load_after,
        "stt_workers_cpu_ms": cpu_ms,
        "stt_workers_runqueue_wait_ms": wait_ms,
        "turns_with_a_transcript": recognitions,
        "note": "STT worker CPU and run-queue wait over the whole level (speculative recognitions included), from /proc/self/task/*/schedstat of the threads named stt-worker-*",
    });
    println!(
        "      machine: load average {} -> {}; STT workers {:.0} ms CPU and {:.0} ms waiting for a core per turn with a transcript ({} turns)",
        load_before, load_after, cpu_ms / recognitions as f64, wait_ms / recognitions as f64, recognitions
    );
    if let Some(o) = s.json.as_object_mut() {
        o.insert("machine".into(), machine);
    }
    println!("{}", s.line);
    s
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), as text.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Nanoseconds on a CPU and waiting on a run queue, summed over this
/// process's threads named `stt-worker-*` (the recogniser's workers).
fn stt_worker_time() -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    let (mut cpu, mut wait) = (0u64, 0u64);
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("stt-worker") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        let mut it = stat
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        cpu += it.next().unwrap_or(0);
        wait += it.next().unwrap_or(0);
    }
    (cpu, wait)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct LevelSummary {
    n: usize,
    json: serde_json::Value,
    p95_ms: f64,
    passed: bool,
    line: String,
}

const STAGES: [&str; 6] = ["endpointing", "stt", "flow", "tts", "pacing", "wire"];

fn summarise(n: usize, turns: &[TurnResult], wall: Duration) -> LevelSummary {
    let counted: Vec<&TurnResult> = turns.iter().filter(|t| t.counted).collect();
    let ok: Vec<&TurnResult> = counted
        .iter()
        .copied()
        .filter(|t| t.error.is_none() && t.total.is_some() && t.engine.is_some())
        .collect();
    let errors: Vec<String> = counted.iter().filter_map(|t| t.error.clone()).collect();
    let refused = ok
        .iter()
        .filter(|t| {
            t.engine
                .as_ref()
                .and_then(|e| e.stt)
                .is_some_and(|s| !s.recognised)
        })
        .count();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let stat = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        serde_json::json!({
            "median_ms": percentile(&v, 50.0),
            "p95_ms": percentile(&v, 95.0),
            "min_ms": v.first().copied().unwrap_or(f64::NAN),
            "max_ms": v.last().copied().unwrap_or(f64::NAN),
        })
    };
    let is_eager = |t: &TurnResult| t.engine.as_ref().is_some_and(|e| e.eager);
    let eager_turns = ok.iter().filter(|t| is_eager(t)).count();
    let totals_where = |eager: bool| {
        stat(
            ok.iter()
                .filter(|t| is_eager(t) == eager)
                .filter_map(|t| t.total.map(ms))
                .collect(),
        )
    };
    let mut totals: Vec<f64> = ok.iter().filter_map(|t| t.total.map(ms)).collect();
    totals.sort_by(f64::total_cmp);
    let (med, p95) = (percentile(&totals, 50.0), percentile(&totals, 95.0));
    let mut stages = serde_json::Map::new();
    let mut stage_cells = Vec::new();
    for (i, name) in STAGES.iter().enumerate() {
        let v: Vec<f64> = ok
            .iter()
            .filter_map(|t| t.stages().map(|s| s[i].1))
            .collect();
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        stage_cells.push(format!(
            "{:>5.0}/{:<5.0}",
            percentile(&sorted, 50.0),
            percentile(&sorted, 95.0)
        ));
        stages.insert((*name).to_string(), stat(v));
    }
    let queued: Vec<f64> = ok
        .iter()
        .filter_map(|t| t.engine.as_ref()?.stt.map(|s| ms(s.queued)))
        .collect();
    let processing: Vec<f64> = ok
        .iter()
        .filter_map(|t| t.engine.as_ref()?.stt.map(|s| ms(s.processing)))
        .collect();
    let interp: Vec<f64> = ok
        .iter()
        .filter_map(|t| t.engine.as_ref().map(|e| e.flow.as_secs_f64() * 1e6))
        .collect();
    let engine_view: Vec<f64> = ok
        .iter()
        .filter_map(|t| {
            let e = t.engine.as_ref()?;
            Some(TurnResult::signed_ms(e.first_packet_at, t.speech_end_at))
        })
        .collect();
    let mut steps: HashMap<String, usize> = HashMap::new();
    for t in &ok {
        if let Some(e) = &t.engine {
            *steps.entry(e.step.clone()).or_default() += 1;
        }
    }
    let mut qs = queued.clone();
    qs.sort_by(f64::total_cmp);
    let active: Vec<usize> = counted.iter().map(|t| t.active_at_speech_end).collect();
    let passed = !ok.is_empty()
        && errors.is_empty()
        && refused == 0
        && p95 < P95_LIMIT.as_secs_f64() * 1000.0;
    let line = format!(
        "{n:>5} {:>5} {:>5} {:>6.0}/{:<6.0} {} {:>5.0}/{:<5.0} {:>3} {:>3} {}",
        ok.len(),
        eager_turns,
        med,
        p95,
        stage_cells.join(" "),
        percentile(&qs, 50.0),
        percentile(&qs, 95.0),
        errors.len(),
        refused,
        if passed { "yes" } else { "no" }
    );
    // Per kind of turn: totals, stages, and what the flow answered.
    let mut by_kind = serde_json::Map::new();
    let mut kind_lines = Vec::new();
    for (k, kind) in KINDS.iter().enumerate() {
        let mine: Vec<&TurnResult> = ok.iter().copied().filter(|t| t.kind == k).collect();
        let mut st = serde_json::Map::new();
        let mut meds = Vec::new();
        for (i, name) in STAGES.iter().enumerate() {
            let mut v: Vec<f64> = mine
                .iter()
                .filter_map(|t| t.stages().map(|s| s[i].1))
                .collect();
            v.sort_by(f64::total_cmp);
            meds.push(format!("{:>5.0}", percentile(&v, 50.0)));
            st.insert((*name).to_string(), stat(v));
        }
        let mut tot: Vec<f64> = mine.iter().filter_map(|t| t.total.map(ms)).collect();
        tot.sort_by(f64::total_cmp);
        let mut steps: HashMap<String, usize> = HashMap::new();
        for t in &mine {
            if let Some(e) = &t.engine {
                *steps.entry(e.step.clone()).or_default() += 1;
            }
        }
        let by_model = mine
            .iter()
            .filter(|t| t.engine.as_ref().is_some_and(|e| e.turn_model.is_some()))
            .count();
        let by_answer = mine
            .iter()
            .filter(|t| t.engine.as_ref().is_some_and(|e| e.ended_by_answer))
            .count();
        let eager = mine.iter().filter(|t| is_eager(t)).count();
        // Heard again in another language, and of those, on the encoding
        // its worker still held.
        let stt_of = |t: &&TurnResult| t.engine.as_ref().and_then(|e| e.stt);
        let again = mine
            .iter()
            .filter(|t| stt_of(t).is_some_and(|s| s.passes > 1))
            .count();
        let reused = mine
            .iter()
            .filter(|t| stt_of(t).is_some_and(|s| s.encoder_reused))
            .count();
        kind_lines.push(format!(
            "      {:<9} {:>3} turns {:>6.0}/{:<6.0} ms  stages med {}  eager {eager} by answer {by_answer} by Smart Turn {by_model} heard again {again} (encoding reused {reused})",
            kind.name,
            mine.len(),
            percentile(&tot, 50.0),
            percentile(&tot, 95.0),
            meds.join(" ")
        ));
        by_kind.insert(
            kind.name.to_string(),
            serde_json::json!({
                "lang": kind.lang.code(),
                "turns": mine.len(),
                "total": stat(tot),
                "stages": st,
                "ended_by_smart_turn": by_model,
                "ended_by_answer": by_answer,
                "eager_turns": eager,
                "heard_again": again,
                "heard_again_encoding_reused": reused,
                "reply_steps": steps,
            }),
        );
    }
    let line = format!("{line}\n{}", kind_lines.join("\n"));
    let turn_model: Vec<f64> = ok
        .iter()
        .filter_map(|t| t.engine.as_ref()?.turn_model.map(ms))
        .collect();
    let ended_by_model = turn_model.len();
    let json = serde_json::json!({
        "concurrency": n,
        "turns_measured": ok.len(),
        "eager_turns": eager_turns,
        "total_eager_turns": totals_where(true),
        "total_other_turns": totals_where(false),
        "turns_total": turns.len(),
        "turns_counted": counted.len(),
        "turn_errors": errors,
        "stt_refused": refused,
        "active_calls_at_speech_end": {
            "min": active.iter().min(),
            "max": active.iter().max(),
        },
        "wall_s": wall.as_secs_f64(),
        "total": stat(totals.clone()),
        "stages": stages,
        "stt_queued": stat(queued),
        "stt_processing": stat(processing),
        "flow_interpreter_us": stat(interp),
        "engine_first_packet_after_speech_end": stat(engine_view),
        "reply_steps": steps,
        "p95_under_1s": passed,
        "by_kind": by_kind,
        "ended_by_smart_turn": ended_by_model,
        "smart_turn_run": stat(turn_model),
        "turns": ok.iter().map(|t| {
            let e = t.engine.as_ref();
            serde_json::json!({
                "total_ms": t.total.map(ms),
                "stages_ms": t.stages().map(|s| s.into_iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>()),
                "stt_queued_ms": e.and_then(|e| e.stt).map(|s| ms(s.queued)),
                "stt_processing_ms": e.and_then(|e| e.stt).map(|s| ms(s.processing)),
                "recognised": e.and_then(|e| e.stt).map(|s| s.recognised),
                "eager": e.map(|e| e.eager),
                "step": e.map(|e| e.step.clone()),
                "active_calls": t.active_at_speech_end,
                "prompt_packets_while_speaking": t.overlap_packets,
                "kind": KINDS[t.kind].name,
                "turn_model_ms": e.and_then(|e| e.turn_model).map(ms),
                "ended_by_answer": e.map(|e| e.ended_by_answer),
            })
        }).collect::<Vec<_>>(),
    });
    LevelSummary {
        n,
        json,
        p95_ms: p95,
        passed,
        line,
    }
}

struct Args {
    levels: Vec<usize>,
    search_levels: usize,
    max_calls: usize,
    min_turns: usize,
    stt_threads: Option<usize>,
    stt_idle_threads: Option<usize>,
    stt_workers: Option<usize>,
    eager_stt_ms: Option<u64>,
    end_silence_ms: Option<u64>,
    smart_turn: Option<bool>,
    vad: Option<String>,
    /// Phones (SIP), browsers (WebRTC) or both at every level.
    sip: bool,
    webrtc: bool,
}

fn args() -> Args {
    let mut a = Args {
        levels: vec![1, 10, 20],
        search_levels: 3,
        max_calls: 60,
        min_turns: 24,
        stt_threads: None,
        stt_idle_threads: None,
        stt_workers: None,
        eager_stt_ms: None,
        end_silence_ms: None,
        smart_turn: None,
        vad: None,
        sip: true,
        webrtc: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--levels" => a.levels = v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
            "--search-levels" => a.search_levels = v.parse().expect("--search-levels N"),
            "--max-calls" => a.max_calls = v.parse().expect("--max-calls N"),
            "--min-turns" => a.min_turns = v.parse().expect("--min-turns N"),
            "--stt-threads" => a.stt_threads = Some(v.parse().expect("--stt-threads N")),
            "--stt-workers" => a.stt_workers = Some(v.parse().expect("--stt-workers N")),
            "--stt-idle-threads" => {
                a.stt_idle_threads = Some(v.parse().expect("--stt-idle-threads N"));
            }
            "--eager-stt-ms" => a.eager_stt_ms = Some(v.parse().expect("--eager-stt-ms N")),
            "--end-silence-ms" => {
                a.end_silence_ms = Some(v.parse().expect("--end-silence-ms N"));
            }
            "--smart-turn" => a.smart_turn = Some(v.parse().expect("--smart-turn true|false")),
            "--vad" => a.vad = Some(v),
            "--transport" => {
                (a.sip, a.webrtc) = match v.as_str() {
                    "sip" => (true, false),
                    "webrtc" => (false, true),
                    "both" => (true, true),
                    other => panic!("--transport sip|webrtc|both, not {other}"),
                }
            }
            "--bench" => {} // cargo bench passes it to every target
            other => panic!("unknown argument {other}; see the doc comment of benches/latency.rs"),
        }
    }
    a.levels.retain(|&n| n > 0);
    a.levels.sort_unstable();
    a.levels.dedup();
    assert!(!a.levels.is_empty(), "--levels needs at least one number");
    a
}

fn engine_config(dir: &Path) -> EngineConfig {
    let r = root();
    // The default configuration's whisper model (`[stt] model`), from the
    // workspace root.
    let stt_model = ivr_stt::SttConfig::default().model;
    let need = [
        (stt_model.as_path(), "the default whisper model"),
        (
            Path::new("models/onnxruntime/libonnxruntime.so"),
            "onnxruntime",
        ),
        (Path::new("models/turn/silero_vad.onnx"), "Silero VAD"),
        (
            Path::new("models/turn/smart-turn-v3.2-cpu.onnx"),
            "Smart Turn",
        ),
    ];
    for (p, what) in need {
        if !r.join(p).is_file() {
            eprintln!(
                "latency: {what} missing ({}): run `make setup`",
                p.display()
            );
            std::process::exit(2);
        }
    }
    let text = format!(
        r#"
[sip]
udp = ["127.0.0.1:0"]
max_calls = 500
[media]
rtp_port_min = 42000
rtp_port_max = 43998
[flows]
dir = "{flows}"
reload_poll_ms = 0
fixed_time = "{FIXED_TIME}"
[turn]
silero_model = "{silero}"
smart_turn_model = "{smart}"
[stt]
model = "{model}"
[tts]
voices_dir = "{voices}"
onnxruntime = "{ort}"
[tts.cache]
dir = "{cache}"
[http]
listen = "127.0.0.1:0"
[webrtc]
candidate_ips = ["127.0.0.1"]
max_calls = 500
[console]
drafts_dir = "{drafts}"
announcements_dir = "{announcements}"
[integrations]
database_url = "sqlite:{db}"
[integrations.callbacks]
handoff = false
[integrations.mail.smtp]
host = "127.0.0.1"
port = 1
tls = "none"
"#,
        flows = r.join("benches/latency-flows").display(),
        silero = r.join("models/turn/silero_vad.onnx").display(),
        smart = r.join("models/turn/smart-turn-v3.2-cpu.onnx").display(),
        voices = r.join("voices").display(),
        ort = r.join("models/onnxruntime/libonnxruntime.so").display(),
        cache = dir.join("tts-cache").display(),
        model = r.join(&stt_model).display(),
        db = dir.join("ivr.db").display(),
        drafts = dir.join("drafts").display(),
        announcements = dir.join("announcements").display(),
    );
    EngineConfig::parse(&text).expect("harness engine config")
}

fn main() {
    let a = args();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = engine_config(dir.path());
    // What the callers say, per kind of turn.
    let tts = ivr_tts::Tts::new(cfg.tts.clone()).expect("the engine's voices for the harness");
    let mut kinds_json = Vec::new();
    let speech: Vec<Arc<Speech>> = KINDS
        .iter()
        .map(|k| {
            let (s, source) = match k.speech {
                Said::File(id) => {
                    let path = root()
                        .join("tests/vectors/speech/g711")
                        .join(format!("{id}.wav"));
                    (
                        load_speech(&path),
                        format!("tests/vectors/speech/g711/{id}.wav"),
                    )
                }
                Said::Synth(text) => (
                    synthesised_speech(&tts, text, k.lang),
                    format!(
                        "synthesised by the engine's {} voice: {text}",
                        k.lang.code()
                    ),
                ),
            };
            let end_ms = (s.last_speech_packet + 1) * 20;
            println!(
                "latency: {:<9} {} ({} ms; speech ends at {end_ms} ms, last frame above RMS {:.0})",
                k.name,
                source,
                s.packets.len() * 20,
                s.threshold_rms
            );
            kinds_json.push(serde_json::json!({
                "kind": k.name,
                "lang": k.lang.code(),
                "called": k.called,
                "said": source,
                "duration_ms": s.packets.len() * 20,
                "speech_end_ms": end_ms,
            }));
            Arc::new(s)
        })
        .collect();
    // What the browser callers say: the same utterances, wideband.
    let mut browser_kinds_json = Vec::new();
    let browser_speech: Vec<Arc<latency_webrtc::BrowserSpeech>> = if a.webrtc {
        KINDS
            .iter()
            .map(|k| {
                let (pcm, source) = match k.speech {
                    Said::File(id) => latency_webrtc::load_wideband(id),
                    Said::Synth(text) => {
                        use ivr_tts::TextToSpeech;
                        let pcm = tts
                            .synthesize_lang(text, k.lang)
                            .expect("synthesis for the harness");
                        (Arc::unwrap_or_clone(pcm), format!("synthesised by the engine's {} voice: {text}", k.lang.code()))
                    }
                };
                let s = latency_webrtc::browser_speech(&pcm);
                let end_ms = (s.last_speech_packet + 1) * 20;
                println!(
                    "latency: {:<9} browser: {source} ({} ms; speech ends at {end_ms} ms, last frame above RMS {:.0})",
                    k.name,
                    s.duration_ms(),
                    s.threshold_rms
                );
                browser_kinds_json.push(serde_json::json!({
                    "kind": k.name,
                    "said": source,
                    "duration_ms": s.duration_ms(),
                    "speech_end_ms": end_ms,
                }));
                Arc::new(s)
            })
            .collect()
    } else {
        Vec::new()
    };
    drop(tts);
    if let Some(on) = a.smart_turn {
        cfg.turn.smart_turn = on;
    }
    if let Some(v) = &a.vad {
        cfg.turn.vad = match v.as_str() {
            "silero" => ivr_engine::config::VadKind::Silero,
            "energy" => ivr_engine::config::VadKind::Energy,
            other => panic!("--vad silero|energy, not {other}"),
        };
    }
    if let Some(t) = a.stt_threads {
        cfg.stt.threads = t;
    }
    if let Some(w) = a.stt_workers {
        cfg.stt.workers = w;
    }
    if let Some(t) = a.stt_idle_threads {
        cfg.stt.idle_threads = t;
    }
    if let Some(ms) = a.eager_stt_ms {
        cfg.media.eager_stt_ms = ms;
    }
    if let Some(ms) = a.end_silence_ms {
        cfg.media.end_silence_ms = ms;
    }
    if let Err(e) = cfg.validate() {
        eprintln!("latency: {e}");
        std::process::exit(2);
    }
    let media_desc = serde_json::json!({
        "vad": format!("{:?}", cfg.turn.vad).to_lowercase(),
        "smart_turn": cfg.turn.smart_turn,
        "smart_turn_silence_ms": cfg.turn.smart_turn_silence_ms,
        "smart_turn_threshold": cfg.turn.smart_turn_threshold,
        "fallback_silence_ms": cfg.turn.fallback_silence_ms,
        "end_silence_ms": cfg.media.end_silence_ms,
        "eager_stt_ms": cfg.media.eager_stt_ms,
    });
    let stt_desc = serde_json::json!({
        "threads": cfg.stt.effective_threads(),
        "idle_threads": cfg.stt.effective_idle_threads(),
        "workers": cfg.stt.effective_workers(),
        "queue": cfg.stt.queue,
    });
    // The engine on its own runtime, as `ivr serve` builds it.
    let engine_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("engine runtime");
    let t_start = Instant::now();
    let engine = engine_rt
        .block_on(ivr_engine::engine::start(cfg))
        .unwrap_or_else(|e| {
            eprintln!("latency: engine did not start: {e}");
            std::process::exit(2);
        });
    println!(
        "latency: engine started in {:.1} s (STT {stt_desc}, media {media_desc})",
        t_start.elapsed().as_secs_f64()
    );
    let engine_sip = engine.sip_udp.expect("engine SIP UDP address");
    // The operator who places the browser calls.
    if a.webrtc {
        engine_rt.block_on(async {
            let db = ivr_integrations::db::Db::connect(&format!(
                "sqlite:{}",
                dir.path().join("ivr.db").display()
            ))
            .await
            .expect("the harness database");
            ivr_engine::console::accounts::Accounts::new(db)
                .add_user(
                    OPERATOR,
                    OPERATOR_PASSWORD,
                    &ivr_engine::console::accounts::Scope::Central,
                    ivr_engine::console::accounts::Role::Operator,
                    chrono::Utc::now(),
                )
                .await
                .expect("the harness's operator");
        });
    }
    let engine_http = engine.http;
    let timings = Arc::new(Mutex::new(HashMap::<SocketAddr, Vec<TurnTiming>>::new()));
    let lagged = Arc::new(AtomicUsize::new(0));
    {
        let mut rx = engine.turn_timings();
        let (timings, lagged) = (timings.clone(), lagged.clone());
        engine_rt.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match rx.recv().await {
                    Ok(t) => timings
                        .lock()
                        .unwrap()
                        .entry(t.rtp_local)
                        .or_default()
                        .push(t),
                    Err(RecvError::Lagged(n)) => {
                        lagged.fetch_add(n as usize, Ordering::Relaxed);
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    // The callers on a runtime of their own (one thread).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("caller runtime");
    let report = rt.block_on(async {
        let (svc, events) = SipService::start(
            SipListenConfig {
                udp: vec!["127.0.0.1:0".parse().expect("addr")],
                tcp: vec![],
                advertised: None,
                ..Default::default()
            },
            |adv| {
                let mut c = EndpointConfig::new(adv);
                c.max_calls = 10_000;
                c.rate_limit.per_second = 1e6;
                c.rate_limit.burst = 1e6;
                c.user_agent = "ivr-latency-harness".into();
                c
            },
        )
        .await
        .expect("caller SIP endpoint");
        let router = Router::spawn(events);
        let console = if a.webrtc {
            let http = engine_http.expect("the engine's HTTP listener (console API)");
            match latency_webrtc::Console::login(http, OPERATOR, OPERATOR_PASSWORD).await {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("latency: console login failed: {e}");
                    std::process::exit(1);
                }
            }
        } else {
            None
        };
        let h = Arc::new(Harness {
            webrtc: AtomicBool::new(false),
            console,
            browser_speech: browser_speech.clone(),
            sip: svc.handle(),
            router,
            engine_sip,
            speech: speech.clone(),
            timings: timings.clone(),
            timings_lagged: lagged.clone(),
            active: Arc::new(AtomicUsize::new(0)),
        });
        // Warm-up call (not counted): first synthesis of the reply, whisper's
        // first run; also gives the length of one call for the stagger.
        let t = Instant::now();
        let warm = h.call("+4529999999", 0, 1, Instant::now()).await;
        let cycle = t.elapsed();
        if let Some(e) = &warm.error {
            eprintln!("latency: warm-up call failed: {e}");
            std::process::exit(1);
        }
        println!(
            "latency: warm-up call {:.1} s, reply {:.0} ms after speech end (step {})",
            cycle.as_secs_f64(),
            warm.total
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(f64::NAN),
            warm.engine.as_ref().map(|e| e.step.as_str()).unwrap_or("?")
        );
        // The browser calls' warm-up (their own call length, with ICE and DTLS).
        let browser_cycle =
            if a.webrtc {
                h.webrtc.store(true, Ordering::Relaxed);
                let t = Instant::now();
                let w = h.call("browser", 0, 1, Instant::now()).await;
                h.webrtc.store(false, Ordering::Relaxed);
                if let Some(e) = &w.error {
                    eprintln!("latency: browser warm-up call failed: {e}");
                    std::process::exit(1);
                }
                println!(
                "latency: browser warm-up call {:.1} s, reply {:.0} ms after speech end (step {})",
                t.elapsed().as_secs_f64(),
                w.total.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN),
                w.engine.as_ref().map(|e| e.step.as_str()).unwrap_or("?")
            );
                t.elapsed()
            } else {
                cycle
            };
        let header = format!(
            "{:>5} {:>5} {:>5} {:>13} {} {:>11} {:>3} {:>3} {}\n{:>5} {:>5} {:>5} {:>13} {} {:>11}",
            "calls",
            "turns",
            "eager",
            "total",
            STAGES.map(|s| format!("{s:^11}")).join(" "),
            "stt queue",
            "err",
            "ref",
            "p95<1s",
            "",
            "",
            "",
            "med/p95 ms",
            STAGES.map(|_| format!("{:^11}", "med/p95")).join(" "),
            "med/p95"
        );
        println!("{header}");
        let mut done: Vec<LevelSummary> = Vec::new();
        let mut browser_done: Vec<LevelSummary> = Vec::new();
        for &n in &a.levels {
            if a.sip {
                if a.webrtc {
                    println!("sip (phone calls):");
                }
                done.push(measure(&h, n, cycle, a.min_turns).await);
            }
            if a.webrtc {
                println!("webrtc (browser calls):");
                h.webrtc.store(true, Ordering::Relaxed);
                browser_done.push(measure(&h, n, browser_cycle, a.min_turns).await);
                h.webrtc.store(false, Ordering::Relaxed);
            }
        }
        // Search: the largest n whose p95 stays under 1 s.
        let mut lo = done
            .iter()
            .filter(|s| s.passed)
            .map(|s| s.n)
            .max()
            .unwrap_or(0);
        let mut hi = done
            .iter()
            .filter(|s| !s.passed && s.n > lo)
            .map(|s| s.n)
            .min();
        // (The phone calls' search only.)
        for _ in 0..if a.sip { a.search_levels } else { 0 } {
            let next = match hi {
                Some(hi) if hi - lo <= 1 => break,
                Some(hi) => (lo + hi) / 2,
                None if lo >= a.max_calls => break,
                None => (lo + lo / 2).max(lo + 1).min(a.max_calls),
            };
            if next == 0 {
                break;
            }
            let s = measure(&h, next, cycle, a.min_turns).await;
            if s.passed {
                lo = lo.max(next);
            } else {
                hi = Some(hi.map_or(next, |h| h.min(next)));
            }
            done.push(s);
        }
        done.sort_by_key(|s| s.n);
        let lagged = h.timings_lagged.load(Ordering::Relaxed);
        drop(svc);
        let browser = (browser_done, browser_cycle);
        (done, lo, hi, cycle, warm, lagged, browser)
    });
    let (levels, lo, hi, cycle, warm, lagged, (browser_levels, browser_cycle)) = report;
    let resolution = match hi {
        Some(h) => format!("{lo} passes, {h} fails"),
        None => format!("{lo} passes; nothing above it was tried"),
    };
    // (Searched for the phone calls only.)
    if a.sip {
        println!("latency: largest number of concurrent calls with p95 < 1 s: {lo} ({resolution})");
    }
    for s in &levels {
        if !s.passed && s.p95_ms.is_finite() && s.p95_ms < 1000.0 {
            println!(
                "latency: {} calls failed for errors or refused utterances, not p95 (see turn_errors, stt_refused)",
                s.n
            );
        }
    }
    let json = serde_json::json!({
        "bench": "latency",
        "cores": cores,
        "kinds": kinds_json,
        "speech_end_rule": "last 20 ms frame with RMS within 40 dB of the loudest frame",
        "flows": "benches/latency-flows (one number per kind of turn and language; the question is the flow's first step)",
        "engine": {"stt": stt_desc, "media": media_desc},
        "caller": {
            "quiet_before_speaking_ms": QUIET.as_millis() as u64,
            "reply_rms_threshold": REPLY_RMS,
            "call_length_s": cycle.as_secs_f64(),
        },
        "stages": {
            "endpointing": "end of speech (ground truth) -> engine endpointed the utterance",
            "stt": "-> transcript back in the call task (queue + recognition + hand-over; in eager turns only what was left of the speculative recognition when the end was confirmed)",
            "flow": "-> first reply prompt requested (interpreter + dispatch)",
            "tts": "-> first reply audio handed to the media session",
            "pacing": "-> first reply RTP packet sent (next 20 ms slot)",
            "wire": "-> first non-silent reply packet received by the caller",
        },
        "warmup": {
            "total_ms": warm.total.map(|d| d.as_secs_f64() * 1000.0),
            "step": warm.engine.as_ref().map(|e| e.step.clone()),
        },
        "pass_rule": "p95 of total < 1000 ms, every counted turn answered, no utterance refused by the STT queue",
        "levels": levels.iter().map(|s| s.json.clone()).collect::<Vec<_>>(),
        "max_concurrency_p95_under_1s": lo,
        "first_failing_concurrency": hi,
        "turn_timings_lagged": lagged,
        "transports": match (a.sip, a.webrtc) {
            (true, true) => "sip and webrtc, one after the other at each level, same engine",
            (false, true) => "webrtc",
            _ => "sip",
        },
        "webrtc_caller": a.webrtc.then(|| serde_json::json!({
            "signalling": "POST /api/v1/calls/webrtc as a logged-in operator (session cookie + CSRF token), with the kind's number; DELETE to hang up",
            "peer": "str0m client (full ICE, controlling) against the engine's ICE-lite host candidate, DTLS-SRTP, RTP mode",
            "audio": "Opus from libopus, 48 kHz mono VoIP 32 kbit/s VBR with in-band FEC, 20 ms packets; the speech set's wideband (16 kHz) files",
            "kinds": browser_kinds_json,
            "call_length_s": browser_cycle.as_secs_f64(),
        })),
        "webrtc_levels": browser_levels.iter().map(|s| s.json.clone()).collect::<Vec<_>>(),
    });
    let out = root().join("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let path = out.join("latency.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json"))
        .expect("write latency.json");
    println!("latency: wrote {}", path.display());
    engine_rt.block_on(engine.shutdown(Duration::from_secs(1)));
}
