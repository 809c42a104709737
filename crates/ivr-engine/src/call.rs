//! One task per call: it owns the call's RTP/RTCP sockets, its
//! [`MediaSession`] (driven on the pacer's absolute deadlines), its flow
//! [`Interpreter`], and the actions in progress (speech synthesis, STT,
//! integration requests, transfer).
//!
//! ```text
//! SIP events --(bounded, CALL_INPUT_QUEUE)--> call task <--(bounded, WORK_QUEUE)-- workers
//!                                               |  ^                               (TTS, STT, integrations)
//!                                     RTP out   v  |  RTP in
//!                                            MediaSession
//! ```
//!
//! Queues and what happens when full:
//! - SIP events to a call ([`CALL_INPUT_QUEUE`]): the dispatcher uses
//!   `try_send`; a DTMF INFO that does not fit is dropped (counted in the log;
//!   a caller pressing keys faster than the call handles them is not lost
//!   signalling), while call-ending events and re-INVITEs are handed to a
//!   short-lived task that waits for room, so they are never lost.
//! - Worker results ([`WORK_QUEUE`]): workers `send().await`, so a call that
//!   is momentarily slow makes its own workers wait; nothing is dropped. A
//!   call has at most one synthesis, one integration request and two
//!   recognitions in flight (a speculative one that was thrown away may
//!   still be finishing while the next utterance is recognised), so the
//!   queue never holds more than a few items.
//!
//! Eager end of turn (`[media] eager_stt_ms`): at the media session's
//! `TentativeEnd` the audio so far is recognised on an idle STT worker
//! (never queued); at `Utterance` that transcript (held, or awaited if
//! still running) answers the turn instead of a new recognition; at
//! `SpeechResumed` it is thrown away. The decisions are [`crate::eager`]'s.
//! - The media session's own bounded queues are documented in `ivr-media`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use ivr_core::{CallId, Dtmf, Lang, Pcm, Pii, Speech, WallClock};
use ivr_flow::{Action, CallContext, Event as FlowEvent, Interpreter, Outcome, Response, Route};
use ivr_media::{
    MediaEvent, MediaParams, MediaSession, Output, PacketKind, PlayOptions, SessionConfig,
};
use ivr_sip::msg::{HeaderName, Uri};
use ivr_sip::sdp::{self, LocalMedia, Negotiated, SdpConfig, SessionDescription};
use ivr_sip::{CallHandle, EndReason};
use ivr_tts::{SpeechStream, TextToSpeech, Tts};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::eager::{EagerCounts, EagerTurn, OnConfirmed, OnResult, OnTentative};
use crate::metrics::{EagerOutcome, Metrics};
use crate::records::{CallRecordRow, Records};
use crate::services::{Caller, Services};
use crate::sip::SipHandle;
use crate::speech::{SpeechError, SpeechPool};
use crate::turns::{SttTiming, TurnClock, TurnInput, TurnTimings};

/// Capacity of a call's SIP event queue.
pub const CALL_INPUT_QUEUE: usize = 32;
/// Capacity of a call's worker result queue.
pub const WORK_QUEUE: usize = 16;

/// What the SIP side tells a call.
#[derive(Debug)]
pub enum CallInput {
    /// The ACK arrived (with the SDP answer for an offerless INVITE).
    Confirmed(Option<Vec<u8>>),
    /// A key from SIP INFO.
    Dtmf(Dtmf),
    /// A re-INVITE to answer.
    ReInvite(Option<Vec<u8>>),
    /// The REFER's outcome.
    TransferResult {
        /// The target answered.
        success: bool,
        /// The status behind it.
        status: u16,
    },
    /// The call is over on the SIP side.
    Ended(EndReason),
    /// The engine is stopping: hang up now.
    Terminate,
}

/// What the engine shares with every call.
pub struct CallShared {
    /// SIP commands.
    pub sip: SipHandle,
    /// Speech out.
    pub tts: Arc<Tts>,
    /// Speech in.
    pub stt: SpeechPool,
    /// Integrations.
    pub services: Services,
    /// Call records (None: disabled).
    pub records: Option<Records>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Wall clock for the flow (opening hours).
    pub clock: Arc<dyn WallClock>,
    /// The flows folder (audio prompts are relative to a municipality's folder).
    pub flows_dir: PathBuf,
    /// Media settings.
    pub media: crate::config::MediaConfig,
    /// SDP settings.
    pub sdp: SdpConfig,
    /// Transfer settings.
    pub transfer_domain: String,
    /// How long to wait for a transfer's NOTIFY.
    pub transfer_timeout: Duration,
    /// Keep transcripts in the call record.
    pub keep_transcripts: bool,
    /// Where finished turns' timings are published.
    pub turns: TurnTimings,
}

/// An accepted call, before its task starts.
pub struct Accepted {
    /// The call's input queue (the dispatcher keeps the sender).
    pub inputs: mpsc::Sender<CallInput>,
    /// The task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Why an INVITE was refused (the SIP status to answer with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub u16);

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// Binds an even RTP port and the RTCP port above it from the configured range.
async fn bind_rtp(cfg: &crate::config::MediaConfig, start: u16) -> Option<(UdpSocket, UdpSocket)> {
    let span = u32::from(cfg.rtp_port_max.saturating_sub(cfg.rtp_port_min)) / 2 + 1;
    for i in 0..span.min(200) {
        let off = (u32::from(start) / 2 + i) % span;
        let port = cfg.rtp_port_min as u32 + off * 2;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        let Ok(rtp) = UdpSocket::bind(SocketAddr::new(cfg.rtp_ip, port)).await else {
            continue;
        };
        let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(cfg.rtp_ip, port.wrapping_add(1))).await
        else {
            continue;
        };
        return Some((rtp, rtcp));
    }
    None
}

/// The user part of a SIP/tel URI (`sip:+4570101010@host;user=phone` -> `+4570101010`).
pub fn user_part(uri: &str) -> String {
    let s = uri.trim().trim_start_matches('<');
    let s = s
        .strip_prefix("sips:")
        .or_else(|| s.strip_prefix("sip:"))
        .or_else(|| s.strip_prefix("tel:"))
        .unwrap_or(s);
    let s = s.split(['@', '>']).next().unwrap_or("");
    s.split(';').next().unwrap_or("").to_string()
}

/// Media codec of the SDP module mapped to the media crate's.
fn media_codec(c: sdp::Codec) -> ivr_media::Codec {
    match c {
        sdp::Codec::Pcma => ivr_media::Codec::Pcma,
        sdp::Codec::Pcmu => ivr_media::Codec::Pcmu,
        sdp::Codec::G722 => ivr_media::Codec::G722,
    }
}

fn media_params(n: &Negotiated) -> MediaParams {
    MediaParams {
        codec: media_codec(n.codec),
        payload_type: n.payload_type,
        telephone_event_pt: n.telephone_event.map(|t| t.payload_type),
        ptime: Duration::from_millis(u64::from(n.ptime_ms)),
        remote_rtp: n.remote_rtp,
        remote_rtcp: Some(n.remote_rtcp),
    }
}

/// Everything known about an incoming call when it is accepted.
pub struct Incoming {
    /// The SIP call.
    pub handle: CallHandle,
    /// The call reference.
    pub call_ref: CallId,
    /// Where it leads.
    pub route: Route,
    /// Caller number.
    pub calling: Pii<String>,
    /// Called number.
    pub called: Pii<String>,
    /// The SDP offer, if any.
    pub offer: Option<Vec<u8>>,
    /// The caller's signalling address (for numeric transfer targets).
    pub source: SocketAddr,
}

/// Negotiates media, answers 200 and starts the call's task.
///
/// # Errors
/// [`Refused`] with the status to reject with (488 for SDP, 503 without ports).
pub async fn accept(shared: Arc<CallShared>, inc: Incoming) -> Result<Accepted, Refused> {
    let (rtp, rtcp) = bind_rtp(&shared.media, (random_u64() % 10_000) as u16)
        .await
        .ok_or(Refused(503))?;
    let port = rtp.local_addr().map_err(|_| Refused(503))?.port();
    let local = LocalMedia::new(shared.media.rtp_ip, port, random_u64() >> 1);
    let mut session = sdp::LocalSession::new();
    let (body, negotiated, our_offer) = match &inc.offer {
        Some(offer) => {
            let offer =
                SessionDescription::parse_bytes(offer).map_err(|e| Refused(e.sip_status()))?;
            let (answer, n) =
                sdp::answer(&offer, &local, &shared.sdp).map_err(|e| Refused(e.sip_status()))?;
            let answer = session.stamp(answer);
            (answer.to_string().into_bytes(), Some(n), None)
        }
        None => {
            let offer = session.stamp(sdp::offer(&local, &shared.sdp));
            (offer.to_string().into_bytes(), None, Some(offer))
        }
    };
    shared
        .sip
        .ringing(inc.handle)
        .await
        .map_err(|_| Refused(500))?;
    let (tx, rx) = mpsc::channel(CALL_INPUT_QUEUE);
    shared
        .sip
        .answer(inc.handle, body)
        .await
        .map_err(|_| Refused(500))?;
    shared.metrics.call_started();
    let call = CallTask::new(
        shared, inc, rtp, rtcp, local, session, negotiated, our_offer, rx,
    );
    let span = tracing::info_span!("call", call = %call.call_ref, municipality = %call.route.municipality.id);
    let task = tokio::spawn(tracing::Instrument::instrument(call.run(), span));
    Ok(Accepted { inputs: tx, task })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocker {
    None,
    /// Waiting for synthesised audio of generation `gen`.
    Synth,
    /// Waiting for the queued audio to finish before the next action.
    Playout,
    /// Waiting for an integration result.
    Invoke {
        since: Instant,
        filler: bool,
    },
    /// Waiting for the transfer's outcome.
    Transfer {
        until: Instant,
    },
}

struct Gather {
    speech: bool,
    dtmf: bool,
    hints: Vec<String>,
    lang: Lang,
    timeout: Duration,
    deadline: Option<Instant>,
    hearing_since: Option<Instant>,
    awaiting_stt: bool,
}

enum Work {
    Audio {
        gen: u64,
        pcm: Option<Arc<Pcm>>,
        last: bool,
    },
    Filler(Option<Arc<Pcm>>),
    Transcript {
        result: Result<crate::speech::Recognition, SpeechError>,
        stt: SttTiming,
        /// The generation of a speculative (eager) recognition; `None`: a confirmed utterance's.
        eager: Option<u64>,
    },
    Result(Response),
}

struct CallTask {
    shared: Arc<CallShared>,
    handle: CallHandle,
    call_ref: CallId,
    route: Route,
    calling: Pii<String>,
    called: Pii<String>,
    source: SocketAddr,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    local: LocalMedia,
    rtp_local: SocketAddr,
    session: sdp::LocalSession,
    negotiated: Option<Negotiated>,
    our_offer: Option<SessionDescription>,
    inputs: mpsc::Receiver<CallInput>,
    work_tx: mpsc::Sender<Work>,
    work_rx: mpsc::Receiver<Work>,
    interp: Interpreter,
    lang: Lang,
    pending: VecDeque<Action>,
    blocker: Blocker,
    synth_gen: u64,
    say_barge_in: bool,
    gather: Option<Gather>,
    ended: bool,
    outcome: Option<Outcome>,
    started_at: DateTime<Utc>,
    answered: Instant,
    turns: i64,
    transcript: Vec<String>,
    turn: TurnClock,
    eager: EagerTurn<Heard>,
    transfer_success: Option<bool>,
    /// The last transcript fed to the flow, fed again as identified on
    /// `RecognizeAgain` (this loop cannot re-recognise with identification).
    last_speech: Option<FlowEvent>,
}

/// A recognition's result with its timing.
type Heard = (Result<crate::speech::Recognition, SpeechError>, SttTiming);

/// The wake-up reasons of the call loop.
enum Wake {
    Rtp(usize, SocketAddr),
    Rtcp(usize, SocketAddr),
    Input(Option<CallInput>),
    Work(Option<Work>),
    Timer,
}

impl CallTask {
    #[allow(clippy::too_many_arguments)] // reason: one constructor gathering the accepted call's parts
    fn new(
        shared: Arc<CallShared>,
        inc: Incoming,
        rtp: UdpSocket,
        rtcp: UdpSocket,
        local: LocalMedia,
        session: sdp::LocalSession,
        negotiated: Option<Negotiated>,
        our_offer: Option<SessionDescription>,
        inputs: mpsc::Receiver<CallInput>,
    ) -> Self {
        let (work_tx, work_rx) = mpsc::channel(WORK_QUEUE);
        let interp = Interpreter::new(
            inc.route.clone(),
            CallContext {
                caller: inc.calling.clone(),
                lang: None,
            },
        );
        let lang = interp.lang();
        CallTask {
            started_at: shared.clock.now_utc(),
            shared,
            handle: inc.handle,
            call_ref: inc.call_ref,
            route: inc.route,
            calling: inc.calling,
            called: inc.called,
            source: inc.source,
            rtp,
            rtcp,
            rtp_local: SocketAddr::new(local.address, local.rtp_port),
            local,
            session,
            negotiated,
            our_offer,
            inputs,
            work_tx,
            work_rx,
            interp,
            lang,
            pending: VecDeque::new(),
            blocker: Blocker::None,
            synth_gen: 0,
            say_barge_in: true,
            gather: None,
            ended: false,
            outcome: None,
            answered: Instant::now(),
            turns: 0,
            transcript: Vec::new(),
            turn: TurnClock::default(),
            eager: EagerTurn::default(),
            transfer_success: None,
            last_speech: None,
        }
    }

    fn muni(&self) -> &str {
        &self.route.municipality.id
    }

    async fn run(mut self) {
        // Wait for the ACK (64*T1 = 32 s is the transaction's own limit).
        let confirmed = tokio::time::timeout(Duration::from_secs(40), async {
            loop {
                match self.inputs.recv().await {
                    Some(CallInput::Confirmed(sdp)) => return Some(sdp),
                    Some(CallInput::Ended(_)) | Some(CallInput::Terminate) | None => return None,
                    Some(_) => {}
                }
            }
        })
        .await;
        let Ok(Some(ack_sdp)) = confirmed else {
            tracing::info!("call ended before it was confirmed");
            self.finish(Some(Outcome::Abandoned)).await;
            return;
        };
        if self.negotiated.is_none() {
            // Offerless INVITE: the answer is in the ACK (RFC 3264 sec. 5, RFC 3261 sec. 13.2.1).
            let n = match (&self.our_offer, ack_sdp) {
                (Some(offer), Some(body)) => SessionDescription::parse_bytes(&body)
                    .ok()
                    .and_then(|a| sdp::accept_answer(offer, &a).ok()),
                _ => None,
            };
            match n {
                Some(n) => self.negotiated = Some(n),
                None => {
                    tracing::warn!("no usable SDP answer in the ACK; hanging up");
                    let _ = self.shared.sip.hangup(self.handle).await;
                    self.finish(Some(Outcome::Failed)).await;
                    return;
                }
            }
        }
        let Some(neg) = self.negotiated.clone() else {
            return;
        };
        self.answered = Instant::now();
        let cfg = SessionConfig {
            ssrc: random_u64() as u32,
            initial_seq: random_u64() as u16,
            initial_ts: random_u64() as u32,
            cname: format!("ivr-{}", self.call_ref),
            wallclock_at_start: SystemTime::now(),
            media_timeout: Duration::from_secs(self.shared.media.media_timeout_s),
            endpointing: self.shared.media.endpointing(),
            ..SessionConfig::default()
        };
        let mut media = match MediaSession::new(media_params(&neg), cfg, Instant::now()) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "media session refused the negotiated parameters");
                let _ = self.shared.sip.hangup(self.handle).await;
                self.finish(Some(Outcome::Failed)).await;
                return;
            }
        };
        let now = self.shared.clock.now_utc();
        let first = self.interp.start(now);
        self.pending.extend(first);
        let max_end = Instant::now() + Duration::from_secs(self.shared.media.max_call_s);
        let mut buf = vec![0u8; 2048];
        let mut buf2 = vec![0u8; 1500];
        let mut events: Vec<MediaEvent> = Vec::with_capacity(8);
        loop {
            // 1. Media: send what is due, collect events, learn the next deadline.
            let now = Instant::now();
            let media_next = loop {
                match media.poll_output(now) {
                    Output::Transmit(t) => {
                        let sock = match t.kind {
                            PacketKind::Rtp => &self.rtp,
                            PacketKind::Rtcp => &self.rtcp,
                        };
                        // Taken before sending, so that no receiver can see the
                        // packet before the instant the turn timing gives it.
                        let sent_at = Instant::now();
                        // A full socket buffer drops the packet, as the network could.
                        let _ = sock.try_send_to(t.bytes, t.to);
                        if t.kind == PacketKind::Rtp
                            && self.turn.waiting_first_packet()
                            && media.is_playing()
                        {
                            if let Some(tt) = self.turn.first_packet(
                                sent_at,
                                &self.call_ref,
                                &self.route.municipality.id,
                                self.rtp_local,
                            ) {
                                let ms =
                                    |d: Option<Duration>| d.map_or(-1, |d| d.as_millis() as i64);
                                self.shared.metrics.observe_turn(tt.latency());
                                tracing::debug!(
                                    turn_ms = tt.latency().as_millis() as u64,
                                    stt_ms = ms(tt.stt_stage()),
                                    tts_ms = ms(tt.tts_stage()),
                                    pacing_ms = ms(tt.pacing_stage()),
                                    eager = tt.eager,
                                    "turn latency"
                                );
                                self.shared.turns.publish(tt);
                            }
                        }
                    }
                    Output::Event(e) => events.push(e),
                    Output::Timeout(at) => break at,
                }
            };
            for e in events.drain(..) {
                self.on_media_event(&mut media, e);
            }
            // 2. Actions.
            self.pump(&mut media).await;
            if self.ended {
                break;
            }
            // 3. Timers.
            let now = Instant::now();
            if now >= max_end {
                tracing::warn!("longest call time reached; hanging up");
                self.hangup(Outcome::Failed).await;
                break;
            }
            self.arm_gather(&media, now);
            let mut wake = media_next.min(max_end);
            if let Some(d) = self.gather.as_ref().and_then(|g| g.deadline) {
                wake = wake.min(d);
            }
            match self.blocker {
                Blocker::Transfer { until } => wake = wake.min(until),
                Blocker::Invoke {
                    since,
                    filler: false,
                } => {
                    wake =
                        wake.min(since + Duration::from_millis(self.shared.media.filler_after_ms));
                }
                _ => {}
            }
            // 4. Wait for input or the next deadline.
            let w = tokio::select! {
                r = self.rtp.recv_from(&mut buf) => match r { Ok((n, a)) => Wake::Rtp(n, a), Err(_) => Wake::Timer },
                r = self.rtcp.recv_from(&mut buf2) => match r { Ok((n, a)) => Wake::Rtcp(n, a), Err(_) => Wake::Timer },
                i = self.inputs.recv() => Wake::Input(i),
                w = self.work_rx.recv() => Wake::Work(w),
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => Wake::Timer,
            };
            match w {
                Wake::Rtp(n, from) => {
                    if let Some(b) = buf.get(..n) {
                        let _ = media.handle_rtp(b, from, Instant::now());
                    }
                }
                Wake::Rtcp(n, from) => {
                    if let Some(b) = buf2.get(..n) {
                        let _ = media.handle_rtcp(b, from, Instant::now());
                    }
                }
                Wake::Input(None) => {
                    // The engine is gone.
                    self.hangup(Outcome::Failed).await;
                    break;
                }
                Wake::Input(Some(i)) => self.on_input(&mut media, i).await,
                Wake::Work(Some(w)) => self.on_work(&mut media, w),
                Wake::Work(None) => {}
                Wake::Timer => self.on_timer(&mut media).await,
            }
            self.count_eager();
            if self.ended {
                break;
            }
        }
        let outcome = self.outcome;
        self.finish(outcome).await;
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
                self.shared.metrics.eager(o);
            }
        }
    }

    fn arm_gather(&mut self, media: &MediaSession, now: Instant) {
        let idle = self.blocker == Blocker::None && !media.is_playing();
        if let Some(g) = self.gather.as_mut() {
            if g.hearing_since
                .is_some_and(|t| now.duration_since(t) > Duration::from_secs(15))
            {
                g.hearing_since = None;
            }
            if g.deadline.is_none() && idle && g.hearing_since.is_none() && !g.awaiting_stt {
                g.deadline = Some(now + g.timeout);
            }
        }
    }

    async fn on_timer(&mut self, media: &mut MediaSession) {
        let now = Instant::now();
        if let Some(g) = self.gather.as_mut() {
            if g.deadline.is_some_and(|d| now >= d) {
                g.deadline = None;
                self.feed(FlowEvent::NoInput);
            }
        }
        match self.blocker {
            Blocker::Transfer { until } if now >= until => {
                tracing::warn!("no transfer outcome in time; back to the flow");
                self.transfer_success = Some(false);
                self.blocker = Blocker::None;
                self.feed(FlowEvent::TransferFailed { status: None });
            }
            Blocker::Invoke {
                since,
                filler: false,
            } if now.duration_since(since)
                >= Duration::from_millis(self.shared.media.filler_after_ms) =>
            {
                self.blocker = Blocker::Invoke {
                    since,
                    filler: true,
                };
                if !media.is_playing() {
                    self.turn.reply_started(now);
                    let tts = self.shared.tts.clone();
                    let lang = self.lang;
                    let tx = self.work_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let pcm = tts.synthesize_lang(filler_text(lang), lang).ok();
                        let _ = tx.blocking_send(Work::Filler(pcm));
                    });
                }
            }
            _ => {}
        }
    }

    fn on_media_event(&mut self, media: &mut MediaSession, e: MediaEvent) {
        match e {
            MediaEvent::SpeechStarted => {
                if let Some(g) = self.gather.as_mut() {
                    if g.speech {
                        g.deadline = None;
                        g.hearing_since = Some(Instant::now());
                    }
                }
            }
            MediaEvent::BargeIn => {
                tracing::debug!("barge-in: prompt flushed");
                self.cancel_speech(media);
            }
            MediaEvent::TentativeEnd(pcm) => {
                let listening = self
                    .gather
                    .as_ref()
                    .is_some_and(|g| g.speech && !g.awaiting_stt);
                if let (OnTentative::Start(gen), Some(g)) =
                    (self.eager.tentative(listening), self.gather.as_ref())
                {
                    match self
                        .shared
                        .stt
                        .recognize_if_idle(pcm, g.lang, g.hints.clone())
                    {
                        Some(recognition) => {
                            self.eager.started(gen);
                            self.spawn_recognition(recognition, Some(gen));
                        }
                        None => self.eager.skipped(gen),
                    }
                }
            }
            MediaEvent::SpeechResumed => self.eager.resumed(),
            MediaEvent::Utterance(pcm) => {
                let Some(g) = self.gather.as_mut() else {
                    tracing::debug!("utterance outside a question ignored");
                    return;
                };
                g.hearing_since = None;
                if !g.speech || g.awaiting_stt {
                    return;
                }
                g.awaiting_stt = true;
                g.deadline = None;
                let (lang, hints) = (g.lang, g.hints.clone());
                self.turn.begin(TurnInput::Speech, Instant::now());
                match self.eager.confirmed() {
                    OnConfirmed::Use((result, stt)) => {
                        self.turn.eager();
                        self.on_transcript(result, stt);
                    }
                    OnConfirmed::Await => self.turn.eager(),
                    OnConfirmed::Recognise => {
                        let pool = self.shared.stt.clone();
                        let recognition = async move { pool.recognize(pcm, lang, hints).await };
                        self.spawn_recognition(recognition, None);
                    }
                }
            }
            MediaEvent::Dtmf(k) => self.on_dtmf(media, k),
            MediaEvent::PlaybackFinished if self.blocker == Blocker::Playout => {
                self.blocker = Blocker::None;
            }
            MediaEvent::MediaTimeout => {
                tracing::info!("no RTP from the caller; ending the call");
                self.pending.clear();
                self.pending.push_back(Action::Hangup {
                    outcome: Outcome::Abandoned,
                });
                media.flush();
                self.blocker = Blocker::None;
            }
            _ => {}
        }
    }

    /// Runs a recognition on its own task; the result comes back as
    /// [`Work::Transcript`] tagged with `eager` (a speculation's generation).
    fn spawn_recognition(
        &self,
        recognition: impl std::future::Future<Output = crate::speech::Timed> + Send + 'static,
        eager: Option<u64>,
    ) {
        let tx = self.work_tx.clone();
        tokio::spawn(async move {
            let t = recognition.await;
            let stt = SttTiming {
                queued: t.queued,
                processing: t.processing,
                recognised: t.result.is_ok(),
            };
            let _ = tx
                .send(Work::Transcript {
                    result: t.result,
                    stt,
                    eager,
                })
                .await;
        });
    }

    /// Stops the prompt and any synthesis still to come.
    fn cancel_speech(&mut self, media: &mut MediaSession) {
        media.flush();
        if matches!(self.blocker, Blocker::Synth | Blocker::Playout) {
            self.synth_gen += 1;
            self.blocker = Blocker::None;
        }
    }

    fn on_dtmf(&mut self, media: &mut MediaSession, k: Dtmf) {
        if self.gather.is_none() {
            // Keys during a prompt that leads to a question answer that question.
            if let Some(pos) = self
                .pending
                .iter()
                .position(|a| matches!(a, Action::Gather { .. }))
            {
                if self
                    .pending
                    .iter()
                    .take(pos)
                    .all(|a| matches!(a, Action::Say { .. } | Action::Play { .. }))
                {
                    self.cancel_speech(media);
                    self.pending.drain(..pos);
                    if let Some(Action::Gather {
                        speech,
                        dtmf,
                        hints,
                        lang,
                        timeout,
                        ..
                    }) = self.pending.pop_front()
                    {
                        self.start_gather(speech, dtmf, hints, lang, timeout);
                    }
                }
            }
        }
        let Some(g) = self.gather.as_mut() else {
            tracing::debug!("key outside a question ignored");
            return;
        };
        if !g.dtmf {
            return;
        }
        g.deadline = Some(Instant::now() + g.timeout.min(Duration::from_secs(5)));
        self.cancel_speech(media);
        self.turn.begin(TurnInput::Dtmf, Instant::now());
        self.feed(FlowEvent::Dtmf(k));
    }

    fn start_gather(
        &mut self,
        speech: bool,
        dtmf: bool,
        hints: Vec<String>,
        lang: Lang,
        timeout: Duration,
    ) {
        self.eager.reset();
        self.gather = Some(Gather {
            speech,
            dtmf,
            hints,
            lang,
            timeout,
            deadline: None,
            hearing_since: None,
            awaiting_stt: false,
        });
    }

    /// Feeds the flow; a non-empty answer ends the current question.
    fn feed(&mut self, ev: FlowEvent) {
        if matches!(ev, FlowEvent::Speech { .. } | FlowEvent::Dtmf(_)) {
            self.turns += 1;
        }
        let t0 = Instant::now();
        let actions = self.interp.handle(ev, self.shared.clock.now_utc());
        let took = t0.elapsed();
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
        if !actions.is_empty() {
            self.gather = None;
            self.eager.reset();
        }
        self.pending.extend(actions);
    }

    fn on_work(&mut self, media: &mut MediaSession, w: Work) {
        match w {
            Work::Audio { gen, pcm, last } => {
                if gen != self.synth_gen {
                    return;
                }
                if let Some(p) = pcm {
                    match media.play(
                        &p,
                        PlayOptions {
                            barge_in: self.say_barge_in,
                        },
                    ) {
                        Ok(()) => self.turn.audio_ready(Instant::now()),
                        Err(e) => tracing::warn!(error = %e, "prompt not played"),
                    }
                }
                if last && self.blocker == Blocker::Synth {
                    self.blocker = Blocker::None;
                }
            }
            Work::Filler(pcm) => {
                if let (Some(p), Blocker::Invoke { .. }) = (pcm, self.blocker) {
                    if media.play(&p, PlayOptions { barge_in: true }).is_ok() {
                        self.turn.audio_ready(Instant::now());
                    }
                }
            }
            Work::Transcript {
                result,
                stt,
                eager: None,
            } => self.on_transcript(result, stt),
            Work::Transcript {
                result,
                stt,
                eager: Some(gen),
            } => {
                if let OnResult::Deliver((result, stt)) = self.eager.result(gen, (result, stt)) {
                    self.on_transcript(result, stt);
                }
            }
            Work::Result(r) => {
                if let Blocker::Invoke { since, .. } = self.blocker {
                    self.turn.integration(since.elapsed());
                    self.blocker = Blocker::None;
                    self.feed(FlowEvent::Result(r));
                }
            }
        }
    }

    /// The turn's transcript (or failure) reached the call: to the flow.
    fn on_transcript(
        &mut self,
        result: Result<crate::speech::Recognition, SpeechError>,
        stt: SttTiming,
    ) {
        self.turn.transcript(Instant::now(), stt);
        if let Some(g) = self.gather.as_mut() {
            g.awaiting_stt = false;
        }
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
                if self.shared.keep_transcripts {
                    self.transcript.push(r.text.expose().clone());
                }
                FlowEvent::Speech {
                    text: r.text,
                    confidence: r.confidence,
                    lang: r.lang,
                    identified: false,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "utterance not recognised");
                FlowEvent::Speech {
                    text: Pii::new(String::new()),
                    confidence: 0.0,
                    lang: None,
                    identified: false,
                }
            }
        };
        if self.gather.is_some() {
            self.last_speech = Some(ev.clone());
            self.feed(ev);
        }
    }

    async fn on_input(&mut self, media: &mut MediaSession, i: CallInput) {
        match i {
            CallInput::Confirmed(_) => {}
            CallInput::Dtmf(k) => self.on_dtmf(media, k),
            CallInput::ReInvite(offer) => {
                let answer = offer
                    .as_deref()
                    .and_then(|o| SessionDescription::parse_bytes(o).ok())
                    .and_then(|o| match &self.negotiated {
                        Some(cur) => {
                            sdp::answer_reoffer(&o, &self.local, &self.shared.sdp, cur).ok()
                        }
                        None => sdp::answer(&o, &self.local, &self.shared.sdp).ok(),
                    });
                match answer {
                    Some((sd, n)) => {
                        let body = self.session.stamp(sd).to_string().into_bytes();
                        if n.remote_rtp != media.params().remote_rtp {
                            media.set_remote(n.remote_rtp, Some(n.remote_rtcp));
                        }
                        self.negotiated = Some(n);
                        let _ = self.shared.sip.answer_reinvite(self.handle, body).await;
                    }
                    None if offer.is_none() => {
                        // Offerless re-INVITE: offer our current session again.
                        let sd = self
                            .session
                            .last()
                            .cloned()
                            .unwrap_or_else(|| sdp::offer(&self.local, &self.shared.sdp));
                        let _ = self
                            .shared
                            .sip
                            .answer_reinvite(self.handle, sd.to_string().into_bytes())
                            .await;
                    }
                    None => {
                        let _ = self.shared.sip.reject_reinvite(self.handle, 488).await;
                    }
                }
            }
            CallInput::TransferResult { success, status } => {
                tracing::info!(success, status, "transfer outcome");
                if matches!(self.blocker, Blocker::Transfer { .. }) {
                    self.transfer_success = Some(success);
                    if success {
                        self.hangup(Outcome::Transferred).await;
                    } else {
                        // The caller is still with us: the flow decides.
                        self.blocker = Blocker::None;
                        // Status 0: the subscription ended without one.
                        self.feed(FlowEvent::TransferFailed {
                            status: (status != 0).then_some(status),
                        });
                    }
                }
            }
            CallInput::Ended(reason) => {
                tracing::info!(?reason, "call ended by SIP");
                let _ = self
                    .interp
                    .handle(FlowEvent::Hangup, self.shared.clock.now_utc());
                self.ended = true;
                if self.outcome.is_none() {
                    self.outcome = Some(self.interp.record().outcome.unwrap_or(Outcome::Abandoned));
                }
            }
            CallInput::Terminate => {
                self.hangup(self.interp.record().outcome.unwrap_or(Outcome::Abandoned))
                    .await;
            }
        }
    }

    async fn hangup(&mut self, outcome: Outcome) {
        if !self.ended {
            let _ = self.shared.sip.hangup(self.handle).await;
        }
        self.ended = true;
        self.outcome.get_or_insert(outcome);
    }

    /// Runs pending actions until one has to wait.
    async fn pump(&mut self, media: &mut MediaSession) {
        while self.blocker == Blocker::None && !self.ended {
            let Some(a) = self.pending.pop_front() else {
                return;
            };
            match a {
                Action::Say {
                    speech,
                    lang,
                    barge_in,
                } => {
                    self.synth_gen += 1;
                    self.say_barge_in = barge_in;
                    self.blocker = Blocker::Synth;
                    self.turn.reply_started(Instant::now());
                    let (gen, tts, tx) = (
                        self.synth_gen,
                        self.shared.tts.clone(),
                        self.work_tx.clone(),
                    );
                    tokio::task::spawn_blocking(move || synthesize(&tts, &speech, lang, gen, &tx));
                }
                Action::Play { file, barge_in } => {
                    self.synth_gen += 1;
                    self.say_barge_in = barge_in;
                    self.blocker = Blocker::Synth;
                    self.turn.reply_started(Instant::now());
                    let path = self
                        .shared
                        .flows_dir
                        .join(&self.route.municipality.id)
                        .join(&file);
                    let (gen, tts, tx) = (
                        self.synth_gen,
                        self.shared.tts.clone(),
                        self.work_tx.clone(),
                    );
                    tokio::task::spawn_blocking(move || {
                        let pcm = match tts.prompt_file(&path) {
                            Ok(p) => Some(p),
                            Err(e) => {
                                tracing::warn!(error = %e, "audio prompt not loaded");
                                None
                            }
                        };
                        let _ = tx.blocking_send(Work::Audio {
                            gen,
                            pcm,
                            last: true,
                        });
                    });
                }
                Action::Gather {
                    speech,
                    dtmf,
                    hints,
                    lang,
                    timeout,
                    ..
                } => {
                    self.start_gather(speech, dtmf, hints, lang, timeout);
                }
                Action::RecognizeAgain { .. } => {
                    // This loop cannot recognise the audio again with language
                    // identification: the words stand, as identified, so the
                    // flow counts the failure instead of waiting.
                    if let Some(FlowEvent::Speech {
                        text,
                        confidence,
                        lang,
                        ..
                    }) = self.last_speech.take()
                    {
                        self.feed(FlowEvent::Speech {
                            text,
                            confidence,
                            lang,
                            identified: true,
                        });
                    }
                }
                Action::SetLanguage(l) => self.lang = l,
                Action::Transfer {
                    department,
                    target,
                    context,
                } => {
                    if media.is_playing() {
                        self.pending.push_front(Action::Transfer {
                            department,
                            target,
                            context,
                        });
                        self.blocker = Blocker::Playout;
                        return;
                    }
                    self.transfer(&department, &target, &context).await;
                }
                Action::Invoke(req) => {
                    self.blocker = Blocker::Invoke {
                        since: Instant::now(),
                        filler: false,
                    };
                    let services = self.shared.services.clone();
                    let tx = self.work_tx.clone();
                    let (call_ref, muni, lang) =
                        (self.call_ref.clone(), self.muni().to_string(), self.lang);
                    let now = self.shared.clock.now_utc();
                    tokio::spawn(async move {
                        let who = Caller {
                            call_ref: &call_ref,
                            municipality: &muni,
                            lang,
                        };
                        let r = services.execute(who, req, now).await;
                        let _ = tx.send(Work::Result(r)).await;
                    });
                }
                Action::Hangup { outcome } => {
                    if media.is_playing() {
                        self.pending.push_front(Action::Hangup { outcome });
                        self.blocker = Blocker::Playout;
                        return;
                    }
                    self.hangup(outcome).await;
                }
            }
        }
    }

    async fn transfer(
        &mut self,
        department: &str,
        target: &str,
        context: &[(String, Pii<String>)],
    ) {
        let who = Caller {
            call_ref: &self.call_ref,
            municipality: &self.route.municipality.id,
            lang: self.lang,
        };
        let intent = self.interp.record().intents.last().cloned();
        let headers = match self
            .shared
            .services
            .transfer_headers(who, department, context, intent)
        {
            Ok(h) => h
                .headers
                .into_iter()
                .map(|(n, v)| (HeaderName::parse(&n), v))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "transfer context not built; transferring without it");
                Vec::new()
            }
        };
        let uri_text = if target.contains(':') {
            target.to_string()
        } else {
            let domain = if self.shared.transfer_domain.is_empty() {
                self.source.to_string()
            } else {
                self.shared.transfer_domain.clone()
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
        match self.shared.sip.refer(self.handle, uri, headers).await {
            Ok(()) => {
                self.blocker = Blocker::Transfer {
                    until: Instant::now() + self.shared.transfer_timeout,
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, "REFER not sent; back to the flow");
                self.feed(FlowEvent::TransferFailed { status: None });
            }
        }
    }

    async fn finish(self, outcome: Option<Outcome>) {
        let rec = self.interp.record().clone();
        let outcome = outcome.or(rec.outcome).unwrap_or(Outcome::Abandoned);
        tracing::info!(
            outcome = outcome.as_str(),
            steps = rec.steps.len(),
            turns = self.turns,
            "call finished"
        );
        if let Some(records) = &self.shared.records {
            let row = CallRecordRow {
                call_ref: self.call_ref.to_string(),
                municipality: self.route.municipality.id.clone(),
                called: self.called.clone(),
                calling: self.calling.clone(),
                started_at: self.started_at,
                ended_at: self.shared.clock.now_utc(),
                talk_ms: self.answered.elapsed().as_millis() as i64,
                steps: rec.steps.clone(),
                intents: rec.intents.clone(),
                outcome: outcome.as_str().to_string(),
                transferred_to: rec.transferred_to.clone(),
                lang: rec.lang.unwrap_or(self.lang).code().to_string(),
                turns: self.turns,
                transcript: (self.shared.keep_transcripts && !self.transcript.is_empty())
                    .then(|| Pii::new(self.transcript.join("\n"))),
            };
            if let Err(e) = records.insert(&row).await {
                tracing::warn!(error = %e, "call record not written");
            }
        }
        // Last: the call stops counting as active only once its record is
        // committed, so a graceful shutdown (which waits for no active calls)
        // cannot exit before the record is written.
        self.shared
            .metrics
            .call_ended(&self.route.municipality.id, outcome.as_str());
    }
}

fn filler_text(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "One moment, please.",
        _ => "Et øjeblik.",
    }
}

/// The filler prompts, for pre-rendering.
pub fn filler_prompts() -> Vec<(Lang, String)> {
    Lang::ALL
        .iter()
        .map(|l| (*l, filler_text(*l).to_string()))
        .collect()
}

/// Synthesises a Say on a blocking thread, sentence by sentence so the
/// first sentence plays while the rest is made: static speech through the
/// cache (static prompts are pre-rendered, so cache hits), personal speech
/// only through the non-caching path.
fn synthesize(tts: &Tts, speech: &Speech, lang: Lang, gen: u64, tx: &mpsc::Sender<Work>) {
    let stream = match SpeechStream::speech(tts, speech, lang) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no voice for the language");
            let _ = tx.blocking_send(Work::Audio {
                gen,
                pcm: None,
                last: true,
            });
            return;
        }
    };
    let n = stream.remaining();
    if n == 0 {
        let _ = tx.blocking_send(Work::Audio {
            gen,
            pcm: None,
            last: true,
        });
        return;
    }
    for (i, r) in stream.enumerate() {
        let pcm = match r {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, "synthesis failed");
                None
            }
        };
        if tx
            .blocking_send(Work::Audio {
                gen,
                pcm,
                last: i + 1 == n,
            })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_called_number_is_the_user_part_of_the_uri() {
        assert_eq!(
            user_part("sip:+4570101010@10.0.0.1:5060;user=phone"),
            "+4570101010"
        );
        assert_eq!(user_part("<sip:70101010@example.org>"), "70101010");
        assert_eq!(user_part("tel:+4570101010;phone-context=x"), "+4570101010");
    }
}
