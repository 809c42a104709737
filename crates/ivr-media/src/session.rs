//! The per-call media facade the engine drives (sans-IO, after str0m's `Rtc`).
//!
//! Inputs: [`MediaSession::handle_rtp`], [`MediaSession::handle_rtcp`],
//! [`MediaSession::play`], [`MediaSession::flush`], [`MediaSession::send_dtmf`].
//! Output: [`MediaSession::poll_output`] until it returns
//! [`Output::Timeout`]; call it again at that instant or when input arrives.
//!
//! Every packet interval (pacer tick, see [`crate::pacer`]) the session:
//! 1. pulls one frame from the jitter buffer, decodes or conceals it to 16 kHz,
//!    runs VAD (at 8 kHz) and the endpointer, and records it if recording;
//! 2. sends one RTP packet: the next 20 ms of the playing prompt, a
//!    telephone-event packet, or comfort silence when nothing plays (RTP keeps
//!    flowing, timestamps continue, the marker bit starts each talkspurt).
//!
//! Nothing is encoded ahead of its deadline, so [`MediaSession::flush`] (and an
//! automatic barge-in) silences outgoing audio from the next packet on.
//!
//! The engine's loop for one call (sockets and sleeping are the engine's):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ivr_media::{Codec, MediaEvent, MediaParams, MediaSession, Output, PacketKind, SessionConfig};
//!
//! let params = MediaParams {
//!     codec: Codec::Pcma,
//!     payload_type: 8,
//!     telephone_event_pt: Some(101),
//!     ptime: Duration::from_millis(20),
//!     remote_rtp: "192.0.2.10:30000".parse().unwrap(),
//!     remote_rtcp: None,
//! };
//! let now = Instant::now();
//! let mut media = MediaSession::new(params, SessionConfig::default(), now).unwrap();
//! // On a datagram: media.handle_rtp(&buf[..n], from, Instant::now())
//! let wake_at = loop {
//!     match media.poll_output(now) {
//!         Output::Transmit(t) => {
//!             // rtp_socket.send_to(t.bytes, t.to) (or the RTCP socket for PacketKind::Rtcp)
//!             assert_eq!(t.kind, PacketKind::Rtp);
//!         }
//!         Output::Event(MediaEvent::Utterance(pcm)) => { /* to speech recognition */ let _ = pcm; }
//!         Output::Event(_other) => {}
//!         Output::Timeout(at) => break at, // sleep until `at` or the next datagram
//!     }
//! };
//! assert_eq!(wake_at, now + Duration::from_millis(20));
//! ```
//!
//! Bounded queues: events (64; when full the oldest is dropped and counted in
//! [`SessionStats::events_dropped`]); prompts (`max_play_queue` of audio; a
//! `play` beyond it is refused with [`MediaError::PlayQueueFull`]).

use std::collections::VecDeque;
use std::io::{Seek, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ivr_core::{Dtmf, Pcm};

use crate::codec::{AudioDecoder, AudioEncoder, Codec, MAX_FRAME_16K, MAX_PAYLOAD};
use crate::endpointing::{Endpointer, EndpointingConfig, EndpointingEvent};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::pacer::Pacer;
use crate::resample::{Downsampler2x, Upsampler2x};
use crate::rfc4733::{DtmfReceiver, DtmfSender};
use crate::rtcp::{build_report, parse_rtcp, ReportBlock, SenderInfo};
use crate::rtp::{
    build_rtp, parse_rtp, AddressGate, Latch, LatchPolicy, LatchVerdict, SeqVerdict, SourceStats,
};
use crate::vad::{FrameVad, Vad, VadConfig, FRAME_8K};
use crate::MediaError;

/// What SDP offer/answer settled for this call (filled in by the engine from `ivr-sip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaParams {
    /// The audio codec.
    pub codec: Codec,
    /// Its payload type in this session.
    pub payload_type: u8,
    /// RFC 4733 telephone-event payload type (8 kHz clock), if negotiated.
    pub telephone_event_pt: Option<u8>,
    /// Packet interval (`a=ptime`, usually 20 ms).
    pub ptime: Duration,
    /// Where the SDP says the far end's RTP is: the only address RTP is taken
    /// from and sent to (with NAT latching: its IP, any one port).
    pub remote_rtp: SocketAddr,
    /// The far end's RTCP address (`a=rtcp`; default: RTP port + 1 on the same
    /// IP, RFC 3550 sec. 11): the only address RTCP is taken from and sent to.
    pub remote_rtcp: Option<SocketAddr>,
}

/// Local choices for the session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our SSRC (random per call).
    pub ssrc: u32,
    /// First RTP sequence number (random, RFC 3550 sec. 5.1).
    pub initial_seq: u16,
    /// First RTP timestamp (random, RFC 3550 sec. 5.1).
    pub initial_ts: u32,
    /// RTCP CNAME.
    pub cname: String,
    /// Wall-clock time at the session's start instant (for RTCP NTP timestamps).
    pub wallclock_at_start: SystemTime,
    /// Nominal RTCP report interval (RFC 3550 sec. 6.2 minimum: 5 s; each
    /// interval is randomised to 0.5-1.5x, sec. 6.3.1).
    pub rtcp_interval: Duration,
    /// No RTP for this long: [`MediaEvent::MediaTimeout`].
    pub media_timeout: Duration,
    /// Nothing at all (RTP or RTCP) accepted from the far end within this
    /// long of the start: [`MediaEvent::MediaTimeout`] (zero: off). Bounds
    /// what is streamed to an SDP address that never answers (a forged one:
    /// amplification towards a victim) to this much audio.
    pub first_media_timeout: Duration,
    /// Most audio queued for playing.
    pub max_play_queue: Duration,
    /// Jitter buffer tuning.
    pub jitter: JitterConfig,
    /// VAD thresholds.
    pub vad: VadConfig,
    /// Endpointing and barge-in.
    pub endpointing: EndpointingConfig,
    /// Which source addresses are taken (strict, or NAT latching).
    pub latch: LatchPolicy,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ssrc: 0x1d1d_0001,
            initial_seq: 0,
            initial_ts: 0,
            cname: "ivr".into(),
            wallclock_at_start: UNIX_EPOCH,
            rtcp_interval: Duration::from_secs(5),
            media_timeout: Duration::from_secs(30),
            first_media_timeout: Duration::ZERO,
            max_play_queue: Duration::from_secs(600),
            jitter: JitterConfig::default(),
            vad: VadConfig::default(),
            endpointing: EndpointingConfig::default(),
            latch: LatchPolicy::default(),
        }
    }
}

/// How a prompt plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayOptions {
    /// Caller speech stops this prompt (and every prompt queued after it).
    pub barge_in: bool,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions { barge_in: true }
    }
}

/// Something the engine should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// The caller started speaking.
    SpeechStarted,
    /// The caller went quiet long enough that the utterance may be over
    /// (`EndpointingConfig::eager_silence`): the 16 kHz audio so far, to start
    /// recognising early. Exactly one `SpeechResumed` or `Utterance` follows;
    /// an `Utterance` then confirms it (the same speech, more trailing silence).
    TentativeEnd(Pcm),
    /// The caller spoke again after a `TentativeEnd`: that audio is not the utterance.
    SpeechResumed,
    /// The caller finished an utterance: 16 kHz audio for speech recognition.
    Utterance(Pcm),
    /// Caller speech during a barge-in prompt; the prompts were flushed.
    BargeIn,
    /// A keypress (RFC 4733).
    Dtmf(Dtmf),
    /// All queued prompts have been sent.
    PlaybackFinished,
    /// No RTP received for `media_timeout` (the far end is gone).
    MediaTimeout,
    /// Recording stopped because writing failed.
    RecordingFailed(MediaError),
}

/// What kind of datagram a [`Transmit`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// RTP, to the RTP port.
    Rtp,
    /// RTCP, to the RTCP port.
    Rtcp,
}

/// A datagram to send now (borrowed from the session: send it before polling again).
#[derive(Debug, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Destination.
    pub to: SocketAddr,
    /// RTP or RTCP.
    pub kind: PacketKind,
    /// The datagram.
    pub bytes: &'a [u8],
}

/// Result of [`MediaSession::poll_output`].
#[derive(Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// Send this datagram.
    Transmit(Transmit<'a>),
    /// Handle this event.
    Event(MediaEvent),
    /// Nothing more until this instant (or new input).
    Timeout(Instant),
}

/// Counters and link quality of the call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SessionStats {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP packets received and accepted.
    pub packets_received: u64,
    /// Packets from the far end ignored (wrong payload type, malformed).
    pub packets_rejected: u64,
    /// RTP and RTCP datagrams from an address the SDP did not negotiate,
    /// dropped unread.
    pub packets_foreign: u64,
    /// Jitter buffer counters.
    pub jitter_buffer: JitterStats,
    /// Our measured interarrival jitter of the far end's stream.
    pub jitter: Duration,
    /// Cumulative packets lost from the far end.
    pub lost: i32,
    /// The far end's last report about our stream: fraction lost (1/256).
    pub remote_fraction_lost: Option<u8>,
    /// The far end's last report about our stream: jitter (RTP units).
    pub remote_jitter: Option<u32>,
    /// Round-trip time from the far end's last report (RFC 3550 sec. 6.4.1).
    pub rtt: Option<Duration>,
    /// Pacer slots skipped after stalls.
    pub pacer_skipped: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
}

/// A writer a recording can go to (a file, or memory in tests).
pub trait RecordSink: Write + Seek + Send {}
impl<T: Write + Seek + Send> RecordSink for T {}

/// A queued prompt: the audio as given, shared (with the prompt cache and
/// every other call playing it), and where sending stands.
struct Prompt {
    audio: Arc<Pcm>,
    /// Next sample of `audio` to send.
    pos: usize,
    barge_in: bool,
}

const EVENT_CAP: usize = 64;

/// One call's media.
pub struct MediaSession {
    params: MediaParams,
    cfg: SessionConfig,
    start: Instant,
    latch: Latch,
    source: Option<SourceStats>,
    jb: JitterBuffer,
    decoder: AudioDecoder,
    encoder: AudioEncoder,
    dtmf_rx: DtmfReceiver,
    dtmf_tx: Option<(DtmfSender, u32)>,
    dtmf_queue: VecDeque<Dtmf>,
    pacer: Pacer,
    vad: Box<dyn FrameVad>,
    vad_down: Downsampler2x,
    up: Upsampler2x,
    endpointer: Endpointer,
    prompts: VecDeque<Prompt>,
    queued_samples: usize,
    talkspurt: bool,
    seq: u16,
    octets: u32,
    last_frame: [i16; MAX_FRAME_16K],
    last_len: usize,
    conceal_run: u32,
    events: VecDeque<MediaEvent>,
    rtp_buf: [u8; 12 + MAX_PAYLOAD],
    rtp_len: usize,
    rtcp_buf: [u8; 256],
    rtcp_pending: Option<usize>,
    next_rtcp: Instant,
    rtcp_rng: u64,
    last_rtp_at: Instant,
    /// The pacer deadline of the last RTP packet handed out.
    last_due: Option<Instant>,
    /// Anything (RTP or RTCP) accepted from the far end yet.
    heard: bool,
    timed_out: bool,
    last_sr: Option<(u32, Instant)>,
    rtcp_gate: AddressGate,
    recorder: Option<(hound::WavWriter<Box<dyn RecordSink>>, Upsampler2x)>,
    stats: SessionStats,
}

impl MediaSession {
    /// A session whose first packet is due at `start`.
    pub fn new(
        params: MediaParams,
        cfg: SessionConfig,
        start: Instant,
    ) -> Result<Self, MediaError> {
        let ptime_ms = params.ptime.as_millis();
        #[allow(
            clippy::manual_is_multiple_of,
            reason = "is_multiple_of needs Rust 1.87; workspace MSRV is 1.85"
        )]
        let odd = ptime_ms % 10 != 0;
        if !(10..=60).contains(&ptime_ms) || odd {
            return Err(MediaError::BadParams(
                "ptime must be 10, 20, 30, 40, 50 or 60 ms",
            ));
        }
        let jitter = JitterConfig {
            ptime: params.ptime,
            ..cfg.jitter
        };
        let endpointing = EndpointingConfig {
            frame: params.ptime,
            sample_rate: 16_000,
            ..cfg.endpointing
        };
        let (decoder, encoder) = (
            AudioDecoder::new(params.codec),
            AudioEncoder::new(params.codec),
        );
        if !decoder.is_ready() || !encoder.is_ready() {
            return Err(MediaError::BadParams("libopus could not set up the codec"));
        }
        Ok(MediaSession {
            latch: Latch::new(params.remote_rtp, cfg.latch),
            source: None,
            jb: JitterBuffer::new(jitter),
            decoder,
            encoder,
            dtmf_rx: DtmfReceiver::new(),
            dtmf_tx: None,
            dtmf_queue: VecDeque::with_capacity(32),
            pacer: Pacer::new(start, params.ptime),
            vad: Box::new(Vad::new(cfg.vad)),
            vad_down: Downsampler2x::new(),
            up: Upsampler2x::new(),
            endpointer: Endpointer::new(endpointing),
            prompts: VecDeque::with_capacity(16),
            queued_samples: 0,
            talkspurt: false,
            seq: cfg.initial_seq,
            octets: 0,
            last_frame: [0; MAX_FRAME_16K],
            last_len: 0,
            conceal_run: 0,
            events: VecDeque::with_capacity(EVENT_CAP),
            rtp_buf: [0; 12 + MAX_PAYLOAD],
            rtp_len: 0,
            rtcp_buf: [0; 256],
            rtcp_pending: None,
            next_rtcp: start + cfg.rtcp_interval / 2,
            rtcp_rng: u64::from(cfg.ssrc) | 0x9E37_79B9_0000_0000,
            last_rtp_at: start,
            last_due: None,
            heard: false,
            timed_out: false,
            last_sr: None,
            rtcp_gate: AddressGate::new(rtcp_addr(&params), cfg.latch),
            recorder: None,
            stats: SessionStats::default(),
            start,
            params,
            cfg,
        })
    }

    /// Replaces the voice activity detector (by default the energy VAD of
    /// [`crate::vad`] with `SessionConfig::vad`), e.g. with a model-based one.
    /// Call before media flows: the new detector starts from scratch.
    pub fn set_vad(&mut self, vad: Box<dyn FrameVad>) {
        self.vad = vad;
    }

    /// Ends the utterance in progress now, if a tentative end was announced
    /// ([`MediaEvent::TentativeEnd`]) and the caller has not spoken since:
    /// an end-of-turn model decided the caller has finished. The
    /// [`MediaEvent::Utterance`] (the tentative audio plus the silence since)
    /// is the next event polled. Returns whether it ended.
    pub fn end_turn(&mut self) -> bool {
        if let Some(EndpointingEvent::Utterance(p)) = self.endpointer.end_now() {
            self.push_event(MediaEvent::Utterance(p));
            true
        } else {
            false
        }
    }

    /// The negotiated parameters.
    pub fn params(&self) -> &MediaParams {
        &self.params
    }

    /// The pacer deadline of the last RTP packet [`Self::poll_output`]
    /// handed out (the engine measures how late it really left).
    pub fn last_packet_due(&self) -> Option<Instant> {
        self.last_due
    }

    /// Counters and link quality.
    pub fn stats(&self) -> SessionStats {
        let mut s = self.stats;
        s.jitter_buffer = self.jb.stats();
        s.pacer_skipped = self.pacer.skipped_total();
        if let Some(src) = &self.source {
            s.jitter = src.jitter();
            s.lost = src.cumulative_lost();
        }
        s
    }

    /// New remote address after a re-INVITE: media is taken from (and sent
    /// to) the new address only, and latching starts over there.
    pub fn set_remote(&mut self, remote_rtp: SocketAddr, remote_rtcp: Option<SocketAddr>) {
        self.params.remote_rtp = remote_rtp;
        self.params.remote_rtcp = remote_rtcp;
        self.latch.reset(remote_rtp);
        self.rtcp_gate.reset(rtcp_addr(&self.params));
    }

    fn foreign(&mut self) -> Result<(), MediaError> {
        self.stats.packets_foreign += 1;
        Err(MediaError::ForeignSource)
    }

    fn push_event(&mut self, e: MediaEvent) {
        if self.events.len() >= EVENT_CAP {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    /// Handles one datagram received on the RTP port. A datagram from any
    /// address but the far end's RTP address is counted and dropped unread
    /// ([`MediaError::ForeignSource`]). RTCP arriving there from the far end's
    /// RTP address (rtcp-mux, RFC 5761 sec. 4: second byte 200-206) is read
    /// as RTCP.
    pub fn handle_rtp(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<(), MediaError> {
        if !self.latch.accepts(from) {
            return self.foreign();
        }
        if bytes.get(1).is_some_and(|b| (200..=206).contains(b)) {
            return self.read_rtcp(bytes, now);
        }
        let r = self.handle_rtp_inner(bytes, from, now);
        if r.is_err() {
            self.stats.packets_rejected += 1;
        }
        r
    }

    fn handle_rtp_inner(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<(), MediaError> {
        let p = parse_rtp(bytes)?;
        let is_event = Some(p.payload_type) == self.params.telephone_event_pt;
        if p.payload_type != self.params.payload_type && !is_event {
            return Err(MediaError::UnexpectedPayloadType(p.payload_type));
        }
        if p.payload.len() > MAX_PAYLOAD {
            return Err(MediaError::PayloadTooLarge(p.payload.len(), MAX_PAYLOAD));
        }
        match self.latch.check(from, p.ssrc) {
            LatchVerdict::Foreign => return self.foreign(),
            LatchVerdict::Latched | LatchVerdict::NewSsrc => {
                self.source = Some(SourceStats::new(
                    p.sequence,
                    self.params.codec.clock_rate(),
                    self.start,
                ));
                self.jb.reset();
            }
            LatchVerdict::Same => {}
        }
        let Some(src) = self.source.as_mut() else {
            return Ok(());
        };
        let ext = match src.update(p.sequence, p.timestamp, now) {
            SeqVerdict::Probation => return Ok(()),
            SeqVerdict::Restarted(e) => {
                self.jb.reset();
                e
            }
            SeqVerdict::Accept(e) => e,
        };
        self.last_rtp_at = now;
        self.heard = true;
        self.timed_out = false;
        self.stats.packets_received += 1;
        if is_event {
            if let Some(key) = self.dtmf_rx.handle(p.timestamp, p.payload)? {
                self.push_event(MediaEvent::Dtmf(key));
            }
        } else {
            let jitter = src.jitter();
            self.jb.set_jitter(jitter);
            self.jb.insert(ext, p.payload);
        }
        Ok(())
    }

    /// Handles one datagram received on the RTCP port (RFC 3550 sec. 6.4).
    /// A datagram from any address but the far end's RTCP address is counted
    /// and dropped unread ([`MediaError::ForeignSource`]).
    pub fn handle_rtcp(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<(), MediaError> {
        if !self.rtcp_gate.accepts(from) {
            return self.foreign();
        }
        self.read_rtcp(bytes, now)?;
        self.rtcp_gate.admit(from);
        self.heard = true;
        Ok(())
    }

    fn read_rtcp(&mut self, bytes: &[u8], now: Instant) -> Result<(), MediaError> {
        let info = parse_rtcp(bytes)?;
        if let Some(si) = info.sender_info {
            self.last_sr = Some((((si.ntp >> 16) & 0xFFFF_FFFF) as u32, now));
        }
        for b in &info.blocks[..info.block_count] {
            if b.ssrc == self.cfg.ssrc {
                self.stats.remote_fraction_lost = Some(b.fraction_lost);
                self.stats.remote_jitter = Some(b.jitter);
                if b.last_sr != 0 {
                    let now_mid = ((self.ntp(now) >> 16) & 0xFFFF_FFFF) as u32;
                    let rtt = now_mid
                        .wrapping_sub(b.last_sr)
                        .wrapping_sub(b.delay_since_last_sr);
                    if rtt < 0x8000_0000 {
                        self.stats.rtt = Some(Duration::from_secs_f64(f64::from(rtt) / 65536.0));
                    }
                }
            }
        }
        Ok(())
    }

    /// Queues a prompt (any sample rate; converted once here, into audio
    /// of this call's own). Caller speech stops it if `opts.barge_in`.
    pub fn play(&mut self, pcm: &Pcm, opts: PlayOptions) -> Result<(), MediaError> {
        let converted = crate::resample::resample(pcm, self.params.codec.sample_rate())?;
        self.play_shared(Arc::new(converted), opts)
    }

    /// Queues a prompt without copying it when it is at the codec's rate:
    /// the session holds the `Arc`, so a cached prompt playing on a thousand
    /// calls is in memory once (the engine asks the prompt cache for each
    /// call's codec rate: `ivr_tts::TextToSpeech::synthesize_at`). Other
    /// rates are converted once here, whole, as [`Self::play`] does: a copy
    /// per call and work on the call's send path, so it is the fallback.
    pub fn play_shared(&mut self, pcm: Arc<Pcm>, opts: PlayOptions) -> Result<(), MediaError> {
        let rate = self.params.codec.sample_rate();
        let max = (self.cfg.max_play_queue.as_millis() as usize) * rate as usize / 1000;
        // A prompt at another rate is resampled whole with the high-quality
        // resampler: halving a 16 kHz prompt packet by packet with the
        // half-band FIR saved its 8 kHz copy but cost 0.4 PESQ-NB on the
        // Danish espeak prompt over PCMU (tests/media_pesq_baresip.rs), and
        // what callers hear comes first. Cached prompts arrive at the
        // codec's rate already and skip this.
        let audio = if pcm.sample_rate == rate {
            pcm
        } else {
            Arc::new(crate::resample::resample(&pcm, rate)?)
        };
        let len = audio.samples.len();
        if self.queued_samples + len > max {
            return Err(MediaError::PlayQueueFull);
        }
        self.queued_samples += len;
        if self.prompts.is_empty() {
            self.endpointer.arm_barge_in();
        }
        self.prompts.push_back(Prompt {
            audio,
            pos: 0,
            barge_in: opts.barge_in,
        });
        Ok(())
    }

    /// Stops all prompts: the next packet sent is silence.
    pub fn flush(&mut self) {
        self.prompts.clear();
        self.queued_samples = 0;
    }

    /// Whether a prompt is playing.
    pub fn is_playing(&self) -> bool {
        !self.prompts.is_empty()
    }

    /// Sends a key as RFC 4733 events (100 ms tone) after any key being sent.
    pub fn send_dtmf(&mut self, key: Dtmf) -> Result<(), MediaError> {
        if self.params.telephone_event_pt.is_none() {
            return Err(MediaError::BadParams("telephone-event was not negotiated"));
        }
        if self.dtmf_queue.len() >= 32 {
            return Err(MediaError::PlayQueueFull);
        }
        self.dtmf_queue.push_back(key);
        Ok(())
    }

    /// Records both directions (left: caller, right: bot) as a 16 kHz stereo WAV into `sink`.
    pub fn start_recording(&mut self, sink: Box<dyn RecordSink>) -> Result<(), MediaError> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let w =
            hound::WavWriter::new(sink, spec).map_err(|e| MediaError::Recording(e.to_string()))?;
        self.recorder = Some((w, Upsampler2x::new()));
        Ok(())
    }

    /// Finishes the recording (writes the WAV header lengths).
    pub fn stop_recording(&mut self) -> Result<(), MediaError> {
        if let Some((w, _)) = self.recorder.take() {
            w.finalize()
                .map_err(|e| MediaError::Recording(e.to_string()))?;
        }
        Ok(())
    }

    /// RFC 3550 sec. 6.3.1: the interval is randomised to [0.5, 1.5] x nominal so
    /// reports of many calls do not synchronise. Deterministic per SSRC (xorshift).
    fn rtcp_interval(&mut self) -> Duration {
        let mut x = self.rtcp_rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rtcp_rng = x;
        let frac = (x >> 11) as f64 / (1u64 << 53) as f64;
        self.cfg.rtcp_interval.mul_f64(0.5 + frac)
    }

    fn ntp(&self, now: Instant) -> u64 {
        let wall = self.cfg.wallclock_at_start + now.saturating_duration_since(self.start);
        let d = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs() + 2_208_988_800; // 1900 -> 1970
        (secs << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
    }

    fn units_per_packet(&self) -> u32 {
        self.params.codec.clock_rate() * self.params.ptime.as_millis() as u32 / 1000
    }

    /// The next thing to do. Call repeatedly until it returns [`Output::Timeout`].
    pub fn poll_output(&mut self, now: Instant) -> Output<'_> {
        if let Some(n) = self.rtcp_pending.take() {
            let to = self.rtcp_gate.send_to();
            return Output::Transmit(Transmit {
                to,
                kind: PacketKind::Rtcp,
                bytes: &self.rtcp_buf[..n],
            });
        }
        if let Some(e) = self.events.pop_front() {
            return Output::Event(e);
        }
        if let Some(tick) = self.pacer.poll(now) {
            self.last_due = Some(tick.deadline);
            let mut caller = [0i16; MAX_FRAME_16K];
            let mut bot = [0i16; MAX_FRAME_16K];
            let nc = self.receive_tick(&mut caller);
            let (len, nb) = self.send_tick(tick.slot, &mut bot);
            self.rtp_len = len;
            if self.recorder.is_some() {
                self.record(&caller[..nc], &bot[..nb]);
            }
            if now >= self.next_rtcp {
                self.next_rtcp = now + self.rtcp_interval();
                self.rtcp_pending = self.build_rtcp(now).ok();
            }
            let to = self.latch.send_to();
            return Output::Transmit(Transmit {
                to,
                kind: PacketKind::Rtp,
                bytes: &self.rtp_buf[..self.rtp_len],
            });
        }
        let silent = now.saturating_duration_since(self.last_rtp_at) >= self.cfg.media_timeout;
        let never_heard = !self.heard
            && !self.cfg.first_media_timeout.is_zero()
            && now.saturating_duration_since(self.start) >= self.cfg.first_media_timeout;
        if !self.timed_out && (silent || never_heard) {
            self.timed_out = true;
            return Output::Event(MediaEvent::MediaTimeout);
        }
        Output::Timeout(self.pacer.next_deadline())
    }

    fn receive_tick(&mut self, pcm: &mut [i16; MAX_FRAME_16K]) -> usize {
        // Work at the codec's own rate (8 kHz for G.711: the VAD needs nothing
        // else), then derive the other rate once.
        let ms = self.params.ptime.as_millis() as usize;
        let narrow = self.params.codec.sample_rate() == 8000;
        let n_native = (ms * self.params.codec.sample_rate() as usize / 1000).min(MAX_FRAME_16K);
        let mut native = [0i16; MAX_FRAME_16K];
        match self.jb.pop() {
            Playout::Frame(_, payload) => {
                let n = self.decoder.decode_native(payload, &mut native[..n_native]);
                self.last_frame[..n].copy_from_slice(&native[..n]);
                self.last_len = n;
                self.conceal_run = 0;
            }
            Playout::Lost if self.params.codec == Codec::Opus => {
                // Opus conceals from its own state (RFC 6716 sec. 4.4).
                self.conceal_run += 1;
                self.decoder.conceal(&mut native[..n_native]);
            }
            Playout::Lost => {
                // Concealment: repeat the last frame, halving each time; silence after 3.
                self.conceal_run += 1;
                if self.conceal_run <= 3 {
                    let shift = self.conceal_run;
                    let n = self.last_len.min(n_native);
                    for (o, s) in native[..n].iter_mut().zip(&self.last_frame) {
                        *o = *s >> shift;
                    }
                }
            }
            Playout::Idle => {}
        }
        let n16 = (ms * 16).min(MAX_FRAME_16K);
        let mut nb = [0i16; MAX_FRAME_16K / 2];
        let n8 = if narrow {
            self.up.process(&native[..n_native], &mut pcm[..n16]);
            nb[..n_native].copy_from_slice(&native[..n_native]);
            n_native
        } else {
            pcm[..n16].copy_from_slice(&native[..n16]);
            self.vad_down.process(&pcm[..n16], &mut nb)
        };
        let frame = &pcm[..n16];
        let barge = self.prompts.front().is_some_and(|p| p.barge_in);
        let mut verdict = Default::default();
        let mut any_speech = false;
        let mut any_voiced = false;
        for chunk in nb[..n8].chunks(FRAME_8K) {
            let v = self.vad.process(chunk);
            any_speech |= v.speech;
            any_voiced |= v.voiced;
            verdict = v;
        }
        verdict.speech = any_speech;
        verdict.voiced = any_voiced;
        // Audio during a keypress is the tone: do not let it start an utterance.
        if self.dtmf_rx.in_event() {
            verdict = Default::default();
        }
        match self.endpointer.push(frame, verdict, barge) {
            Some(EndpointingEvent::SpeechStarted) => self.push_event(MediaEvent::SpeechStarted),
            Some(EndpointingEvent::Utterance(p)) => self.push_event(MediaEvent::Utterance(p)),
            Some(EndpointingEvent::Tentative(p)) => self.push_event(MediaEvent::TentativeEnd(p)),
            Some(EndpointingEvent::Resumed) => self.push_event(MediaEvent::SpeechResumed),
            Some(EndpointingEvent::BargeIn) => {
                self.flush();
                self.push_event(MediaEvent::BargeIn);
            }
            Some(EndpointingEvent::Discarded) | None => {}
        }
        n16
    }

    /// Builds the RTP packet for pacer slot `slot` into `rtp_buf`; writes the
    /// audio sent (at the codec rate) into `sent`. Returns (packet length, samples in `sent`).
    fn send_tick(&mut self, slot: u64, sent: &mut [i16; MAX_FRAME_16K]) -> (usize, usize) {
        let units = self.units_per_packet();
        let ts = self
            .cfg
            .initial_ts
            .wrapping_add((slot as u32).wrapping_mul(units));
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.stats.packets_sent += 1;
        // Telephone-event in progress or queued: it replaces audio on the timeline.
        if self.dtmf_tx.is_none() {
            if let Some(key) = self.dtmf_queue.pop_front() {
                // 100 ms of tone at the codec's RTP clock (800 units at 8 kHz, 4800 at 48 kHz).
                let tone = (self.params.codec.clock_rate() / 10) as u16;
                self.dtmf_tx = Some((DtmfSender::new(key, tone, units as u16), ts));
            }
        }
        if let Some((tx, start_ts)) = &mut self.dtmf_tx {
            let start_ts = *start_ts;
            if let Some(pkt) = tx.next_packet() {
                let pt = self.params.telephone_event_pt.unwrap_or(101);
                let n = build_rtp(
                    &mut self.rtp_buf,
                    pt,
                    pkt.marker,
                    seq,
                    start_ts,
                    self.cfg.ssrc,
                    &pkt.payload,
                )
                .unwrap_or(0);
                self.octets = self.octets.wrapping_add(4);
                sent.fill(0);
                return (n, 0);
            }
            self.dtmf_tx = None;
        }
        let rate = self.params.codec.sample_rate() as usize;
        let n = (rate * self.params.ptime.as_millis() as usize / 1000).min(MAX_FRAME_16K);
        sent[..n].fill(0);
        let mut marker = false;
        let mut finished = false;
        if let Some(p) = self.prompts.front_mut() {
            let samples = &p.audio.samples;
            let written = (samples.len() - p.pos).min(n);
            sent[..written].copy_from_slice(&samples[p.pos..p.pos + written]);
            p.pos += written;
            self.queued_samples = self.queued_samples.saturating_sub(written);
            if !self.talkspurt {
                marker = true;
                self.talkspurt = true;
            }
            if p.pos >= samples.len() {
                self.prompts.pop_front();
                finished = self.prompts.is_empty();
            }
        } else {
            self.talkspurt = false;
        }
        if seq == self.cfg.initial_seq && self.stats.packets_sent == 1 {
            marker = true; // first packet of the stream
        }
        let mut payload = [0u8; MAX_PAYLOAD];
        let plen = self.encoder.encode_native(&sent[..n], &mut payload);
        let len = build_rtp(
            &mut self.rtp_buf,
            self.params.payload_type,
            marker,
            seq,
            ts,
            self.cfg.ssrc,
            &payload[..plen],
        )
        .unwrap_or(0);
        self.octets = self.octets.wrapping_add(plen as u32);
        if finished {
            self.talkspurt = false;
            self.push_event(MediaEvent::PlaybackFinished);
        }
        (len, n)
    }

    fn record(&mut self, caller: &[i16], bot: &[i16]) {
        let wide = self.params.codec.sample_rate() == 16_000;
        let Some((w, up)) = &mut self.recorder else {
            return;
        };
        let mut bot16 = [0i16; MAX_FRAME_16K];
        let bot16 = if wide {
            bot
        } else {
            let n = up.process(bot, &mut bot16);
            &bot16[..n]
        };
        let mut result = Ok(());
        for (i, c) in caller.iter().enumerate() {
            let b = bot16.get(i).copied().unwrap_or(0);
            result = w.write_sample(*c).and_then(|_| w.write_sample(b));
            if result.is_err() {
                break;
            }
        }
        if let Err(e) = result {
            self.recorder = None;
            self.push_event(MediaEvent::RecordingFailed(MediaError::Recording(
                e.to_string(),
            )));
        }
    }

    fn build_rtcp(&mut self, now: Instant) -> Result<usize, MediaError> {
        let units = self.units_per_packet();
        let slot_now = (now.saturating_duration_since(self.start).as_nanos()
            / self.params.ptime.as_nanos().max(1)) as u32;
        let sender = SenderInfo {
            ntp: self.ntp(now),
            rtp_ts: self
                .cfg
                .initial_ts
                .wrapping_add(slot_now.wrapping_mul(units)),
            packets: self.stats.packets_sent as u32,
            octets: self.octets,
        };
        let block = match (&mut self.source, self.latch.source()) {
            (Some(src), Some((_, ssrc))) => {
                let (last_sr, dlsr) = match self.last_sr {
                    Some((mid, at)) => (
                        mid,
                        (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32,
                    ),
                    None => (0, 0),
                };
                Some(ReportBlock {
                    ssrc,
                    fraction_lost: src.take_fraction_lost(),
                    cumulative_lost: src.cumulative_lost(),
                    ext_highest_seq: src.extended_max() as u32,
                    jitter: src.jitter_units(),
                    last_sr,
                    delay_since_last_sr: dlsr,
                })
            }
            _ => None,
        };
        build_report(
            &mut self.rtcp_buf,
            self.cfg.ssrc,
            Some(sender),
            block,
            self.cfg.cname.as_bytes(),
        )
    }
}

/// The far end's RTCP address: `a=rtcp`, else RTP port + 1 on the same IP
/// (RFC 3550 sec. 11).
fn rtcp_addr(p: &MediaParams) -> SocketAddr {
    p.remote_rtcp
        .unwrap_or_else(|| SocketAddr::new(p.remote_rtp.ip(), p.remote_rtp.port().wrapping_add(1)))
}
