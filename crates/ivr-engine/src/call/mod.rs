//! One call: a sans-IO [`core::CallCore`] holding the whole decision logic
//! (media session, flow interpreter, listening, barge-in, filler, eager turns,
//! transfer, timers, the call record), driven by a thin tokio task
//! ([`task`]) that owns the call's RTP/RTCP sockets and the clock and runs
//! the core's jobs ([`jobs`]: speech synthesis, STT, integrations).
//!
//! ```text
//! SIP events --(bounded, CALL_INPUT_QUEUE)--> call task <--(bounded, WORK_QUEUE)-- jobs
//!                                               |  ^                            (TTS, STT, integrations)
//!                                     RTP out   v  |  RTP in
//!                                     CallCore (MediaSession, Interpreter, ...)
//! ```
//!
//! Queues and what happens when full:
//! - SIP events to a call ([`CALL_INPUT_QUEUE`]): the dispatcher uses
//!   `try_send`; a DTMF INFO that does not fit is dropped (counted in the log;
//!   a caller pressing keys faster than the call handles them is not lost
//!   signalling), while call-ending events and re-INVITEs are handed to a
//!   short-lived task that waits for room, so they are never lost.
//! - Job results ([`WORK_QUEUE`]): jobs `send().await`, so a call that is
//!   momentarily slow makes its own jobs wait; nothing is dropped. A call has
//!   at most one synthesis, one filler, one integration request and two
//!   recognitions in flight (a speculative one that was thrown away may still
//!   be finishing while the next utterance is recognised), so the queue never
//!   holds more than a few items.
//! - The media session's own bounded queues are documented in `ivr-media`.

pub mod core;
pub mod debug;
pub mod io;
pub mod jobs;
pub mod listen;
pub mod sdp;
pub mod srtp;
pub mod task;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ivr_core::{CallId, Lang, Pii, WallClock};
use ivr_flow::Route;
use ivr_sip::sdp::{LocalMedia, SdpConfig};
use ivr_sip::{CallHandle, EndReason};
use ivr_tts::TextToSpeech;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::records::Records;
use crate::services::Services;
use crate::sip::SipHandle;
use crate::speech::SpeechPool;
use crate::turns::TurnTimings;

use self::core::{CallCore, CallSetup, CallTimings, CoreConfig};

/// Capacity of a call's SIP event queue.
pub const CALL_INPUT_QUEUE: usize = 32;
/// Capacity of a call's job result queue.
pub const WORK_QUEUE: usize = 16;

/// What the SIP side tells a call.
#[derive(Debug)]
pub enum CallInput {
    /// The ACK arrived (with the SDP answer for an offerless INVITE).
    Confirmed(Option<Vec<u8>>),
    /// A key from SIP INFO.
    Dtmf(ivr_core::Dtmf),
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
    pub tts: Arc<dyn TextToSpeech>,
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
    /// End-of-turn settings.
    pub turn: crate::config::TurnConfig,
    /// End-of-turn models (Silero VAD, Smart Turn).
    pub turn_models: crate::endofturn::TurnModels,
    /// SDP settings.
    pub sdp: SdpConfig,
    /// Transfer settings.
    pub transfer_domain: String,
    /// The timing policies of a call.
    pub timings: CallTimings,
    /// Keep transcripts in the call record.
    pub keep_transcripts: bool,
    /// Where finished turns' timings are published.
    pub turns: TurnTimings,
    /// Calls in progress (the console's live page).
    pub live: crate::live::LiveCalls,
    /// Crisis announcements set from the console, put in front of new calls.
    pub announcements: crate::console::announce::Announcements,
    /// Where callers' words are embedded (off the runtime's workers).
    pub embed: jobs::EmbedPool,
}

impl CallShared {
    /// The call core's share of the settings.
    pub fn core_config(&self) -> CoreConfig {
        CoreConfig {
            timings: self.timings,
            media_timeout: Duration::from_secs(self.media.media_timeout_s),
            first_media_timeout: Duration::from_secs(self.media.first_media_timeout_s),
            latch: ivr_media::rtp::LatchPolicy {
                nat: self.media.latch,
                ..Default::default()
            },
            endpointing: self.turn.endpointing(
                &self.media,
                self.turn_models.smart_turn.is_some(),
                self.turn_models.silero.is_some(),
            ),
            vad: self.turn_models.vad_factory(),
            smart_turn_threshold: self
                .turn_models
                .smart_turn
                .is_some()
                .then_some(self.turn.smart_turn_threshold),
            end_on_answer: self
                .turn
                .end_on_answer
                .then_some(if self.turn.end_on_open_answer {
                    ivr_flow::Answers::ClosedAndOpen
                } else {
                    ivr_flow::Answers::Closed
                }),
            sdp: self.sdp.clone(),
            transfer_domain: self.transfer_domain.clone(),
            keep_transcripts: self.keep_transcripts,
            clock: self.clock.clone(),
            stopwatch: Some(Arc::new(std::time::Instant::now)),
            speech_full: {
                let stt = self.stt.clone();
                Some(Arc::new(move || stt.is_full()))
            },
        }
    }
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

/// 64 bits from the OS-seeded CSPRNG: SSRC, RTP sequence and timestamp
/// starts, SDP session id and the RTP port are not guessable from one call.
fn random_u64() -> u64 {
    ivr_sip::ids::secure_u64()
}

/// Binds an even RTP port and the RTCP port above it from the configured range.
/// The search starts at a random even port (`start` is random bits).
async fn bind_rtp(cfg: &crate::config::MediaConfig, start: u64) -> Option<(UdpSocket, UdpSocket)> {
    let span = u32::from(cfg.rtp_port_max.saturating_sub(cfg.rtp_port_min)) / 2 + 1;
    for i in 0..span.min(200) {
        let off = ((start % u64::from(span)) as u32 + i) % span;
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
    /// The transport the INVITE came over (SRTP keys only over TLS).
    pub transport: ivr_sip::Transport,
    /// The trunk's symmetric-RTP setting (`None`: `[media] latch`).
    pub latch: Option<bool>,
    /// The trunk's source networks: with symmetric RTP on, a latch may also
    /// take a source in them (a far end whose SDP names a private address).
    pub trunk_nets: Vec<ivr_sip::guard::IpNet>,
    /// The trunk's SRTP setting (`None`: `[media] srtp`).
    pub srtp: Option<ivr_sip::sdp::SrtpPolicy>,
}

/// Our SRTP side for a call under `policy` that came over `transport`:
/// fresh keys from the OS CSPRNG when SDES may be used. Keys travel in the
/// SDP, so only a call signalled over TLS gets any (RFC 4568 sec. 8.3);
/// `Err(488)` when SRTP is required and the call is not over TLS.
///
/// # Errors
/// [`Refused`] with 488.
pub fn local_srtp(
    policy: ivr_sip::sdp::SrtpPolicy,
    transport: ivr_sip::Transport,
) -> Result<Option<ivr_sip::sdp::LocalSrtp>, Refused> {
    use ivr_sip::sdp::{LocalSrtp, SrtpKeyMaterial, SrtpPolicy};
    let required = match policy {
        SrtpPolicy::Off => return Ok(None),
        SrtpPolicy::Optional => false,
        SrtpPolicy::Required => true,
    };
    if !transport.secure() {
        return if required {
            Err(Refused(488))
        } else {
            Ok(None)
        };
    }
    Ok(Some(LocalSrtp {
        required,
        keys: SrtpKeyMaterial::new(ivr_sip::ids::secure_bytes()),
    }))
}

/// Negotiates media, answers 200 and starts the call's task.
///
/// # Errors
/// [`Refused`] with the status to reject with (488 for SDP, 503 without ports).
pub async fn accept(shared: Arc<CallShared>, inc: Incoming) -> Result<Accepted, Refused> {
    let (rtp, rtcp) = bind_rtp(&shared.media, random_u64())
        .await
        .ok_or(Refused(503))?;
    let port = rtp.local_addr().map_err(|_| Refused(503))?.port();
    let mut local = LocalMedia::new(shared.media.rtp_ip, port, random_u64() >> 1);
    local.srtp = local_srtp(inc.srtp.unwrap_or(shared.media.srtp), inc.transport)?;
    let answered =
        sdp::answer_invite(inc.offer.as_deref(), &local, &shared.sdp).map_err(Refused)?;
    shared
        .sip
        .ringing(inc.handle)
        .await
        .map_err(|_| Refused(500))?;
    let (tx, rx) = mpsc::channel(CALL_INPUT_QUEUE);
    shared
        .sip
        .answer(inc.handle, answered.body.clone())
        .await
        .map_err(|_| Refused(500))?;
    shared.metrics.call_started();
    shared.live.begin(crate::live::LiveCall {
        call_ref: inc.call_ref.to_string(),
        municipality: inc.route.municipality.id.clone(),
        caller: crate::live::mask_number(inc.calling.expose()),
        lang: inc.route.municipality.default_lang().code().to_string(),
        step: String::new(),
        last_intent: None,
        started_at: shared.clock.now_utc(),
        seconds: 0,
        since: std::time::Instant::now(),
    });
    let span = tracing::info_span!("call", call = %inc.call_ref, municipality = %inc.route.municipality.id);
    // A crisis announcement set in the console plays before the flow.
    let (route, announcement_audio) = shared
        .announcements
        .apply(inc.route, shared.clock.now_utc());
    let setup = CallSetup {
        prompts_dir: shared.flows_dir.join(&route.municipality.id),
        announcement_audio,
        call_ref: inc.call_ref,
        route,
        calling: inc.calling,
        called: inc.called,
        source: inc.source,
        local,
        answered,
        seed: random_u64(),
    };
    let mut core_cfg = shared.core_config();
    if let Some(nat) = inc.latch {
        core_cfg.latch.nat = nat;
    }
    for (slot, net) in core_cfg.latch.trunk_nets.iter_mut().zip(&inc.trunk_nets) {
        *slot = Some((net.addr, net.prefix));
    }
    let core = CallCore::new(setup, core_cfg, std::time::Instant::now());
    let call = task::CallTask {
        shared,
        handle: inc.handle,
        rtp,
        rtcp,
        inputs: rx,
    };
    let task = tokio::spawn(tracing::Instrument::instrument(call.run(core), span));
    Ok(Accepted { inputs: tx, task })
}

/// The filler prompts, for pre-rendering.
pub fn filler_prompts() -> Vec<(Lang, String)> {
    Lang::ALL
        .iter()
        .map(|l| (*l, self::core::filler_text(*l).to_string()))
        .collect()
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
