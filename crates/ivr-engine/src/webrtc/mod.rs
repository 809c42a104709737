//! Browser calls: the console's softphone ("Call this flow") over WebRTC,
//! into the same call core as SIP calls.
//!
//! ```text
//! browser (RTCPeerConnection, mic, RTCDTMFSender)
//!    | POST /api/v1/calls/webrtc  {municipality, sdp offer}  -> {call_ref, sdp answer}
//!    | UDP: ICE (STUN) + DTLS + SRTP          one port per call, [webrtc] candidate_ips
//!    v
//! [str0m::Rtc]  sans-IO peer connection in RTP mode: ICE-lite, DTLS-SRTP, RTCP
//!    |  RTP packets (Opus/G.711, RFC 4733 telephone-event), decrypted
//!    v
//! [call::core::CallCore]  the SIP calls' core, with the leg's media
//!    |  parameters (`with_leg_media`): jitter, Opus -> 16 kHz, VAD, STT,
//!    |  flow, TTS, 20 ms pacer, Opus encode
//!    v  RTP packets back into the Rtc, which encrypts and sends them
//! ```
//!
//! Why str0m and not the `webrtc` crate: str0m is a sans-IO state machine
//! (`handle_input`/`poll_output`, time passed in), so one task owns the
//! peer connection beside the call core and nothing spawns threads or
//! timers of its own (ARCHITECTURE.md principles 1, 2 and 13). The
//! `webrtc` crate is an async port of Pion with its own tasks per
//! transport, interceptor chains and callbacks; bridging it to the core
//! would mean channels between tasks for every packet. str0m's RTP mode
//! hands the already-depacketised RTP to us, and the existing media
//! session (jitter buffer, RFC 4733, pacer) does the rest as on a phone.
//! ICE-lite suffices: the engine has fixed host addresses and the browser
//! is the controlling agent that probes them.
//!
//! Signalling is the console API (authenticated operator, CSRF on changes);
//! the call's state and its debugger view are read from [`Softphone`].
//! Transfers cannot leave a browser call: a `Transfer` step is answered as
//! a refused transfer (the flow takes its failure path) and named in the
//! call's state.

pub mod debugger;
pub mod leg;
pub mod task;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ivr_core::{CallId, Pii};
use ivr_flow::FlowStore;
use ivr_sip::sdp::{LocalMedia, LocalSession};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::call::core::{CallCore, CallSetup};
use crate::call::sdp::Answered;
use crate::call::{CallInput, CallShared, CALL_INPUT_QUEUE};
use crate::records::CallOrigin;

/// `[webrtc]`: the console softphone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcConfig {
    /// Browser calls may be made (needs the console).
    pub enabled: bool,
    /// Host addresses offered as ICE candidates (empty: `[media] rtp_ip`).
    pub candidate_ips: Vec<IpAddr>,
    /// Browser calls in progress at once.
    pub max_calls: usize,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            enabled: true,
            candidate_ips: Vec::new(),
            max_calls: 8,
        }
    }
}

/// Why a browser call could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebRtcError {
    /// Browser calls are off (`[webrtc] enabled = false`).
    #[error("browser calls are disabled")]
    Disabled,
    /// No such municipality (or not loaded).
    #[error("no such municipality")]
    UnknownMunicipality,
    /// The number asked for is not one of the municipality's.
    #[error("not a number of this municipality")]
    UnknownNumber,
    /// `[webrtc] max_calls` browser calls are in progress.
    #[error("too many browser calls in progress")]
    Busy,
    /// The SDP offer is not usable (parse error, no audio, no common codec).
    #[error("unusable SDP offer: {0}")]
    BadOffer(String),
    /// No UDP port could be bound, or no usable candidate address.
    #[error("no media port: {0}")]
    NoPort(String),
}

/// Where a browser call stands (what the page polls).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneState {
    /// Call reference.
    pub call_ref: String,
    /// Municipality id.
    pub municipality: String,
    /// `connecting` (ICE/DTLS), `connected` (the flow runs), `ended`.
    pub state: String,
    /// Codec in use (`opus`, `PCMA`, `PCMU`), once known.
    pub codec: Option<String>,
    /// The flow step the call is at (`flow/step`).
    pub step: String,
    /// The last intent recognised.
    pub last_intent: Option<String>,
    /// Why it ended (`hangup`, `browser`, `ice`, `failed`), when it did.
    pub ended_by: Option<String>,
    /// A transfer the flow asked for (it cannot leave a browser call).
    pub transfer_refused: Option<String>,
}

/// One browser call as the registry keeps it.
struct Entry {
    /// The operator who placed it (only they may read or end it).
    owner: String,
    inputs: mpsc::Sender<CallInput>,
    state: Arc<Mutex<PhoneState>>,
    log: Arc<debugger::DebugLog>,
    ended_at: Option<Instant>,
}

/// The browser calls of this engine. Cheap to clone.
#[derive(Clone)]
pub struct Softphone {
    shared: Arc<CallShared>,
    flows: Arc<FlowStore>,
    cfg: WebRtcConfig,
    calls: Arc<Mutex<HashMap<String, Entry>>>,
}

/// A call just set up: its reference and the SDP answer for the browser.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Placed {
    /// Call reference (the handle for state and hang-up).
    pub call_ref: String,
    /// The SDP answer.
    pub sdp: String,
}

/// How long an ended call's state stays readable.
const KEEP_ENDED: std::time::Duration = std::time::Duration::from_secs(120);

impl Softphone {
    /// The softphone of an engine.
    pub fn new(shared: Arc<CallShared>, flows: Arc<FlowStore>, cfg: WebRtcConfig) -> Self {
        Softphone {
            shared,
            flows,
            cfg,
            calls: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Places a call from operator `owner` to municipality `m`'s published
    /// flow (the one its `number` leads to; default: its first number's),
    /// answering the browser's SDP `offer`.
    ///
    /// # Errors
    /// [`WebRtcError`].
    pub async fn place(
        &self,
        owner: &str,
        m: &str,
        number: Option<&str>,
        offer: &str,
        client: Option<SocketAddr>,
    ) -> Result<Placed, WebRtcError> {
        let mut route = self
            .flows
            .municipality(m)
            .ok_or(WebRtcError::UnknownMunicipality)?;
        if let Some(n) = number {
            route.entry = self.entry_of(m, n)?;
        }
        self.place_route(owner, route, CallOrigin::Browser, offer, client)
            .await
    }

    /// The entry flow municipality `m`'s phone `number` leads to (published
    /// numbers; a draft is called through the same numbers).
    ///
    /// # Errors
    /// [`WebRtcError::UnknownNumber`] when `number` is not `m`'s.
    pub fn entry_of(&self, m: &str, number: &str) -> Result<String, WebRtcError> {
        self.flows
            .route(number)
            .filter(|r| r.municipality.id == m)
            .map(|r| r.entry)
            .ok_or(WebRtcError::UnknownNumber)
    }

    /// Places a call from operator `owner` to `route` (a draft's, see
    /// `console::drafts`, with `origin` [`CallOrigin::Draft`]), answering
    /// the browser's SDP `offer`.
    ///
    /// # Errors
    /// [`WebRtcError`].
    pub async fn place_route(
        &self,
        owner: &str,
        route: ivr_flow::Route,
        origin: CallOrigin,
        offer: &str,
        client: Option<SocketAddr>,
    ) -> Result<Placed, WebRtcError> {
        if !self.cfg.enabled {
            return Err(WebRtcError::Disabled);
        }
        let m = route.municipality.id.clone();
        let m = m.as_str();
        {
            let mut calls = self.lock();
            calls.retain(|_, e| e.ended_at.is_none_or(|t| t.elapsed() < KEEP_ENDED));
            if calls.values().filter(|e| e.ended_at.is_none()).count() >= self.cfg.max_calls {
                return Err(WebRtcError::Busy);
            }
        }
        let ips: Vec<IpAddr> = if self.cfg.candidate_ips.is_empty() {
            vec![self.shared.media.rtp_ip]
        } else {
            self.cfg.candidate_ips.clone()
        };
        let sockets = bind(&self.shared.media, &ips).await?;
        let addrs = sockets
            .iter()
            .map(UdpSocket::local_addr)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| WebRtcError::NoPort(e.to_string()))?;
        // The core's own address (the call's RTP address in turn timings):
        // the first candidate's.
        let local_port = *addrs
            .first()
            .ok_or_else(|| WebRtcError::NoPort("no candidate address".into()))?;
        let now = Instant::now();
        let negotiated = leg::answer(offer, &addrs, now)?;
        let call_ref = CallId::from_u64(random_u64());
        let state = Arc::new(Mutex::new(PhoneState {
            call_ref: call_ref.to_string(),
            municipality: m.to_string(),
            state: "connecting".into(),
            codec: Some(negotiated.codec_name.clone()),
            step: String::new(),
            last_intent: None,
            ended_by: None,
            transfer_refused: None,
        }));
        let (tx, rx) = mpsc::channel(CALL_INPUT_QUEUE);
        let shared = self.shared.clone();
        shared.metrics.call_started();
        shared.live.begin(crate::live::LiveCall {
            call_ref: call_ref.to_string(),
            municipality: m.to_string(),
            caller: "browser".into(),
            lang: route.municipality.default_lang().code().to_string(),
            step: String::new(),
            last_intent: None,
            started_at: shared.clock.now_utc(),
            seconds: 0,
            since: now,
        });
        let (route, announcement_audio) = shared.announcements.apply(route, shared.clock.now_utc());
        let local = LocalMedia::new(local_port.ip(), local_port.port(), random_u64() >> 1);
        let setup = CallSetup {
            prompts_dir: shared.flows_dir.join(&route.municipality.id),
            announcement_audio,
            call_ref: call_ref.clone(),
            route,
            // The operator's test call: no phone number; flows that read the
            // caller's number see this marker.
            calling: Pii::new(format!("browser:{owner}")),
            called: Pii::new("browser".to_string()),
            source: client.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            local,
            answered: Answered {
                body: Vec::new(),
                negotiated: None,
                our_offer: None,
                session: LocalSession::new(),
            },
            seed: random_u64(),
        };
        let core = CallCore::new(setup, shared.core_config(), now)
            .with_leg_media(negotiated.params.clone())
            .with_origin(origin)
            .with_debugger();
        let log = Arc::new(debugger::DebugLog::default());
        let span = tracing::info_span!("call", call = %call_ref, municipality = %m, leg = "webrtc");
        let sdp = negotiated.answer_sdp.clone();
        let task = task::WebRtcTask {
            shared,
            leg: negotiated.into_leg(sockets),
            inputs: rx,
            state: state.clone(),
            log: log.clone(),
        };
        self.lock().insert(
            call_ref.to_string(),
            Entry {
                owner: owner.to_string(),
                inputs: tx,
                state: state.clone(),
                log,
                ended_at: None,
            },
        );
        let calls = self.calls.clone();
        let key = call_ref.to_string();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                task.run(core).await;
                if let Some(e) = calls
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(&key)
                {
                    e.ended_at = Some(Instant::now());
                }
            },
            span,
        ));
        Ok(Placed {
            call_ref: call_ref.to_string(),
            sdp,
        })
    }

    /// The state of operator `owner`'s call `call_ref` (None: not theirs or unknown).
    pub fn state(&self, owner: &str, call_ref: &str) -> Option<PhoneState> {
        let calls = self.lock();
        let e = calls.get(call_ref).filter(|e| e.owner == owner)?;
        let s = e.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(s)
    }

    /// The flow debugger's events of operator `owner`'s call `call_ref`
    /// (None: not theirs or unknown).
    pub fn debug_log(&self, owner: &str, call_ref: &str) -> Option<Arc<debugger::DebugLog>> {
        let calls = self.lock();
        calls
            .get(call_ref)
            .filter(|e| e.owner == owner)
            .map(|e| e.log.clone())
    }

    /// Hangs up operator `owner`'s call `call_ref` from the browser side;
    /// false when it is not theirs or unknown.
    pub async fn hang_up(&self, owner: &str, call_ref: &str) -> bool {
        let tx = {
            let calls = self.lock();
            match calls.get(call_ref).filter(|e| e.owner == owner) {
                Some(e) => e.inputs.clone(),
                None => return false,
            }
        };
        // The task may be gone already (the call ended): that is a hang-up too.
        let _ = tx
            .send(CallInput::Ended(ivr_sip::EndReason::RemoteBye))
            .await;
        true
    }
}

fn random_u64() -> u64 {
    ivr_sip::ids::secure_u64()
}

/// Binds a UDP port from the `[media]` range on each candidate address
/// (one socket per host candidate: ICE-lite answers a check on the address
/// it came to, and the browser probes every candidate), the same port on
/// all when it is free. Addresses where nothing can be bound are left out;
/// at least one must work.
async fn bind(
    media: &crate::config::MediaConfig,
    ips: &[IpAddr],
) -> Result<Vec<UdpSocket>, WebRtcError> {
    let span = u32::from(media.rtp_port_max.saturating_sub(media.rtp_port_min)) + 1;
    let start = (random_u64() % u64::from(span)) as u32;
    let mut sockets: Vec<UdpSocket> = Vec::new();
    let mut port_of_first: Option<u16> = None;
    for ip in ips {
        if ip.is_unspecified() {
            continue;
        }
        // The first socket's port first, then the range from a random start.
        let ports = port_of_first
            .into_iter()
            .chain((0..span.min(200)).filter_map(|i| {
                u16::try_from(u32::from(media.rtp_port_min) + (start + i) % span).ok()
            }));
        for port in ports {
            if let Ok(s) = UdpSocket::bind(SocketAddr::new(*ip, port)).await {
                port_of_first.get_or_insert(port);
                sockets.push(s);
                break;
            }
        }
    }
    if sockets.is_empty() {
        return Err(WebRtcError::NoPort(
            "no free port in [media] rtp_port_min..rtp_port_max on a usable address (set [webrtc] candidate_ips when rtp_ip is 0.0.0.0)".into(),
        ));
    }
    Ok(sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_candidate_address_gets_a_socket_on_the_same_port() {
        let media = crate::config::MediaConfig {
            rtp_port_min: 46_000,
            rtp_port_max: 46_998,
            ..Default::default()
        };
        let ips: Vec<IpAddr> = vec![
            "127.0.0.1".parse().unwrap(),
            // Skipped: an unspecified address is no candidate.
            "0.0.0.0".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
        ];
        let sockets = bind(&media, &ips).await.unwrap();
        let addrs: Vec<SocketAddr> = sockets.iter().map(|s| s.local_addr().unwrap()).collect();
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        assert_eq!(addrs[0].ip(), ips[0]);
        assert_eq!(addrs[1].ip(), ips[2]);
        assert_eq!(addrs[0].port(), addrs[1].port());
        assert!((46_000..=46_998).contains(&addrs[0].port()));
    }
}
