//! A call on simulated time: the engine's [`CallCore`] and a caller made of
//! `ivr-media`'s own [`MediaSession`] (the fake RTP peer: it plays speech
//! files and RFC 4733 keys as RTP and hears the core's RTP), with the core's
//! jobs answered by `ScriptedTts`/`ScriptedStt` (or a real TTS) after
//! scripted delays. No sockets, no sleeping, no models: time jumps from one
//! deadline to the next.

#![allow(dead_code, unreachable_pub)] // a test helper module: each test file uses part of it

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ivr_core::{CallId, Dtmf, FixedClock, Pcm, Pii};
use ivr_engine::call::core::{
    CallCore, CallEvent, CallSetup, CallTimings, CoreConfig, Done, Input, Job, Output, SipCommand,
    SipEvent,
};
use ivr_engine::call::srtp::SrtpSession;
use ivr_engine::call::{jobs, sdp};
use ivr_engine::records::CallRecordRow;
use ivr_engine::speech::SpeechPool;
use ivr_flow::semantic::SentenceEncoder;
use ivr_flow::{FlowStore, Request, Response};
use ivr_media::endpointing::EndpointingConfig;
use ivr_media::rtp::{parse_rtp, LatchPolicy};
use ivr_media::{
    Codec, MediaEvent, MediaParams, MediaSession, Output as MediaOutput, PacketKind, PlayOptions,
    SessionConfig,
};
use ivr_sip::sdp::crypto::Crypto;
use ivr_sip::sdp::{
    Attribute, LocalMedia, LocalSrtp, SdpConfig, SrtpKeyMaterial, SrtpParams, SrtpSuite,
};
use ivr_stt::{LanguageChoice, ScriptedStt};
use ivr_tts::{ScriptedTts, TextToSpeech};

/// The engine's RTP address in the simulated call.
pub const ENGINE_RTP: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 20_000);
/// The caller's RTP address.
pub const CALLER_RTP: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 30_000);

/// A Wednesday, 10:00 in Copenhagen: every department of the shipped flows is open.
pub fn wednesday_morning() -> DateTime<Utc> {
    "2026-12-02T09:00:00Z".parse().expect("valid instant")
}

/// The repository's shipped flows.
pub fn shipped_flows() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows")
}

/// The caller's SDP offer (PCMA + telephone-event) with `direction`.
pub fn offer(version: u32, direction: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=caller 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\na=ptime:20\r\na={direction}\r\n"
    )
    .into_bytes()
}

/// The caller's SRTP offer (RTP/SAVP, AES_CM_128_HMAC_SHA1_80 with `keys`).
pub fn srtp_offer(keys: &SrtpKeyMaterial) -> Vec<u8> {
    let Attribute::Other {
        value: Some(crypto),
        ..
    } = Crypto {
        tag: 1,
        suite: SrtpSuite::AesCm128HmacSha1_80,
        key: keys.key_for(SrtpSuite::AesCm128HmacSha1_80),
    }
    .attribute()
    else {
        unreachable!("a=crypto is printed raw")
    };
    format!(
        "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 30000 RTP/SAVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\na=crypto:{crypto}\r\n"
    )
    .into_bytes()
}

/// A speech file of `ivr-media`'s test data (8 kHz).
pub fn speech_file(name: &str) -> Pcm {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ivr-media/tests/data")
        .join(name);
    ivr_tts::load_prompt(&path, 8_000).expect("speech test file")
}

/// One utterance in brown noise: speech from 0.8 s to 3.05 s of 4.05 s.
pub fn utterance() -> Pcm {
    speech_file("utterance_in_brown_noise_8k.wav")
}

/// `pcm` cut to `[from, to)` seconds.
pub fn cut(pcm: &Pcm, from: f64, to: f64) -> Vec<i16> {
    let r = f64::from(pcm.sample_rate);
    let a = ((from * r) as usize).min(pcm.samples.len());
    let b = ((to * r) as usize).min(pcm.samples.len());
    pcm.samples[a..b].to_vec()
}

/// Polls a future that is ready at once (the scripted recogniser's).
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a scripted job did not finish at once"),
    }
}

/// What the world outside the core did, and when.
#[derive(Default)]
pub struct Log {
    /// SIP commands the core gave.
    pub sip: Vec<(Instant, SipCommand)>,
    /// Every RTP packet to the caller: whether it carried audio (not silence).
    pub rtp: Vec<(Instant, bool)>,
    /// Texts the core asked to synthesise, and whether they were personal.
    pub said: Vec<(Instant, String, bool)>,
    /// Recognitions asked for: the language choice.
    pub choices: Vec<(Instant, LanguageChoice)>,
    /// Recognitions asked for: whether speculative.
    pub recognitions: Vec<(Instant, bool)>,
    /// Speculative recognitions asked for: their withdrawal handles.
    pub speculations: Vec<(Instant, ivr_stt::Cancel)>,
    /// End-of-turn verdicts asked for: the audio's length.
    pub turn_checks: Vec<(Instant, Duration)>,
    /// Meanings of the caller's words asked for ([`Job::Embed`]).
    pub embeds: Vec<Instant>,
    /// Integration requests.
    pub invoked: Vec<(Instant, Request)>,
    /// Prompt files asked for.
    pub files: Vec<(Instant, PathBuf)>,
    /// What the caller's media session noticed (keys it heard, ...).
    pub caller_events: Vec<(Instant, MediaEvent)>,
    /// Turn timings and eager outcomes.
    pub events: Vec<(Instant, CallEvent)>,
    /// The call record, once the call is over.
    pub record: Option<(Instant, CallRecordRow)>,
    /// SRTP call: packets from the core the caller could not authenticate.
    pub undecryptable: usize,
}

enum Due {
    Done(Done),
    Sip(SipEvent),
}

/// The end-of-turn model's delay and verdict, per tentative end.
pub type TurnVerdicts = Box<dyn FnMut(&Pcm) -> (Duration, Option<f32>)>;

/// An integration's delay and answer, per request.
pub type Integrations = Box<dyn FnMut(&Request) -> (Duration, Response)>;

/// How the simulated world answers.
pub struct World {
    /// Time to the first synthesised piece (and between pieces).
    pub tts_delay: Duration,
    /// Time a recognition takes.
    pub stt_delay: Duration,
    /// An integration's delay and answer.
    pub invoke: Integrations,
    /// What comes back after a REFER (None: nothing ever).
    pub refer: Box<dyn FnMut() -> Option<(Duration, SipEvent)>>,
    /// The end-of-turn model: its delay and verdict (probability complete).
    pub turn_verdict: TurnVerdicts,
    /// Time the meaning of a caller's words takes ([`Job::Embed`]).
    pub embed_delay: Duration,
}

impl Default for World {
    fn default() -> Self {
        World {
            tts_delay: Duration::from_millis(30),
            stt_delay: Duration::from_millis(300),
            invoke: Box::new(|_| (Duration::from_millis(100), Response::Ok)),
            refer: Box::new(|| {
                Some((
                    Duration::from_millis(500),
                    SipEvent::TransferResult {
                        success: true,
                        status: Some(200),
                    },
                ))
            }),
            turn_verdict: Box::new(|_| (Duration::from_millis(40), Some(0.9))),
            embed_delay: Duration::from_millis(25),
        }
    }
}

/// Settings of a simulated call.
pub struct Options {
    /// Timing policies.
    pub timings: CallTimings,
    /// Endpointing.
    pub endpointing: EndpointingConfig,
    /// No RTP for this long ends the call.
    pub media_timeout: Duration,
    /// Nothing from the caller within this long ends the call (zero: off).
    pub first_media_timeout: Duration,
    /// Which source addresses the call's media is taken from.
    pub latch: LatchPolicy,
    /// Text to speech (default: ScriptedTts at 16 kHz).
    pub tts: Arc<dyn TextToSpeech>,
    /// Wall time of the call.
    pub wall: DateTime<Utc>,
    /// An end-of-turn model with this threshold (None: none).
    pub smart_turn: Option<f32>,
    /// A speculative transcript that answers the question ends the turn
    /// (closed answers, or open ones too when they sound finished).
    pub end_on_answer: Option<ivr_flow::Answers>,
    /// The call is SRTP (RTP/SAVP with SDES keys both ways; SRTP required).
    pub srtp: bool,
    /// Crisis announcements in force (as the console sets them).
    pub crisis: Option<ivr_engine::console::announce::Announcements>,
    /// Whether the recogniser is full (None: never).
    pub speech_full: Option<ivr_engine::call::core::SpeechFull>,
    /// The municipality's sentence encoder (None: intents by words alone).
    pub encoder: Option<Arc<dyn SentenceEncoder>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timings: CallTimings::default(),
            endpointing: EndpointingConfig::default(),
            media_timeout: Duration::from_secs(30),
            first_media_timeout: Duration::ZERO,
            latch: LatchPolicy::default(),
            tts: Arc::new(ScriptedTts::new(16_000)),
            wall: wednesday_morning(),
            smart_turn: None,
            end_on_answer: None,
            srtp: false,
            crisis: None,
            speech_full: None,
            encoder: None,
        }
    }
}

/// One simulated call.
pub struct Sim {
    /// The engine's side.
    pub core: CallCore,
    /// The caller's media.
    pub caller: MediaSession,
    /// The call's start (the 200 OK).
    pub t0: Instant,
    /// Simulated now.
    pub now: Instant,
    /// The scripted recogniser (push transcripts before the caller speaks).
    pub stt: Arc<ScriptedStt>,
    pool: SpeechPool,
    tts: Arc<dyn TextToSpeech>,
    /// How the world answers jobs.
    pub world: World,
    due: Vec<(Instant, Due)>,
    core_next: Instant,
    caller_next: Instant,
    /// The caller sends no RTP (e.g. while it holds the call `inactive`).
    pub caller_muted: bool,
    /// The caller's SRTP contexts on an SRTP call.
    pub caller_srtp: Option<SrtpSession>,
    /// What happened.
    pub log: Log,
}

impl Sim {
    /// A call to `called` in the flows at `flows`, answered (200 sent) but not yet acknowledged.
    pub fn ringing(flows: &Path, called: &str, opts: Options) -> Sim {
        let (store, _) = FlowStore::load_with(flows, opts.encoder.clone()).expect("flows load");
        let route = store.route(called).expect("the number is routed");
        let (route, announcement_audio) = match &opts.crisis {
            Some(a) => a.apply(route, opts.wall),
            None => (route, None),
        };
        let mut local = LocalMedia::new(ENGINE_RTP.ip(), ENGINE_RTP.port(), 42);
        let caller_keys = SrtpKeyMaterial::new([0xca; SrtpKeyMaterial::LEN]);
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let the_offer = if opts.srtp {
            local.srtp = Some(LocalSrtp {
                required: true,
                keys: SrtpKeyMaterial::new([0xe9; SrtpKeyMaterial::LEN]),
            });
            srtp_offer(&caller_keys)
        } else {
            offer(1, "sendrecv")
        };
        let answered = sdp::answer_invite(Some(&the_offer), &local, &SdpConfig::default())
            .expect("the offer is answered");
        let caller_srtp = opts.srtp.then(|| {
            let body = String::from_utf8_lossy(&answered.body).into_owned();
            let line = body
                .lines()
                .find_map(|l| l.strip_prefix("a=crypto:"))
                .expect("the answer carries the engine's key");
            let theirs = Crypto::parse(line).expect("a usable crypto line");
            SrtpSession::new(&SrtpParams {
                suite,
                local: caller_keys.key_for(suite),
                remote: theirs.key,
            })
            .expect("caller SRTP")
        });
        let setup = CallSetup {
            call_ref: CallId::from_u64(7),
            prompts_dir: flows.join(&route.municipality.id),
            announcement_audio,
            route,
            calling: Pii::new("+4522334455".into()),
            called: Pii::new(called.into()),
            source: "127.0.0.1:5070".parse().expect("address"),
            local,
            answered,
            seed: 0x1234_5678_9abc_def0,
        };
        let cfg = CoreConfig {
            timings: opts.timings,
            media_timeout: opts.media_timeout,
            first_media_timeout: opts.first_media_timeout,
            latch: opts.latch,
            endpointing: opts.endpointing,
            vad: None,
            smart_turn_threshold: opts.smart_turn,
            end_on_answer: opts.end_on_answer,
            sdp: SdpConfig::default(),
            transfer_domain: String::new(),
            keep_transcripts: false,
            clock: Arc::new(FixedClock(opts.wall)),
            stopwatch: None,
            speech_full: opts.speech_full.clone(),
        };
        let t0 = Instant::now();
        let core = CallCore::new(setup, cfg, t0);
        let params = MediaParams {
            codec: Codec::Pcma,
            payload_type: 8,
            telephone_event_pt: Some(101),
            ptime: Duration::from_millis(20),
            remote_rtp: ENGINE_RTP,
            remote_rtcp: None,
        };
        // The caller starts sending RTP (comfort noise) when it sends the ACK.
        let caller = MediaSession::new(
            params,
            SessionConfig {
                ssrc: 0xca11e4,
                ..SessionConfig::default()
            },
            t0,
        )
        .expect("caller media");
        let stt = Arc::new(ScriptedStt::new());
        Sim {
            core,
            caller,
            t0,
            now: t0,
            pool: SpeechPool::new(stt.clone(), 2),
            stt,
            tts: opts.tts,
            world: World::default(),
            due: Vec::new(),
            core_next: t0,
            caller_next: t0,
            caller_muted: false,
            caller_srtp,
            log: Log::default(),
        }
    }

    /// A call to `called`, acknowledged at once.
    pub fn answered(flows: &Path, called: &str, opts: Options) -> Sim {
        let mut s = Sim::ringing(flows, called, opts);
        s.sip(SipEvent::Confirmed(None));
        s
    }

    /// Milliseconds since the 200 OK.
    pub fn ms(&self, at: Instant) -> u128 {
        at.saturating_duration_since(self.t0).as_millis()
    }

    /// A SIP event reaches the call now.
    pub fn sip(&mut self, ev: SipEvent) {
        self.core.handle_input(Input::Sip(ev), self.now);
        self.drain_core();
    }

    /// The caller starts saying `pcm` now.
    pub fn say(&mut self, pcm: &Pcm) {
        self.caller
            .play(pcm, PlayOptions { barge_in: false })
            .expect("caller audio queued");
    }

    /// The caller presses a key now (RFC 4733 in the RTP stream).
    pub fn press(&mut self, key: Dtmf) {
        self.caller.send_dtmf(key).expect("telephone-event");
    }

    /// The call is over (its record handed out).
    pub fn done(&self) -> bool {
        self.log.record.is_some()
    }

    /// Runs the call for `d` of simulated time (or until it is over).
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until, |_| false);
    }

    /// Runs until `stop` holds (true) or `until` passes / the call ends (false).
    pub fn run_until(&mut self, until: Instant, mut stop: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            self.deliver_due();
            self.drain_core();
            self.drain_caller();
            if stop(self) {
                return true;
            }
            if self.done() {
                return false;
            }
            let next_due = self.due.iter().map(|(t, _)| *t).min();
            let next = [Some(self.core_next), Some(self.caller_next), next_due]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until);
            if next > until {
                self.now = until;
                self.drain_core();
                return stop(self);
            }
            if next > self.now {
                self.now = next;
            }
            if self.now >= self.core_next {
                self.core.handle_input(Input::Timeout, self.now);
            }
        }
    }

    /// Runs until `stop` holds, for at most `max`; panics otherwise.
    pub fn expect_within(&mut self, max: Duration, what: &str, stop: impl FnMut(&Sim) -> bool) {
        let until = self.now + max;
        assert!(
            self.run_until(until, stop),
            "{what}: not within {max:?} (at {} ms; said {:?}; sip {:?})",
            self.ms(self.now),
            self.said(),
            self.log.sip.iter().map(|(_, c)| c).collect::<Vec<_>>()
        );
    }

    /// Every text the core had synthesised, in order.
    pub fn said(&self) -> Vec<String> {
        self.log.said.iter().map(|(_, t, _)| t.clone()).collect()
    }

    /// Whether a text containing `needle` was asked for.
    pub fn has_said(&self, needle: &str) -> bool {
        self.log.said.iter().any(|(_, t, _)| t.contains(needle))
    }

    /// When the first barge-in happened.
    pub fn barge_in_at(&self) -> Option<Instant> {
        self.log
            .events
            .iter()
            .find(|(_, e)| matches!(e, CallEvent::BargeIn))
            .map(|(at, _)| *at)
    }

    /// When the first text containing `needle` was asked for.
    pub fn said_at(&self, needle: &str) -> Option<Instant> {
        self.log
            .said
            .iter()
            .find(|(_, t, _)| t.contains(needle))
            .map(|(at, _, _)| *at)
    }

    /// RTP packets with audio sent in `[from, to)`.
    pub fn audio_packets(&self, from: Instant, to: Instant) -> usize {
        self.log
            .rtp
            .iter()
            .filter(|(at, audio)| *audio && *at >= from && *at < to)
            .count()
    }

    /// The last RTP packet with audio.
    pub fn last_audio(&self) -> Option<Instant> {
        self.log
            .rtp
            .iter()
            .rev()
            .find(|(_, a)| *a)
            .map(|(at, _)| *at)
    }

    /// Whether the core asked for a BYE.
    pub fn hung_up(&self) -> bool {
        self.log
            .sip
            .iter()
            .any(|(_, c)| matches!(c, SipCommand::Hangup))
    }

    /// The call record (panics before the end).
    pub fn record(&self) -> &CallRecordRow {
        &self.log.record.as_ref().expect("the call is over").1
    }

    fn deliver_due(&mut self) {
        let now = self.now;
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.due)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        self.due = later;
        let mut ready = ready;
        ready.sort_by_key(|(t, _)| *t);
        for (_, d) in ready {
            let input = match d {
                Due::Done(d) => Input::Done(d),
                Due::Sip(e) => Input::Sip(e),
            };
            self.core.handle_input(input, now);
        }
    }

    fn drain_core(&mut self) {
        let now = self.now;
        loop {
            match self.core.poll_output(now) {
                Output::Transmit(t) => match t.kind {
                    PacketKind::Rtp => {
                        let wire = t.bytes.to_vec();
                        let bytes = match self.caller_srtp.as_mut() {
                            None => wire,
                            // What the caller cannot authenticate it does not hear.
                            Some(s) => match s.unprotect_rtp(&wire) {
                                Ok(plain) => plain.to_vec(),
                                Err(_) => {
                                    self.log.undecryptable += 1;
                                    continue;
                                }
                            },
                        };
                        let audio = parse_rtp(&bytes).is_ok_and(|p| {
                            p.payload_type == 8 && {
                                let e: f64 = p
                                    .payload
                                    .iter()
                                    .map(|b| f64::from(ivr_media::g711::alaw_to_linear(*b)).powi(2))
                                    .sum();
                                (e / p.payload.len().max(1) as f64).sqrt() > 100.0
                            }
                        });
                        self.log.rtp.push((now, audio));
                        let _ = self.caller.handle_rtp(&bytes, ENGINE_RTP, now);
                    }
                    PacketKind::Rtcp => {
                        let wire = t.bytes.to_vec();
                        let bytes = match self.caller_srtp.as_mut() {
                            None => wire,
                            Some(s) => match s.unprotect_rtcp(&wire) {
                                Ok(plain) => plain.to_vec(),
                                Err(_) => {
                                    self.log.undecryptable += 1;
                                    continue;
                                }
                            },
                        };
                        let from = SocketAddr::new(ENGINE_RTP.ip(), ENGINE_RTP.port() + 1);
                        let _ = self.caller.handle_rtcp(&bytes, from, now);
                    }
                },
                Output::Sip(cmd) => {
                    if let SipCommand::Refer { .. } = &cmd {
                        if let Some((d, ev)) = (self.world.refer)() {
                            self.due.push((now + d, Due::Sip(ev)));
                        }
                    }
                    self.log.sip.push((now, cmd));
                }
                Output::Job(job) => self.job(job),
                Output::Event(e) => self.log.events.push((now, e)),
                Output::Finished(row) => {
                    self.log.record = Some((now, *row));
                    self.core_next = now + Duration::from_secs(3600);
                    return;
                }
                Output::Timeout(at) => {
                    self.core_next = at;
                    return;
                }
            }
        }
    }

    fn drain_caller(&mut self) {
        let now = self.now;
        loop {
            match self.caller.poll_output(now) {
                MediaOutput::Transmit(t) => {
                    if self.log.record.is_some() || self.caller_muted {
                        continue;
                    }
                    let bytes = match (self.caller_srtp.as_mut(), t.kind) {
                        (None, _) => t.bytes.to_vec(),
                        (Some(s), PacketKind::Rtp) => {
                            s.protect_rtp(t.bytes).expect("caller SRTP").to_vec()
                        }
                        (Some(s), PacketKind::Rtcp) => {
                            s.protect_rtcp(t.bytes).expect("caller SRTCP").to_vec()
                        }
                    };
                    let input = match t.kind {
                        PacketKind::Rtp => Input::Rtp {
                            bytes: &bytes,
                            from: CALLER_RTP,
                        },
                        PacketKind::Rtcp => Input::Rtcp {
                            bytes: &bytes,
                            from: SocketAddr::new(CALLER_RTP.ip(), CALLER_RTP.port() + 1),
                        },
                    };
                    self.core.handle_input(input, now);
                }
                MediaOutput::Event(e) => self.log.caller_events.push((now, e)),
                MediaOutput::Timeout(at) => {
                    self.caller_next = at;
                    return;
                }
            }
        }
    }

    fn job(&mut self, job: Job) {
        let now = self.now;
        match job {
            Job::Synthesize {
                id,
                speech,
                lang,
                rate,
            } => {
                self.log
                    .said
                    .push((now, speech.expose().to_string(), speech.is_personal()));
                let mut at = now;
                let delay = self.world.tts_delay;
                let mut pieces = Vec::new();
                jobs::synthesize(&*self.tts, id, &speech, lang, rate, |d| {
                    pieces.push(d);
                    true
                });
                for p in pieces {
                    at += delay;
                    self.due.push((at, Due::Done(p)));
                }
            }
            Job::PlayFile { id, path, rate } => {
                self.log.files.push((now, path.clone()));
                let pcm = match rate {
                    Some(r) => self.tts.prompt_file_at(&path, r),
                    None => self.tts.prompt_file(&path),
                }
                .ok();
                self.due.push((
                    now + self.world.tts_delay,
                    Due::Done(Done::Audio {
                        id,
                        pcm,
                        last: true,
                    }),
                ));
            }
            Job::Recognize {
                id,
                pcm,
                choice,
                hints,
                eager,
                cancel,
            } => {
                self.log.recognitions.push((now, eager));
                self.log.choices.push((now, choice.clone()));
                if eager {
                    self.log.speculations.push((now, cancel.clone()));
                }
                let timed = if eager {
                    match self.pool.recognize_if_idle(pcm, choice, hints, cancel) {
                        Some(f) => ready(f),
                        None => {
                            self.core
                                .handle_input(Input::Done(Done::Declined { id }), now);
                            return;
                        }
                    }
                } else {
                    ready(self.pool.recognize(pcm, choice, hints))
                };
                let stt = ivr_engine::turns::SttTiming {
                    queued: timed.queued,
                    processing: timed.processing,
                    recognised: timed.result.is_ok(),
                    passes: 1,
                    encoder_reused: timed.encoder_reused,
                };
                self.due.push((
                    now + self.world.stt_delay,
                    Due::Done(Done::Transcript {
                        id,
                        result: timed.result,
                        stt,
                    }),
                ));
            }
            Job::EndOfTurn { id, pcm } => {
                let len = Duration::from_secs_f64(
                    pcm.samples.len() as f64 / f64::from(pcm.sample_rate.max(1)),
                );
                self.log.turn_checks.push((now, len));
                let (d, complete) = (self.world.turn_verdict)(&pcm);
                self.due
                    .push((now + d, Due::Done(Done::EndOfTurn { id, complete })));
            }
            Job::Embed { id, wanted } => {
                self.log.embeds.push(now);
                // Made now (the scripted encoder is instant); it comes back
                // after the scripted delay.
                let meaning = wanted.make();
                self.due.push((
                    now + self.world.embed_delay,
                    Due::Done(Done::Meaning { id, meaning }),
                ));
            }
            Job::Invoke { id, request, .. } => {
                let (d, response) = (self.world.invoke)(&request);
                self.log.invoked.push((now, request));
                self.due
                    .push((now + d, Due::Done(Done::Response { id, response })));
            }
        }
    }
}
