//! The call core: one call's whole decision logic, sans-IO, in the shape of
//! str0m's `Rtc` (and of `ivr-media`'s [`MediaSession`], which it owns).
//!
//! ```text
//!  Input (+ now) --> handle_input --+                 +--> Output::Transmit  (RTP/RTCP to send now)
//!   Rtp / Rtcp datagrams            |                 +--> Output::Sip       (BYE, REFER, re-INVITE answers)
//!   Sip(SipEvent)                   |   CallCore      +--> Output::Job       (recognise, synthesise, play a
//!   Done(finished job, by id)       +-> MediaSession  |                       file, embed words, invoke)
//!   Timeout                         |   Interpreter   +--> Output::Event     (turn timings, eager outcomes)
//!                                   |   Listen, eager +--> Output::Finished  (the call record; then done)
//!                        poll_output(now) -------------+--> Output::Timeout   (call again then, or on input)
//! ```
//!
//! Nothing here opens a socket, spawns, sleeps or reads a clock: instants are
//! passed in, wall time for the flow comes from the configured
//! [`WallClock`], and the only other time source is an optional stopwatch
//! that measures the interpreter's own CPU time for the turn timings (never
//! used for a decision). The tokio task ([`super::task`]) owns the sockets
//! and the clock; tests drive the core on simulated time.
//!
//! Work the core cannot do itself leaves as a [`Job`] tagged with a
//! [`JobId`]; its result comes back as [`Done`] with the same id. A result
//! whose id is no longer awaited (the synthesis of a prompt the caller
//! barged into, a speculative transcript thrown away, an integration answer
//! after the caller hung up) is recognised and dropped.
//!
//! The meaning of a caller's words (the municipality's sentence encoder,
//! tens of milliseconds of CPU) is such a job too: a transcript the flow
//! would embed waits, the question still recognising, until its
//! [`Done::Meaning`] comes (see `ivr_flow::Interpreter::meaning_wanted`).
//!
//! Execution rules (the interpreter's contract, see `ivr_flow::interp`):
//! actions run in order; a `Say`/`Play` blocks the next action until its
//! audio is synthesised (and queued for playing), `Transfer` and `Hangup`
//! wait until the queued audio has played, `Invoke` blocks until its answer
//! (with a filler prompt after [`CallTimings::filler_after`]). A `Gather`
//! starts listening at once ([`super::listen`]): keys during the prompt
//! answer the question, and its no-input timer starts when the prompt has played.
//! A refused, unsent or unanswered transfer (after
//! [`CallTimings::transfer_timeout`]) comes back to the flow as
//! `Event::TransferFailed`. `RecognizeAgain` recognises the question's
//! utterance (kept in memory only while the question lasts) again,
//! identifying its language. On hold (a re-INVITE that leaves us not
//! sending) no RTP leaves, the question's timer waits, and a caller sending
//! nothing (`inactive`) is not taken for gone by the media timeout.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use ivr_core::{CallId, Dtmf, Lang, Pcm, Pii, Speech, WallClock};
use ivr_flow::{
    Action, Answers, CallContext, Event as FlowEvent, Interpreter, MeaningWanted, Outcome, Route,
};
use ivr_media::endpointing::EndpointingConfig;
use ivr_media::rtp::LatchPolicy;
use ivr_media::{
    MediaError, MediaEvent, MediaParams, MediaSession, Output as MediaOutput, PacketKind,
    PlayOptions, SessionConfig, Transmit,
};
use ivr_sip::msg::Uri;
use ivr_sip::sdp::{LocalMedia, LocalSession, Negotiated, SdpConfig, SessionDescription};
use ivr_stt::{Candidate, LanguageChoice};

use super::debug::{DebugEvent, DEBUG_QUEUE};

/// Keys kept for the next question that takes keys (a CPR number, a date
/// and a confirmation typed ahead fit); older keys give way to newer ones.
const TYPE_AHEAD_KEYS: usize = 32;
/// A key typed ahead this long ago is no answer to the question now asked.
const TYPE_AHEAD_FOR: Duration = Duration::from_secs(15);
pub use super::io::{CallEvent, Done, Input, Job, JobId, Output, SipCommand, SipEvent};
use super::listen::{Listen, Question};
use super::sdp::{self as call_sdp, Answered, ReInviteAnswer};
use super::srtp::{SrtpError, SrtpSession};
use crate::eager::{EagerCounts, EagerTurn, OnConfirmed, OnResult, OnTentative};
use crate::live::LiveView;
use crate::metrics::EagerOutcome;
use crate::records::{CallRecordRow, TurnLog};
use crate::speech::{Hints, Recognition, SpeechError};
use crate::turns::{SttTiming, TurnClock, TurnInput};

/// The timing policies of a call (`[sip]` and `[media]` in the engine's
/// configuration; the defaults are the configuration's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimings {
    /// How long to wait for the ACK of our 200 OK (`[sip] ack_timeout_s`, 40 s).
    pub ack_wait: Duration,
    /// Longest pause between the keys of one entry (`[media] inter_digit_ms`, 5 s).
    pub inter_digit: Duration,
    /// Longest the caller counts as speaking without an utterance coming of
    /// it (`[media] hearing_cap_ms`, 15 s).
    pub hearing_cap: Duration,
    /// An integration slower than this plays a filler (`[media] filler_after_ms`, 1.5 s).
    pub filler_after: Duration,
    /// How long to wait for a transfer's outcome (`[sip] transfer_timeout_s`, 30 s).
    pub transfer_timeout: Duration,
    /// Longest call (`[media] max_call_s`, 30 min).
    pub max_call: Duration,
}

impl Default for CallTimings {
    fn default() -> Self {
        CallTimings {
            ack_wait: Duration::from_secs(40),
            inter_digit: Duration::from_secs(5),
            hearing_cap: Duration::from_secs(15),
            filler_after: Duration::from_millis(1500),
            transfer_timeout: Duration::from_secs(30),
            max_call: Duration::from_secs(1800),
        }
    }
}

/// Measures the interpreter's CPU time for the turn timings only.
pub type Stopwatch = Arc<dyn Fn() -> Instant + Send + Sync>;

/// What every call of an engine shares.
#[derive(Clone)]
pub struct CoreConfig {
    /// Timing policies.
    pub timings: CallTimings,
    /// No RTP for this long ends the call.
    pub media_timeout: Duration,
    /// Nothing (RTP or RTCP) from the caller within this long of the ACK
    /// ends the call (zero: off): audio streamed to an SDP address that
    /// never answers stops after this.
    pub first_media_timeout: Duration,
    /// Which source addresses the call's media is taken from (`[media] latch`).
    pub latch: LatchPolicy,
    /// Endpointing (end silence, eager end of turn, tentative end for the
    /// end-of-turn model).
    pub endpointing: EndpointingConfig,
    /// Makes the call's voice activity detector (None: the media session's
    /// energy VAD).
    pub vad: Option<crate::endofturn::VadFactory>,
    /// With an end-of-turn model: at each tentative end it is asked
    /// ([`Job::EndOfTurn`]) and a probability at or above this ends the
    /// utterance there. None: the end silence alone ends utterances.
    pub smart_turn_threshold: Option<f32>,
    /// A speculative transcript (eager end of turn) that already answers
    /// the question ([`Interpreter::would_answer`]) ends the utterance at
    /// once, before the end silence (`[turn] end_on_answer`): closed
    /// answers only, or open ones too when they sound finished
    /// (`end_on_open_answer`). None: off.
    pub end_on_answer: Option<Answers>,
    /// SDP settings (re-INVITE answers).
    pub sdp: SdpConfig,
    /// Domain of transfer targets that are only a number (empty: the caller's host).
    pub transfer_domain: String,
    /// Keep what the caller said in the call record.
    pub keep_transcripts: bool,
    /// Wall time for the flow (opening hours) and the record.
    pub clock: Arc<dyn WallClock>,
    /// Measures the interpreter's time per turn (None: not measured).
    pub stopwatch: Option<Stopwatch>,
    /// Whether the recogniser would refuse an utterance now (its queue is
    /// full, or there is none): the call's next question is then asked
    /// with keys from the start (None: never asked).
    pub speech_full: Option<SpeechFull>,
}

/// Tells whether the recogniser is full ([`CoreConfig::speech_full`]).
pub type SpeechFull = Arc<dyn Fn() -> bool + Send + Sync>;

/// One accepted call (its 200 OK sent).
pub struct CallSetup {
    /// The call reference.
    pub call_ref: CallId,
    /// Where it leads.
    pub route: Route,
    /// Caller number.
    pub calling: Pii<String>,
    /// Called number.
    pub called: Pii<String>,
    /// The caller's signalling address (numeric transfer targets go there).
    pub source: SocketAddr,
    /// Our media address and SDP identity.
    pub local: LocalMedia,
    /// What our 200 OK carried.
    pub answered: Answered,
    /// Folder audio prompts (`Play`) are relative to.
    pub prompts_dir: PathBuf,
    /// A recorded crisis announcement played before the flow (set in the
    /// console; a text announcement reaches the flow itself instead).
    pub announcement_audio: Option<PathBuf>,
    /// Randomness for SSRC, first sequence number and timestamp.
    pub seed: u64,
}

/// Outputs waiting to be polled.
#[derive(Debug)]
enum Queued {
    Sip(SipCommand),
    Job(Job),
    Event(CallEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// 200 sent, waiting for the ACK.
    Ringing { until: Instant },
    /// In conversation.
    Active { max_end: Instant },
    /// Over; the record is still to be handed out.
    Ended,
    /// Over and recorded.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filler {
    /// Not yet due.
    Due,
    /// Being synthesised or played.
    Playing(JobId),
    /// Not played (a prompt was still playing).
    Skipped,
}

/// What the next action waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocker {
    None,
    /// The audio of the current `Say`/`Play`.
    Synth {
        id: JobId,
        barge_in: bool,
    },
    /// The queued audio to finish playing (before a transfer or hang-up).
    Playout,
    /// An integration's answer.
    Invoke {
        id: JobId,
        since: Instant,
        filler: Filler,
    },
    /// The transfer's outcome.
    Transfer {
        until: Instant,
    },
}

/// A recognition's result, its timing, and whether its language was identified.
type Heard = (Result<Recognition, SpeechError>, SttTiming, bool);

/// The meaning of a caller's words being made by a [`Job::Embed`] (off the
/// call's thread), and what waits for it.
struct MeaningJob {
    id: JobId,
    /// The words (personal) and the encoder.
    wanted: MeaningWanted,
    /// The turn's transcript, held from the flow until the meaning comes
    /// (the question stays recognising meanwhile). None: the words are a
    /// speculative transcript's, made ahead.
    held: Option<FlowEvent>,
    /// When it comes, see whether the speculative transcript answers the
    /// question ([`CallCore::end_if_answered`]).
    answer_check: bool,
}

/// A speculative recognition in progress ([`Job::Recognize`] with `eager`).
struct Speculation {
    id: JobId,
    /// Its generation in [`EagerTurn`].
    gen: u64,
    /// The language is identified, not fixed.
    identified: bool,
    /// Withdraws it ([`CallCore::withdraw_speculations`]).
    cancel: ivr_stt::Cancel,
}

/// One call.
pub struct CallCore {
    cfg: CoreConfig,
    call_ref: CallId,
    municipality: String,
    calling: Pii<String>,
    called: Pii<String>,
    source: SocketAddr,
    local: LocalMedia,
    rtp_local: SocketAddr,
    session: LocalSession,
    negotiated: Option<Negotiated>,
    our_offer: Option<SessionDescription>,
    prompts_dir: PathBuf,
    announcement_audio: Option<PathBuf>,
    seed: u64,
    stage: Stage,
    media: Option<MediaSession>,
    held: bool,
    interp: Interpreter,
    lang: Lang,
    pending: VecDeque<Action>,
    blocker: Blocker,
    listen: Option<Listen>,
    /// Keys pressed while no question took keys (between questions, during
    /// a speech-only question, or while its answer was being recognised),
    /// oldest first, with when: the next question that takes keys gets them
    /// at once (type-ahead, as VoiceXML buffers keys in its transitioning
    /// state). At most [`TYPE_AHEAD_KEYS`], none older than [`TYPE_AHEAD_FOR`].
    typed_ahead: VecDeque<(Dtmf, Instant)>,
    /// The recognition answering the question, and whether it identifies the language.
    stt_job: Option<(JobId, bool)>,
    /// The utterance answering the question (personal audio, in memory only
    /// while the question lasts).
    utterance: Option<Pcm>,
    /// Speculative recognitions in flight: job, eager generation, identifying.
    speculations: Vec<Speculation>,
    eager: EagerTurn<Heard>,
    /// The end-of-turn verdict awaited for the current tentative end, and
    /// when it was asked for.
    turn_check: Option<(JobId, Instant)>,
    /// How long the verdict that ended the utterance took (for the turn timings).
    ended_by_model: Option<Duration>,
    /// The utterance now coming was ended by [`CallCore::end_if_answered`].
    ended_by_answer: bool,
    /// The meaning of a caller's words being made, and what waits for it.
    meaning: Option<MeaningJob>,
    turn: TurnClock,
    next_job: u64,
    queue: VecDeque<Queued>,
    outcome: Option<Outcome>,
    sip_ended: bool,
    started_at: DateTime<Utc>,
    created: Instant,
    answered: Option<Instant>,
    turns: i64,
    transcript: Vec<String>,
    tx_buf: Vec<u8>,
    /// Datagrams from addresses the SDP did not negotiate, dropped.
    foreign_media: u64,
    /// SRTP contexts, when the SDP negotiated SDES keys.
    srtp: Option<SrtpSession>,
    /// SRTP/SRTCP packets refused (authentication, replay, format).
    srtp_refused: u64,
    /// Flow steps in the last progress record handed out.
    recorded_steps: usize,
    /// Where the call came from (its record says so).
    origin: crate::records::CallOrigin,
    /// Changes whenever the flow moved (the live view may have changed).
    flow_moves: u64,
    /// One entry per caller turn (the first: what the call began with).
    turn_log: Vec<TurnLog>,
    /// The first packet of prompt audio has left (the greeting is heard).
    greeted: bool,
    /// Media settled outside SIP (a browser leg, [`CallCore::with_leg_media`]).
    leg_media: Option<MediaParams>,
    /// The flow debugger's events (only with [`CallCore::with_debugger`]).
    debug: Option<VecDeque<DebugEvent>>,
    /// The variables last shown to the debugger.
    debug_vars: Vec<(String, String)>,
}

/// The filler's words in a language.
pub fn filler_text(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "One moment, please.",
        _ => "Et øjeblik.",
    }
}

impl CallCore {
    /// A call whose 200 OK was just sent at `now`: it waits for the ACK.
    pub fn new(setup: CallSetup, cfg: CoreConfig, now: Instant) -> Self {
        let interp = Interpreter::new(
            setup.route.clone(),
            CallContext {
                caller: setup.calling.clone(),
                lang: None,
            },
        );
        let lang = interp.lang();
        let Answered {
            negotiated,
            our_offer,
            session,
            ..
        } = setup.answered;
        CallCore {
            started_at: cfg.clock.now_utc(),
            stage: Stage::Ringing {
                until: now + cfg.timings.ack_wait,
            },
            cfg,
            call_ref: setup.call_ref,
            municipality: setup.route.municipality.id.clone(),
            calling: setup.calling,
            called: setup.called,
            source: setup.source,
            rtp_local: SocketAddr::new(setup.local.address, setup.local.rtp_port),
            local: setup.local,
            session,
            negotiated,
            our_offer,
            prompts_dir: setup.prompts_dir,
            announcement_audio: setup.announcement_audio,
            seed: setup.seed,
            media: None,
            held: false,
            interp,
            lang,
            pending: VecDeque::new(),
            blocker: Blocker::None,
            listen: None,
            typed_ahead: VecDeque::new(),
            stt_job: None,
            utterance: None,
            speculations: Vec::new(),
            eager: EagerTurn::default(),
            turn_check: None,
            ended_by_model: None,
            ended_by_answer: false,
            meaning: None,
            turn: TurnClock::default(),
            next_job: 0,
            queue: VecDeque::new(),
            outcome: None,
            sip_ended: false,
            created: now,
            answered: None,
            turns: 0,
            transcript: Vec::new(),
            tx_buf: vec![0; 1500],
            foreign_media: 0,
            srtp: None,
            srtp_refused: 0,
            recorded_steps: 0,
            origin: crate::records::CallOrigin::Phone,
            flow_moves: 0,
            turn_log: Vec::new(),
            greeted: false,
            leg_media: None,
            debug: None,
            debug_vars: Vec::new(),
        }
    }

    /// A call whose flow the console's debugger follows (an operator's own
    /// test call): what was heard, intent scores, steps, variables,
    /// integration calls and turn timings are collected for
    /// [`CallCore::take_debug`]. Personal data: never for SIP calls.
    pub fn with_debugger(mut self) -> Self {
        self.interp.set_explain(true);
        self.debug = Some(VecDeque::with_capacity(32));
        self
    }

    /// The debugger's events since the last call (empty without a debugger).
    pub fn take_debug(&mut self) -> impl Iterator<Item = DebugEvent> + '_ {
        self.debug.iter_mut().flat_map(|q| q.drain(..))
    }

    fn debug_push(&mut self, e: impl FnOnce() -> DebugEvent) {
        if let Some(q) = self.debug.as_mut() {
            if q.len() >= DEBUG_QUEUE {
                q.pop_front();
            }
            q.push_back(e());
        }
    }

    /// After the flow moved: its step, the turn's intent, the explanations
    /// and the variables, for the debugger.
    fn debug_flow(&mut self, intents_before: usize) {
        if self.debug.is_none() {
            return;
        }
        let rec = self.interp.record();
        let step = rec.steps.last().cloned().unwrap_or_default();
        let intents = rec
            .intents
            .get(intents_before..)
            .unwrap_or_default()
            .to_vec();
        let explanations = self.interp.take_explanations();
        let vars: Vec<(String, String)> = self
            .interp
            .vars()
            .map(|(k, v)| (k.to_string(), v.plain()))
            .collect();
        let variables = if vars != self.debug_vars {
            self.debug_vars = vars.clone();
            vars.into_iter().map(|(k, v)| (k, Pii::new(v))).collect()
        } else {
            Vec::new()
        };
        self.debug_push(|| DebugEvent::Flow {
            step,
            intents,
            explanations,
            variables,
        });
    }

    /// The pacer deadline of the RTP packet last handed out by
    /// [`Self::poll_output`] (the task measures how late it left).
    pub fn last_packet_due(&self) -> Option<Instant> {
        self.media.as_ref().and_then(MediaSession::last_packet_due)
    }

    /// A call whose media leg is not SIP's RTP (a browser's WebRTC leg,
    /// `crate::webrtc`): its media parameters were settled by that leg's
    /// own negotiation, and [`SipEvent::Confirmed`] starts the media with
    /// them. The leg's transport carries the core's RTP datagrams (their
    /// address is `params.remote_rtp`, a placeholder the leg also puts on
    /// incoming packets) and encrypts them itself.
    pub fn with_leg_media(mut self, params: MediaParams) -> Self {
        self.leg_media = Some(params);
        self
    }

    /// A call that did not come from the phone (an operator's browser call):
    /// its record says where from. Calls are [`CallOrigin::Phone`](crate::records::CallOrigin::Phone) otherwise.
    pub fn with_origin(mut self, origin: crate::records::CallOrigin) -> Self {
        self.origin = origin;
        self
    }

    /// The call reference.
    pub fn call_ref(&self) -> &CallId {
        &self.call_ref
    }

    /// The municipality's id.
    pub fn municipality(&self) -> &str {
        &self.municipality
    }

    /// Whether the call is over and its record was handed out.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Finished
    }

    /// The question being asked, if the flow is listening.
    pub fn listening(&self) -> Option<&Question> {
        self.listen.as_ref().map(|l| &l.question)
    }

    /// Where the answer to the question stands, if the flow is listening.
    pub fn listen_phase(&self) -> Option<super::listen::Phase> {
        self.listen.as_ref().map(Listen::phase)
    }

    /// Changes whenever the flow moved; compare before copying [`Self::live_view`].
    pub fn flow_moves(&self) -> u64 {
        self.flow_moves
    }

    /// What the console's live page shows of this call.
    pub fn live_view(&self) -> LiveView {
        let rec = self.interp.record();
        LiveView {
            lang: self.lang,
            step: rec.steps.last().cloned().unwrap_or_default(),
            last_intent: rec.intents.last().cloned(),
        }
    }

    /// The flow's state so far (steps, intents, outcome).
    pub fn flow_record(&self) -> &ivr_flow::CallRecord {
        self.interp.record()
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input<'_>, now: Instant) {
        match input {
            Input::Rtp { bytes, from } => {
                let plain = match self.srtp.as_mut().map(|s| s.unprotect_rtp(bytes)) {
                    None => None,
                    Some(Ok(p)) => Some(p),
                    Some(Err(e)) => return self.count_srtp_refused(&e, from),
                };
                if let Some(m) = self.media.as_mut() {
                    // A malformed or foreign packet is counted by the session and dropped.
                    let r = m.handle_rtp(plain.as_deref().unwrap_or(bytes), from, now);
                    self.count_foreign(&r, from, PacketKind::Rtp);
                }
            }
            Input::Rtcp { bytes, from } => {
                let plain = match self.srtp.as_mut().map(|s| s.unprotect_rtcp(bytes)) {
                    None => None,
                    Some(Ok(p)) => Some(p),
                    Some(Err(e)) => return self.count_srtp_refused(&e, from),
                };
                if let Some(m) = self.media.as_mut() {
                    let r = m.handle_rtcp(plain.as_deref().unwrap_or(bytes), from, now);
                    self.count_foreign(&r, from, PacketKind::Rtcp);
                }
            }
            Input::Sip(ev) => self.on_sip(ev, now),
            Input::Done(done) => {
                if matches!(self.stage, Stage::Active { .. }) {
                    self.on_done(done, now);
                }
            }
            Input::Timeout => self.timers(now),
        }
    }

    /// An SRTP/SRTCP packet that failed authentication or replay checks
    /// (or plain RTP on an SRTP call) was dropped: counted, noted once per call.
    fn count_srtp_refused(&mut self, e: &SrtpError, from: SocketAddr) {
        self.srtp_refused += 1;
        if self.srtp_refused == 1 {
            tracing::warn!(%from, error = %e, "SRTP packet refused");
        }
        self.queue.push_back(Queued::Event(CallEvent::SrtpRefused));
    }

    /// A datagram from an address the SDP did not negotiate was dropped:
    /// counted for `/metrics`, and noted once per call (a probe or a
    /// misconfigured trunk, not something to log per packet).
    fn count_foreign(&mut self, r: &Result<(), MediaError>, from: SocketAddr, kind: PacketKind) {
        if r != &Err(MediaError::ForeignSource) {
            return;
        }
        self.foreign_media += 1;
        if self.foreign_media == 1 {
            tracing::warn!(%from, ?kind, "media from an address the SDP did not negotiate dropped");
        }
        self.queue
            .push_back(Queued::Event(CallEvent::ForeignMediaDropped));
    }

    /// The next output. Call until it returns [`Output::Timeout`], then again
    /// at that instant or when input arrives.
    pub fn poll_output(&mut self, now: Instant) -> Output<'_> {
        loop {
            if let Some(q) = self.queue.pop_front() {
                return match q {
                    Queued::Sip(c) => Output::Sip(c),
                    Queued::Job(j) => Output::Job(j),
                    Queued::Event(e) => Output::Event(e),
                };
            }
            match self.stage {
                Stage::Finished => return Output::Timeout(now + Duration::from_secs(3600)),
                Stage::Ended => {
                    let row = self.record(now);
                    self.stage = Stage::Finished;
                    return Output::Finished(Box::new(row));
                }
                Stage::Ringing { .. } | Stage::Active { .. } => {}
            }
            let mut media_next = None;
            if let Some(media) = self.media.as_mut() {
                let step = match media.poll_output(now) {
                    MediaOutput::Transmit(t) => match self.srtp.as_mut() {
                        None => {
                            let n = t.bytes.len().min(self.tx_buf.len());
                            self.tx_buf[..n].copy_from_slice(&t.bytes[..n]);
                            Step::Transmit(t.to, t.kind, n)
                        }
                        Some(s) => {
                            let protected = match t.kind {
                                PacketKind::Rtp => s.protect_rtp(t.bytes),
                                PacketKind::Rtcp => s.protect_rtcp(t.bytes),
                            };
                            match protected {
                                Ok(p) => {
                                    let n = p.len().min(self.tx_buf.len());
                                    self.tx_buf[..n].copy_from_slice(&p[..n]);
                                    Step::Transmit(t.to, t.kind, n)
                                }
                                // Our own packet did not parse: nothing leaves in clear.
                                Err(_) => continue,
                            }
                        }
                    },
                    MediaOutput::Event(e) => Step::Event(e),
                    MediaOutput::Timeout(at) => Step::Wait(at),
                };
                match step {
                    Step::Transmit(to, kind, n) => {
                        if kind == PacketKind::Rtp {
                            if self.held {
                                // On hold (we do not send): the pacer runs on, nothing leaves.
                                continue;
                            }
                            self.first_packet(now);
                            if !self.greeted && self.playing() {
                                self.greeted = true;
                                let after = now.saturating_duration_since(self.created);
                                self.queue
                                    .push_back(Queued::Event(CallEvent::Greeting(after)));
                            }
                        }
                        return Output::Transmit(Transmit {
                            to,
                            kind,
                            bytes: &self.tx_buf[..n],
                        });
                    }
                    Step::Event(e) => {
                        self.on_media_event(e, now);
                        continue;
                    }
                    Step::Wait(at) => media_next = Some(at),
                }
            }
            self.pump(now);
            self.take_typed_ahead(now);
            self.timers(now);
            self.count_eager();
            self.progress(now);
            if !self.queue.is_empty() || self.stage == Stage::Ended {
                continue;
            }
            return Output::Timeout(self.next_wake(now, media_next));
        }
    }

    fn next_job(&mut self) -> JobId {
        self.next_job += 1;
        JobId(self.next_job)
    }

    fn wall(&self) -> DateTime<Utc> {
        self.cfg.clock.now_utc()
    }

    /// The rate prompts are asked for: the media's codec rate (they then
    /// play without conversion); `None` before media (the output rate).
    fn play_rate(&self) -> Option<u32> {
        self.media
            .as_ref()
            .map(|m| m.params().codec.sample_rate())
            .or_else(|| self.leg_media.as_ref().map(|p| p.codec.sample_rate()))
    }

    fn playing(&self) -> bool {
        self.media.as_ref().is_some_and(MediaSession::is_playing)
    }

    /// No prompt pending, being made or playing, and not on hold.
    fn quiet(&self) -> bool {
        self.blocker == Blocker::None && self.pending.is_empty() && !self.playing() && !self.held
    }

    fn next_wake(&self, now: Instant, media_next: Option<Instant>) -> Instant {
        let mut wake = media_next.unwrap_or(now + Duration::from_secs(3600));
        match self.stage {
            Stage::Ringing { until } => wake = wake.min(until),
            Stage::Active { max_end } => wake = wake.min(max_end),
            Stage::Ended | Stage::Finished => {}
        }
        if let Some(d) = self.listen.as_ref().and_then(Listen::deadline) {
            wake = wake.min(d);
        }
        match self.blocker {
            Blocker::Transfer { until } => wake = wake.min(until),
            Blocker::Invoke {
                since,
                filler: Filler::Due,
                ..
            } => wake = wake.min(since + self.cfg.timings.filler_after),
            _ => {}
        }
        wake
    }

    /// The reply's first RTP packet leaves now: the turn's timing is complete.
    fn first_packet(&mut self, now: Instant) {
        if !self.turn.waiting_first_packet() || !self.playing() {
            return;
        }
        if let Some(tt) =
            self.turn
                .first_packet(now, &self.call_ref, &self.municipality, self.rtp_local)
        {
            if let Some(t) = self.turn_log.last_mut().filter(|t| t.latency_ms.is_none()) {
                t.latency_ms = Some(tt.latency().as_millis() as i64);
            }
            let ms = |d: Option<Duration>| d.map_or(-1, |d| d.as_millis() as i64);
            let (latency_ms, stt_ms, tts_ms, pacing_ms, eager) = (
                tt.latency().as_millis() as i64,
                ms(tt.stt_stage()),
                ms(tt.tts_stage()),
                ms(tt.pacing_stage()),
                tt.eager,
            );
            self.debug_push(|| DebugEvent::Turn {
                latency_ms,
                stt_ms,
                tts_ms,
                pacing_ms,
                eager,
            });
            self.queue
                .push_back(Queued::Event(CallEvent::Turn(Box::new(tt))));
        }
    }

    fn count_eager(&mut self) {
        let EagerCounts {
            used,
            discarded,
            skipped,
        } = self.eager.take_counts();
        for (n, o) in [
            (used, EagerOutcome::Used),
            (discarded, EagerOutcome::Discarded),
            (skipped, EagerOutcome::Skipped),
        ] {
            for _ in 0..n {
                self.queue.push_back(Queued::Event(CallEvent::Eager(o)));
            }
        }
    }

    /// The call is over: BYE unless the SIP side ended it or `bye` is false.
    fn end(&mut self, outcome: Outcome, bye: bool) {
        if matches!(self.stage, Stage::Ended | Stage::Finished) {
            return;
        }
        if bye && !self.sip_ended {
            self.queue.push_back(Queued::Sip(SipCommand::Hangup));
        }
        self.outcome.get_or_insert(outcome);
        self.stage = Stage::Ended;
        self.media = None;
        self.listen = None;
        self.meaning = None;
    }

    /// After a flow step, the record so far goes out (written at once by
    /// the call's task): a crash then loses at most the steps since.
    fn progress(&mut self, now: Instant) {
        let steps = self.interp.record().steps.len();
        if steps == self.recorded_steps || self.stage == Stage::Ended {
            return;
        }
        self.recorded_steps = steps;
        let mut row = self.record(now);
        row.outcome = crate::records::IN_PROGRESS.to_string();
        self.queue
            .push_back(Queued::Event(CallEvent::Progress(Box::new(row))));
    }

    fn record(&self, now: Instant) -> CallRecordRow {
        let rec = self.interp.record();
        let outcome = self.outcome.or(rec.outcome).unwrap_or(Outcome::Abandoned);
        CallRecordRow {
            call_ref: self.call_ref.to_string(),
            municipality: self.municipality.clone(),
            called: self.called.clone(),
            calling: self.calling.clone(),
            started_at: self.started_at,
            ended_at: self.wall(),
            talk_ms: now
                .saturating_duration_since(self.answered.unwrap_or(self.created))
                .as_millis() as i64,
            steps: rec.steps.clone(),
            intents: rec.intents.clone(),
            outcome: outcome.as_str().to_string(),
            transferred_to: rec.transferred_to.clone(),
            lang: rec.lang.unwrap_or(self.lang).code().to_string(),
            turns: self.turns,
            transcript: (self.cfg.keep_transcripts && !self.transcript.is_empty())
                .then(|| Pii::new(self.transcript.join("\n"))),
            questions: rec.questions.clone(),
            turn_log: self.turn_log.clone(),
            origin: self.origin,
        }
    }

    // ---- SIP -------------------------------------------------------------

    fn on_sip(&mut self, ev: SipEvent, now: Instant) {
        match ev {
            SipEvent::Confirmed(sdp) => {
                if matches!(self.stage, Stage::Ringing { .. }) {
                    self.confirmed(sdp, now);
                }
            }
            SipEvent::Dtmf(k) => {
                if matches!(self.stage, Stage::Active { .. }) {
                    self.on_dtmf(k, now);
                }
            }
            SipEvent::ReInvite(offer) => self.on_reinvite(offer.as_deref()),
            SipEvent::TransferResult { success, status } => {
                tracing::info!(success, status, "transfer outcome");
                if matches!(self.blocker, Blocker::Transfer { .. }) {
                    if success {
                        self.end(Outcome::Transferred, true);
                    } else {
                        self.transfer_failed(status);
                    }
                }
            }
            SipEvent::Ended(reason) => {
                tracing::info!(?reason, "call ended by SIP");
                self.sip_ended = true;
                if matches!(self.stage, Stage::Ringing { .. }) {
                    tracing::info!("call ended before it was confirmed");
                    self.end(Outcome::Abandoned, false);
                    return;
                }
                let _ = self.interp.handle(FlowEvent::Hangup, self.wall());
                let outcome = self.interp.record().outcome.unwrap_or(Outcome::Abandoned);
                self.end(outcome, false);
            }
            SipEvent::Terminate => {
                if matches!(self.stage, Stage::Ringing { .. }) {
                    self.end(Outcome::Abandoned, false);
                    return;
                }
                let outcome = self.interp.record().outcome.unwrap_or(Outcome::Abandoned);
                self.end(outcome, true);
            }
            SipEvent::Gone => self.end(Outcome::Failed, true),
        }
    }

    /// The ACK: media starts and the flow begins.
    fn confirmed(&mut self, ack_sdp: Option<Vec<u8>>, now: Instant) {
        // A browser leg settled its media outside SIP (no SRTP contexts here:
        // its transport encrypts), a SIP leg through the offer/answer.
        let (params, srtp, held) = match self.leg_media.clone() {
            Some(p) => (p, None, false),
            None => {
                if self.negotiated.is_none() {
                    match call_sdp::accept_ack(self.our_offer.as_ref(), ack_sdp.as_deref()) {
                        Some(n) => self.negotiated = Some(n),
                        None => {
                            tracing::warn!("no usable SDP answer in the ACK; hanging up");
                            self.end(Outcome::Failed, true);
                            return;
                        }
                    }
                }
                let Some(neg) = self.negotiated.clone() else {
                    return;
                };
                (
                    call_sdp::media_params(&neg),
                    neg.srtp.clone(),
                    !neg.direction.sends(),
                )
            }
        };
        let seed = self.seed;
        let wall: SystemTime = self.wall().into();
        let cfg = SessionConfig {
            ssrc: (seed >> 32) as u32 | 1,
            initial_seq: (seed >> 16) as u16,
            initial_ts: seed as u32,
            cname: format!("ivr-{}", self.call_ref),
            wallclock_at_start: wall,
            media_timeout: self.cfg.media_timeout,
            first_media_timeout: self.cfg.first_media_timeout,
            endpointing: self.cfg.endpointing,
            latch: self.cfg.latch,
            ..SessionConfig::default()
        };
        if let Some(p) = &srtp {
            match SrtpSession::new(p) {
                Ok(s) => self.srtp = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "SRTP contexts could not be set up");
                    self.end(Outcome::Failed, true);
                    return;
                }
            }
        }
        match MediaSession::new(params, cfg, now) {
            Ok(mut m) => {
                if let Some(vad) = &self.cfg.vad {
                    m.set_vad(vad());
                }
                self.media = Some(m);
            }
            Err(e) => {
                tracing::warn!(error = %e, "media session refused the negotiated parameters");
                self.end(Outcome::Failed, true);
                return;
            }
        }
        self.held = held;
        self.answered = Some(now);
        self.stage = Stage::Active {
            max_end: now + self.cfg.timings.max_call,
        };
        // A recorded announcement plays first, not interruptible.
        let mut first: Vec<Action> = self
            .announcement_audio
            .take()
            .map(|p| Action::Play {
                file: p.to_string_lossy().into_owned(),
                barge_in: false,
            })
            .into_iter()
            .collect();
        self.keys_if_speech_full();
        first.extend(self.interp.start(self.wall()));
        self.flow_moves += 1;
        self.debug_flow(0);
        self.turn_log.push(TurnLog::new("start", ""));
        self.log_said(&first);
        self.take_actions(first);
    }

    fn on_reinvite(&mut self, offer: Option<&[u8]>) {
        let answer = call_sdp::answer_reinvite(
            offer,
            &self.local,
            &self.cfg.sdp,
            self.negotiated.as_ref(),
            &mut self.session,
        );
        match answer {
            ReInviteAnswer::Accept { body, negotiated } => {
                if let Some(n) = negotiated.map(|n| *n) {
                    if let Some(m) = self.media.as_mut() {
                        let moved = n.remote_rtp != m.params().remote_rtp
                            || Some(n.remote_rtcp) != m.params().remote_rtcp;
                        // On hold with c=0.0.0.0 the old address stays (nothing is sent meanwhile).
                        if moved && !n.remote_rtp.ip().is_unspecified() {
                            m.set_remote(n.remote_rtp, Some(n.remote_rtcp));
                        }
                    }
                    match (&n.srtp, self.srtp.as_mut()) {
                        (Some(p), Some(s)) => {
                            if s.renegotiated(p).is_err() {
                                self.queue
                                    .push_back(Queued::Sip(SipCommand::RejectReInvite(488)));
                                return;
                            }
                        }
                        (None, None) => {}
                        // SRTP cannot be switched on or off mid-call.
                        _ => {
                            self.queue
                                .push_back(Queued::Sip(SipCommand::RejectReInvite(488)));
                            return;
                        }
                    }
                    let held = !n.direction.sends();
                    if held != self.held {
                        tracing::info!(held, "call hold changed");
                    }
                    self.held = held;
                    self.negotiated = Some(n);
                }
                self.queue
                    .push_back(Queued::Sip(SipCommand::AnswerReInvite(body)));
            }
            ReInviteAnswer::Reject(status) => {
                self.queue
                    .push_back(Queued::Sip(SipCommand::RejectReInvite(status)));
            }
        }
    }

    // ---- media -------------------------------------------------------------

    fn on_media_event(&mut self, e: MediaEvent, now: Instant) {
        match e {
            MediaEvent::SpeechStarted => {
                if let Some(l) = self.listen.as_mut() {
                    l.speech_started(now);
                }
            }
            MediaEvent::BargeIn => {
                self.queue.push_back(Queued::Event(CallEvent::BargeIn));
                self.cancel_prompts();
            }
            MediaEvent::TentativeEnd(pcm) => {
                let quiet = self.quiet();
                let question = self
                    .listen
                    .as_ref()
                    .filter(|l| l.takes_speech(quiet))
                    .map(|l| (choice(&l.question), l.question.stt_hints()));
                if question.is_some() && self.cfg.smart_turn_threshold.is_some() {
                    // Has the caller finished? The model answers in tens of ms;
                    // meanwhile the end silence runs on.
                    let id = self.next_job();
                    self.turn_check = Some((id, now));
                    self.queue.push_back(Queued::Job(Job::EndOfTurn {
                        id,
                        pcm: pcm.clone(),
                    }));
                }
                if self.cfg.endpointing.eager_silence.is_zero() {
                    return;
                }
                if let (OnTentative::Start(gen), Some((choice, hints))) =
                    (self.eager.tentative(question.is_some()), question)
                {
                    let id = self.next_job();
                    self.eager.started(gen);
                    let cancel = ivr_stt::Cancel::default();
                    self.speculations.push(Speculation {
                        id,
                        gen,
                        identified: identifies(&choice),
                        cancel: cancel.clone(),
                    });
                    self.queue.push_back(Queued::Job(Job::Recognize {
                        id,
                        pcm,
                        choice,
                        hints,
                        eager: true,
                        cancel,
                    }));
                }
            }
            MediaEvent::SpeechResumed => {
                // A verdict still to come is about audio that is not the utterance.
                self.turn_check = None;
                self.eager.resumed();
                // The speculations running are about audio that is not the
                // utterance: their workers may stop.
                self.withdraw_speculations();
                // So is the meaning of the speculative transcript.
                if self.meaning.as_ref().is_some_and(|m| m.held.is_none()) {
                    self.meaning = None;
                }
            }
            MediaEvent::Utterance(pcm) => self.on_utterance(pcm, now),
            MediaEvent::Dtmf(k) => self.on_dtmf(k, now),
            MediaEvent::PlaybackFinished if self.blocker == Blocker::Playout => {
                self.blocker = Blocker::None;
            }
            MediaEvent::MediaTimeout => {
                if self.held {
                    // A held call may send nothing (inactive): not a dead caller.
                    return;
                }
                tracing::info!("no RTP from the caller; ending the call");
                self.pending.clear();
                self.listen = None;
                self.pending.push_back(Action::Hangup {
                    outcome: Outcome::Abandoned,
                });
                if let Some(m) = self.media.as_mut() {
                    m.flush();
                }
                self.blocker = Blocker::None;
            }
            MediaEvent::RecordingFailed(e) => {
                tracing::warn!(error = %e, "call recording stopped");
            }
            _ => {}
        }
    }

    fn on_utterance(&mut self, pcm: Pcm, now: Instant) {
        self.turn_check = None;
        let by_model = self.ended_by_model.take();
        let by_answer = std::mem::take(&mut self.ended_by_answer);
        let quiet = self.quiet();
        let Some(l) = self.listen.as_mut() else {
            tracing::debug!("utterance outside a question ignored");
            return;
        };
        let takes = l.takes_speech(quiet);
        l.speech_ended();
        if !takes {
            return;
        }
        l.recognising();
        let (choice, hints) = (choice(&l.question), l.question.stt_hints());
        // The caller answered: what is left of the question's prompt is moot.
        self.cancel_prompts();
        self.turn.begin(TurnInput::Speech, now);
        if let Some(took) = by_model {
            // The recogniser gives every utterance the same ending
            // (ivr_stt::audio::settle_tail), so one the model ended at the
            // short silence needs no padding.
            self.turn.ended_by_model(took);
        }
        if by_answer {
            self.turn.ended_by_answer();
        }
        self.utterance = Some(pcm.clone());
        match self.eager.confirmed() {
            OnConfirmed::Use((result, stt, identified)) => {
                self.turn.eager();
                self.on_transcript(result, stt, identified, now);
            }
            OnConfirmed::Await => self.turn.eager(),
            OnConfirmed::Recognise => self.recognise(pcm, choice, hints),
        }
    }

    /// A speculative transcript was just held (the caller silent since the
    /// tentative end): when it already answers the question, the caller's
    /// turn ends now instead of after the rest of the end silence.
    fn end_if_answered(&mut self) {
        self.answer_check(true);
    }

    /// [`Self::end_if_answered`]; `make_meaning`: when the flow would embed
    /// the words, their meaning is made first by a job and the check runs
    /// when it comes (false: at once, the meaning made or given up).
    fn answer_check(&mut self, make_meaning: bool) {
        let Some(answers) = self.cfg.end_on_answer else {
            return;
        };
        let quiet = self.quiet();
        if !self.listen.as_ref().is_some_and(|l| l.takes_speech(quiet)) {
            return;
        }
        let Some((Ok(r), _, identified)) = self.eager.held() else {
            return;
        };
        if r.text.expose().trim().is_empty() {
            return;
        }
        let ev = FlowEvent::Speech {
            text: r.text.clone(),
            confidence: r.confidence,
            lang: r.lang,
            identified: *identified,
        };
        if make_meaning && self.meaning.as_ref().is_none_or(|m| m.held.is_none()) {
            if let Some(wanted) = self.interp.meaning_wanted(&ev, self.wall()) {
                let same = self
                    .meaning
                    .as_ref()
                    .is_some_and(|m| m.wanted.same_words(&wanted));
                match self.meaning.as_mut() {
                    Some(m) if same => m.answer_check = true,
                    _ => self.make_meaning(wanted, None, true),
                }
                return;
            }
        }
        if !self.interp.would_answer(ev, self.wall(), answers) {
            return;
        }
        if let Some(m) = self.media.as_mut() {
            // The utterance is the next media event (polled next).
            if m.end_turn() {
                self.ended_by_answer = true;
            }
        }
    }

    /// The turn's transcript `ev`, before it reaches the flow: when the flow
    /// would embed its words and their meaning is not made yet, a job makes
    /// it and `ev` waits (None; it is fed when [`Done::Meaning`] comes, the
    /// question recognising meanwhile). A speculative transcript's meaning
    /// already being made for the same words is waited for, not made again.
    fn hold_for_meaning(&mut self, ev: FlowEvent) -> Option<FlowEvent> {
        let Some(wanted) = self.interp.meaning_wanted(&ev, self.wall()) else {
            return Some(ev);
        };
        if let Some(l) = self.listen.as_mut() {
            l.recognising();
        }
        match self.meaning.as_mut() {
            Some(m) if m.wanted.same_words(&wanted) => {
                m.held = Some(ev);
                m.answer_check = false;
            }
            _ => self.make_meaning(wanted, Some(ev), false),
        }
        None
    }

    /// Asks for the meaning of `wanted`'s words (a newer request replaces
    /// the one in flight, whose answer is then dropped as stale).
    fn make_meaning(&mut self, wanted: MeaningWanted, held: Option<FlowEvent>, answer_check: bool) {
        let id = self.next_job();
        self.meaning = Some(MeaningJob {
            id,
            wanted: wanted.clone(),
            held,
            answer_check,
        });
        self.queue.push_back(Queued::Job(Job::Embed { id, wanted }));
    }

    /// The meaning of a caller's words came (or could not be made): the
    /// flow learns it, then the transcript that waited for it is fed, or
    /// the speculative one checked.
    fn on_meaning(
        &mut self,
        id: JobId,
        meaning: Result<ivr_flow::Meaning, ivr_flow::semantic::EncodeError>,
    ) {
        let Some(m) = self.meaning.take_if(|m| m.id == id) else {
            tracing::trace!(job = id.0, "stale meaning dropped");
            return;
        };
        // A failure was logged where the job ran; the flow goes on without
        // it (it tries the encoder itself, or reads the words alone).
        if let Ok(meaning) = meaning {
            self.interp.know_meaning(meaning);
        }
        match m.held {
            Some(ev) => {
                if let Some(l) = self.listen.as_mut() {
                    l.recognised();
                }
                self.feed(ev);
            }
            None if m.answer_check => self.answer_check(false),
            None => {}
        }
    }

    fn recognise(&mut self, pcm: Pcm, choice: LanguageChoice, hints: Hints) {
        let id = self.next_job();
        self.stt_job = Some((id, identifies(&choice)));
        self.queue.push_back(Queued::Job(Job::Recognize {
            id,
            pcm,
            choice,
            hints,
            eager: false,
            // The turn's own utterance: never withdrawn.
            cancel: ivr_stt::Cancel::default(),
        }));
    }

    /// The flow did not understand the utterance in the current language:
    /// the same audio again, identifying its language among `among`.
    fn recognise_again(&mut self, among: Vec<Lang>) {
        let (Some(l), Some(pcm)) = (self.listen.as_mut(), self.utterance.clone()) else {
            tracing::warn!("asked to recognise again without an utterance");
            return;
        };
        l.recognising();
        let (choice, hints) = (
            identify_among(l.question.lang, &among),
            l.question.stt_hints(),
        );
        self.recognise(pcm, choice, hints);
    }

    /// Withdraws every speculation in progress: none of them can be the
    /// turn's transcript any more (the caller spoke on, or the question is
    /// over). Their workers stop at the next decoder step instead of
    /// finishing a text nobody reads; the errors they answer with are
    /// dropped as stale when they come ([`EagerTurn::result`]). Setting the
    /// flag is all: no I/O.
    fn withdraw_speculations(&mut self) {
        for s in &self.speculations {
            s.cancel.cancel();
        }
    }

    /// Stops the prompt being made or played and drops the prompts queued
    /// after it, as the media session does at a barge-in.
    fn cancel_prompts(&mut self) {
        if let Some(m) = self.media.as_mut() {
            m.flush();
        }
        if matches!(self.blocker, Blocker::Synth { .. } | Blocker::Playout) {
            self.blocker = Blocker::None;
        }
        while matches!(
            self.pending.front(),
            Some(Action::Say { .. } | Action::Play { .. })
        ) {
            self.pending.pop_front();
        }
    }

    fn on_dtmf(&mut self, k: Dtmf, now: Instant) {
        let Some(l) = self.listen.as_mut().filter(|l| l.question.dtmf) else {
            if matches!(self.stage, Stage::Active { .. }) {
                if self.typed_ahead.len() == TYPE_AHEAD_KEYS {
                    self.typed_ahead.pop_front();
                }
                self.typed_ahead.push_back((k, now));
                tracing::debug!("key kept for the next question that takes keys");
            }
            return;
        };
        l.key(now, self.cfg.timings.inter_digit);
        // A key during the prompt answers the question that follows it.
        self.cancel_prompts();
        self.turn.begin(TurnInput::Dtmf, now);
        self.feed(FlowEvent::Dtmf(k));
    }

    /// Keys typed ahead go to the question now listening, if it takes keys,
    /// in the order they were pressed; each may end it and start the next.
    fn take_typed_ahead(&mut self, now: Instant) {
        while self.listen.as_ref().is_some_and(|l| l.question.dtmf) {
            let Some((k, at)) = self.typed_ahead.pop_front() else {
                return;
            };
            if now.saturating_duration_since(at) <= TYPE_AHEAD_FOR {
                self.on_dtmf(k, now);
            }
        }
    }

    // ---- the flow ------------------------------------------------------------

    /// Feeds the flow; a non-empty answer ends the current question.
    /// The recogniser is full now: whatever question the flow asks next is
    /// asked with its keys, not listened to for words that would only be
    /// refused (and the caller then told to press keys after speaking).
    fn keys_if_speech_full(&mut self) {
        if !self.interp.keys_only() && self.cfg.speech_full.as_ref().is_some_and(|f| f()) {
            self.interp.prefer_keys();
        }
    }

    fn feed(&mut self, ev: FlowEvent) {
        if matches!(
            ev,
            FlowEvent::Speech { .. } | FlowEvent::Dtmf(_) | FlowEvent::SpeechUnavailable
        ) {
            self.turns += 1;
        }
        let before = self.log_before(&ev);
        if let FlowEvent::Dtmf(k) = &ev {
            let key = k.as_char();
            self.debug_push(|| DebugEvent::Key { key });
        }
        let intents_before = self.interp.record().intents.len();
        self.keys_if_speech_full();
        let t0 = self.cfg.stopwatch.as_ref().map(|s| s());
        let actions = self.interp.handle(ev, self.wall());
        self.flow_moves += 1;
        self.debug_flow(intents_before);
        match before {
            Some(before) => self.log_turn(before, &actions),
            None => self.log_said(&actions),
        }
        let took = match (t0, self.cfg.stopwatch.as_ref()) {
            (Some(t0), Some(s)) => s().saturating_duration_since(t0),
            _ => Duration::ZERO,
        };
        let step = self
            .interp
            .record()
            .steps
            .last()
            .map(String::as_str)
            .unwrap_or("");
        tracing::debug!(
            step,
            flow_us = took.as_micros() as u64,
            actions = actions.len(),
            "flow step"
        );
        self.turn.flow_step(took, step, !actions.is_empty());
        self.take_actions(actions);
    }

    /// A batch of the interpreter's actions: the question it ends with (if
    /// any) is listened for from now on; the rest runs in order.
    fn take_actions(&mut self, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        // Alone, `RecognizeAgain` keeps the question: the same utterance is heard again.
        if let [Action::RecognizeAgain { among }] = actions.as_slice() {
            let among = among.clone();
            self.recognise_again(among);
            return;
        }
        self.eager.reset();
        self.turn_check = None;
        self.withdraw_speculations();
        self.speculations.clear();
        self.stt_job = None;
        self.utterance = None;
        self.listen = None;
        // A transcript still waiting for its meaning is no answer to what comes now.
        self.meaning = None;
        for a in actions {
            match a {
                Action::Gather {
                    speech,
                    dtmf,
                    hints,
                    candidates,
                    lang,
                    timeout,
                    max_digits: _,
                    barge_in,
                    identify,
                } => {
                    // (`max_digits` is the interpreter's: it completes the entry.)
                    self.listen = Some(Listen::new(Question {
                        speech,
                        dtmf,
                        hints,
                        candidates: candidates
                            .into_iter()
                            .map(|(label, phrases)| Candidate { label, phrases })
                            .collect(),
                        lang,
                        timeout,
                        barge_in,
                        identify,
                    }));
                }
                other => self.pending.push_back(other),
            }
        }
    }

    /// Runs pending actions until one has to wait.
    fn pump(&mut self, now: Instant) {
        while self.blocker == Blocker::None && matches!(self.stage, Stage::Active { .. }) {
            let Some(a) = self.pending.pop_front() else {
                return;
            };
            match a {
                Action::Say {
                    speech,
                    lang,
                    barge_in,
                } => {
                    let id = self.next_job();
                    self.blocker = Blocker::Synth { id, barge_in };
                    self.turn.reply_started(now);
                    let rate = self.play_rate();
                    self.queue.push_back(Queued::Job(Job::Synthesize {
                        id,
                        speech,
                        lang,
                        rate,
                    }));
                }
                Action::Play { file, barge_in } => {
                    let id = self.next_job();
                    self.blocker = Blocker::Synth { id, barge_in };
                    self.turn.reply_started(now);
                    let path = self.prompts_dir.join(&file);
                    let rate = self.play_rate();
                    self.queue
                        .push_back(Queued::Job(Job::PlayFile { id, path, rate }));
                }
                Action::Gather { .. } => {
                    // Taken when the batch arrived (take_actions); never queued.
                }
                Action::RecognizeAgain { among } => self.recognise_again(among),
                Action::SetLanguage(l) => self.lang = l,
                Action::Transfer {
                    department,
                    target,
                    context,
                } => {
                    if self.playing() {
                        self.pending.push_front(Action::Transfer {
                            department,
                            target,
                            context,
                        });
                        self.blocker = Blocker::Playout;
                        return;
                    }
                    self.transfer(department, &target, context, now);
                }
                Action::Invoke(request) => {
                    let id = self.next_job();
                    self.blocker = Blocker::Invoke {
                        id,
                        since: now,
                        filler: Filler::Due,
                    };
                    let at = self.wall();
                    self.debug_push(|| DebugEvent::Integration {
                        request: format!("{request:?}"),
                    });
                    self.queue.push_back(Queued::Job(Job::Invoke {
                        id,
                        request,
                        lang: self.lang,
                        at,
                    }));
                }
                Action::Hangup { outcome } => {
                    if self.playing() {
                        self.pending.push_front(Action::Hangup { outcome });
                        self.blocker = Blocker::Playout;
                        return;
                    }
                    self.end(outcome, true);
                }
            }
        }
    }

    fn transfer(
        &mut self,
        department: String,
        target: &str,
        context: Vec<(String, Pii<String>)>,
        now: Instant,
    ) {
        let uri_text = if target.contains(':') {
            target.to_string()
        } else {
            let domain = if self.cfg.transfer_domain.is_empty() {
                self.source.to_string()
            } else {
                self.cfg.transfer_domain.clone()
            };
            format!("sip:{target}@{domain}")
        };
        let Ok(uri) = Uri::parse(&uri_text) else {
            tracing::warn!(
                department,
                "transfer target is not a SIP URI; back to the flow"
            );
            self.feed(FlowEvent::TransferFailed { status: None });
            return;
        };
        tracing::info!(department, "transferring");
        let intent = self.interp.record().intents.last().cloned();
        self.blocker = Blocker::Transfer {
            until: now + self.cfg.timings.transfer_timeout,
        };
        self.queue.push_back(Queued::Sip(SipCommand::Refer {
            target: uri,
            department,
            context,
            intent,
            lang: self.lang,
        }));
    }

    /// The transfer failed or timed out: the caller is still here, the flow decides.
    fn transfer_failed(&mut self, status: Option<u16>) {
        self.blocker = Blocker::None;
        self.feed(FlowEvent::TransferFailed { status });
    }

    // ---- timers ------------------------------------------------------------

    fn timers(&mut self, now: Instant) {
        match self.stage {
            Stage::Ringing { until } if now >= until => {
                tracing::info!("no ACK in time: call ended before it was confirmed");
                self.end(Outcome::Abandoned, false);
                return;
            }
            Stage::Active { max_end } if now >= max_end => {
                tracing::warn!("longest call time reached; hanging up");
                self.end(Outcome::Failed, true);
                return;
            }
            Stage::Active { .. } => {}
            _ => return,
        }
        let quiet = self.quiet();
        let cap = self.cfg.timings.hearing_cap;
        if self
            .listen
            .as_mut()
            .is_some_and(|l| l.tick(now, quiet, cap))
        {
            self.feed(FlowEvent::NoInput);
        }
        match self.blocker {
            Blocker::Transfer { until } if now >= until => {
                tracing::warn!("no transfer outcome in time; back to the flow");
                self.transfer_failed(None);
            }
            Blocker::Invoke {
                id,
                since,
                filler: Filler::Due,
            } if now.saturating_duration_since(since) >= self.cfg.timings.filler_after => {
                let filler = if self.playing() {
                    Filler::Skipped
                } else {
                    let job = self.next_job();
                    self.turn.reply_started(now);
                    self.queue.push_back(Queued::Job(Job::Synthesize {
                        id: job,
                        speech: Speech::Static(filler_text(self.lang).to_string()),
                        lang: self.lang,
                        rate: self.play_rate(),
                    }));
                    Filler::Playing(job)
                };
                self.blocker = Blocker::Invoke { id, since, filler };
            }
            _ => {}
        }
    }

    // ---- finished work -----------------------------------------------------

    fn on_done(&mut self, done: Done, now: Instant) {
        match done {
            Done::Audio { id, pcm, last } => match self.blocker {
                Blocker::Synth { id: cur, barge_in } if cur == id => {
                    if let Some(p) = pcm {
                        self.play(p, barge_in, now);
                    }
                    if last {
                        self.blocker = Blocker::None;
                    }
                }
                Blocker::Invoke {
                    filler: Filler::Playing(f),
                    ..
                } if f == id => {
                    if let Some(p) = pcm {
                        self.play(p, true, now);
                    }
                }
                _ => tracing::trace!(job = id.0, "stale audio dropped"),
            },
            Done::Transcript { id, result, stt } => {
                if let Some((_, identified)) = self.stt_job.filter(|(j, _)| *j == id) {
                    self.stt_job = None;
                    self.on_transcript(result, stt, identified, now);
                } else if let Some(pos) = self.speculations.iter().position(|s| s.id == id) {
                    let Speculation {
                        gen, identified, ..
                    } = self.speculations.swap_remove(pos);
                    match self.eager.result(gen, (result, stt, identified)) {
                        OnResult::Deliver((result, stt, identified)) => {
                            self.on_transcript(result, stt, identified, now);
                        }
                        OnResult::Held => self.end_if_answered(),
                        OnResult::Drop => {}
                    }
                } else {
                    tracing::trace!(job = id.0, "stale transcript dropped");
                }
            }
            Done::EndOfTurn { id, complete } => {
                let Some((_, asked)) = self.turn_check.filter(|(j, _)| *j == id) else {
                    tracing::trace!(job = id.0, "stale end-of-turn verdict dropped");
                    return;
                };
                self.turn_check = None;
                let threshold = self.cfg.smart_turn_threshold.unwrap_or(f32::INFINITY);
                let finished = complete.is_some_and(|p| p >= threshold);
                tracing::debug!(
                    probability = complete,
                    finished,
                    model_ms = now.saturating_duration_since(asked).as_millis() as u64,
                    "end-of-turn verdict"
                );
                if finished {
                    if let Some(m) = self.media.as_mut() {
                        if m.end_turn() {
                            // The utterance is the next media event (polled next).
                            self.ended_by_model = Some(now.saturating_duration_since(asked));
                        }
                    }
                }
            }
            Done::Meaning { id, meaning } => self.on_meaning(id, meaning),
            Done::Declined { id } => {
                if let Some(pos) = self.speculations.iter().position(|s| s.id == id) {
                    let Speculation { gen, .. } = self.speculations.swap_remove(pos);
                    let question = self
                        .listen
                        .as_ref()
                        .map(|l| (choice(&l.question), l.question.stt_hints()));
                    if let (true, Some((choice, hints)), Some(pcm)) =
                        (self.eager.declined(gen), question, self.utterance.clone())
                    {
                        // The end was confirmed meanwhile: recognise the utterance as usual.
                        self.recognise(pcm, choice, hints);
                    }
                }
            }
            Done::Response { id, response } => match self.blocker {
                Blocker::Invoke { id: cur, since, .. } if cur == id => {
                    self.turn.integration(now.saturating_duration_since(since));
                    let ms = now.saturating_duration_since(since).as_millis() as u64;
                    self.debug_push(|| DebugEvent::IntegrationResult {
                        response: format!("{response:?}"),
                        ms,
                    });
                    self.blocker = Blocker::None;
                    self.feed(FlowEvent::Result(response));
                }
                _ => tracing::trace!(job = id.0, "stale integration answer dropped"),
            },
        }
    }

    /// Queues prompt audio: the `Arc` is kept, not copied (a cached prompt
    /// is in memory once however many calls play it).
    fn play(&mut self, pcm: Arc<Pcm>, barge_in: bool, now: Instant) {
        let Some(m) = self.media.as_mut() else {
            return;
        };
        match m.play_shared(pcm, PlayOptions { barge_in }) {
            Ok(()) => self.turn.audio_ready(now),
            Err(e) => tracing::warn!(error = %e, "prompt not played"),
        }
    }

    /// The turn's transcript (or failure) reached the call: to the flow.
    fn on_transcript(
        &mut self,
        result: Result<Recognition, SpeechError>,
        stt: SttTiming,
        identified: bool,
        now: Instant,
    ) {
        self.turn.transcript(now, stt);
        let Some(l) = self.listen.as_mut() else {
            return;
        };
        l.recognised();
        let ev = match result {
            Ok(r) => {
                // What was heard stays out of the log (personal data);
                // how sure whisper was and how much it heard do not.
                tracing::debug!(
                    confidence = r.confidence,
                    words = r.text.expose().split_whitespace().count(),
                    lang = ?r.lang,
                    stt_ms = stt.processing.as_millis() as u64,
                    stt_queue_ms = stt.queued.as_millis() as u64,
                    "transcript"
                );
                if self.cfg.keep_transcripts {
                    self.transcript.push(r.text.expose().clone());
                }
                let (text, confidence, lang) = (
                    r.text.clone(),
                    r.confidence,
                    r.lang.map(|l| l.code().to_string()),
                );
                self.debug_push(|| DebugEvent::Heard {
                    text,
                    confidence,
                    lang,
                });
                let ev = FlowEvent::Speech {
                    text: r.text,
                    confidence: r.confidence,
                    lang: r.lang,
                    identified,
                };
                match self.hold_for_meaning(ev) {
                    Some(ev) => ev,
                    None => return,
                }
            }
            Err(e) if e.is_capacity() => {
                // No recogniser free (or none at all): keys, not silence.
                tracing::info!(error = %e, "utterance not taken by the recogniser; keys instead");
                FlowEvent::SpeechUnavailable
            }
            Err(e) => {
                tracing::warn!(error = %e, "utterance not recognised");
                FlowEvent::Speech {
                    text: Pii::new(String::new()),
                    confidence: 0.0,
                    lang: None,
                    identified,
                }
            }
        };
        self.feed(ev);
    }
}

/// What a turn's log entry needs from before the flow handled its input.
struct TurnBefore {
    step: String,
    input: &'static str,
    heard: Option<Pii<String>>,
    intents: usize,
    misunderstood: u32,
}

impl CallCore {
    /// The state a caller turn starts from (None: not a caller turn).
    fn log_before(&self, ev: &FlowEvent) -> Option<TurnBefore> {
        let (input, heard) = match ev {
            FlowEvent::Speech { text, .. } => {
                ("speech", self.cfg.keep_transcripts.then(|| text.clone()))
            }
            FlowEvent::Dtmf(_) => ("dtmf", None),
            FlowEvent::NoInput => ("no_input", None),
            FlowEvent::SpeechUnavailable => ("stt_busy", None),
            _ => return None,
        };
        let rec = self.interp.record();
        Some(TurnBefore {
            step: rec.steps.last().cloned().unwrap_or_default(),
            input,
            heard,
            intents: rec.intents.len(),
            misunderstood: rec.misunderstood,
        })
    }

    /// A caller turn was handled: its log entry (a turn the flow only asks to
    /// recognise again is logged when the second recognition comes back).
    fn log_turn(&mut self, b: TurnBefore, actions: &[Action]) {
        if matches!(actions, [Action::RecognizeAgain { .. }]) {
            return;
        }
        self.queue
            .push_back(Queued::Event(CallEvent::CallerTurn(b.input)));
        let rec = self.interp.record();
        let mut t = TurnLog::new(b.input, &b.step);
        t.heard = b.heard;
        t.intent = rec.intents.get(b.intents..).and_then(|i| i.last().cloned());
        t.misunderstood = rec.misunderstood > b.misunderstood;
        self.turn_log.push(t);
        self.log_said(actions);
    }

    /// What the bot says in reply, on the last log entry: static prompts as
    /// they are, personal ones only when transcripts are kept.
    fn log_said(&mut self, actions: &[Action]) {
        let keep = self.cfg.keep_transcripts;
        let Some(t) = self.turn_log.last_mut() else {
            return;
        };
        for a in actions {
            match a {
                Action::Say {
                    speech: Speech::Static(s),
                    ..
                } => t.said.push((Pii::new(s.clone()), false)),
                Action::Say {
                    speech: Speech::Personal(p),
                    ..
                } if keep => t.said.push((p.clone(), true)),
                Action::Say { .. } => t.said.push((Pii::new("[personal]".into()), false)),
                Action::Play { file, .. } => {
                    t.said.push((Pii::new(format!("[audio {file}]")), false))
                }
                _ => {}
            }
        }
    }
}

/// How to recognise an answer to `q`: in its language, or identifying the
/// caller's language among the ones it lists.
fn choice(q: &Question) -> LanguageChoice {
    if q.identify.is_empty() {
        LanguageChoice::Fixed(q.lang)
    } else {
        identify_among(q.lang, &q.identify)
    }
}

/// Identification of the caller's language among `among`, `current` as the
/// prior; with a single language (`RecognizeAgain` in the call's language
/// after a first turn identified as another), recognition in that one.
fn identify_among(current: Lang, among: &[Lang]) -> LanguageChoice {
    match among {
        [] => LanguageChoice::Fixed(current),
        [only] => LanguageChoice::Fixed(*only),
        _ => {
            let mut among = among.to_vec();
            if !among.contains(&current) {
                among.insert(0, current);
            }
            LanguageChoice::Identify { current, among }
        }
    }
}

/// Whether a recognition identifies the language.
fn identifies(choice: &LanguageChoice) -> bool {
    !matches!(choice, LanguageChoice::Fixed(_))
}

/// One step of draining the media session.
enum Step {
    Transmit(SocketAddr, PacketKind, usize),
    Event(MediaEvent),
    Wait(Instant),
}
