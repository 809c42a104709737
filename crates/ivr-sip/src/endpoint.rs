//! The user-agent core (RFC 3261 sec. 8, 12-15, 17 glued together): one
//! [`Endpoint`] answers inbound calls (UAS), places callback calls (UAC),
//! transfers calls with REFER (RFC 3515), registers to trunks, and answers
//! OPTIONS probes. It is sans-IO:
//!
//! - inputs: [`Endpoint::handle_datagram`] / [`Endpoint::handle_message`]
//!   with the source address, [`Endpoint::handle_timeout`] with the time,
//!   and application commands ([`Endpoint::answer`], [`Endpoint::hangup`], ...);
//! - outputs: [`Endpoint::poll_transmit`], [`Endpoint::poll_event`] and
//!   [`Endpoint::poll_timeout`].
//!
//! The application decides SDP: an [`Event::IncomingCall`] carries the
//! offer, [`Endpoint::answer`] takes the answer. Output queues hold only
//! what the last input produced; the owner drains them after every input, so
//! they are bounded by the work of one input.
//!
//! Behaviours and where they come from:
//! - 100 Trying at once for INVITE (sec. 8.2.6.1 / 17.2.1), 180 on request.
//! - 2xx retransmitted with T1 doubling to T2 until ACK, BYE after 64*T1
//!   without ACK (sec. 13.3.1.4, 14.2 style).
//! - CANCEL: 200 for the CANCEL, 487 for the INVITE if still pending (sec. 9.2);
//!   481 when nothing matches. Our CANCEL racing the peer's 200: ACK then BYE
//!   (sec. 9.1, 15).
//! - re-INVITE (sec. 14.2): the application answers the new offer (hold,
//!   codec change) or refuses (488); 491 while another is pending.
//! - INFO `application/dtmf-relay` (RFC 6086 package, de-facto body) as DTMF.
//! - REFER with Refer-To, Referred-By and context headers; NOTIFY `message/sipfrag`
//!   (RFC 3515 sec. 2.4.5) to progress and a final success/failure.
//! - REGISTER client with digest challenge (sec. 10.2, 22.2) and refresh before expiry.
//! - Inbound protection and rate limiting ([`crate::guard`]); 503 above the call limit.
//! - Transports UDP, TCP and TLS (sec. 18, 26.2; RFC 5630): over TLS our
//!   Via is `SIP/2.0/TLS` with [`EndpointConfig::advertised_tls`], our
//!   Contact `sips:` when the dialog's request was `sips:` (sec. 12.1.1) and
//!   `sip:...;transport=tls` otherwise, and our requests inside the dialog
//!   go back over the connection the call came in on.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_core::{Dtmf, Pii};

use crate::auth::{Algorithm, Credentials, NonceIssuer, Secret};
use crate::dialog::{uri_socket_addr, Dialog, DialogId};
use crate::guard::{
    Access, DigestVerifier, GuardStats, RateLimit, RateLimiter, TokenBucket, TrunkAccess,
    UnknownSource,
};
use crate::ids::{IdGen, IdSource};
use crate::msg::header::split_list;
use crate::msg::{
    Challenge, HeaderName as H, Headers, Host, Message, Method, NameAddr, ParseError, Request,
    Response, SipUri, Uri, Via,
};
use crate::policy::{self, check_request, check_response, make_response, UasPolicy};
use crate::transaction::{ClientTransaction, ServerTransaction, TimerConfig, TxKey, TxOutput};

/// Transport of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP (unreliable: transactions retransmit).
    Udp,
    /// TCP (reliable).
    Tcp,
    /// TLS over TCP (reliable; RFC 3261 sec. 26.2, RFC 5630): Via
    /// `SIP/2.0/TLS`, our Contact a `sips:` URI.
    Tls,
}

impl Transport {
    /// Whether the transport is reliable (sec. 17: no retransmissions).
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }
    /// Whether the transport is encrypted and authenticated (TLS).
    pub fn secure(self) -> bool {
        matches!(self, Transport::Tls)
    }
    /// The Via transport token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Transport to use.
    pub transport: Transport,
    /// Destination (for TCP: the connection to this peer, opened if needed).
    pub dest: SocketAddr,
    /// The message.
    pub bytes: Vec<u8>,
}

/// The application's reference to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// The application's reference to one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegistrationHandle(pub u64);

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The peer sent BYE.
    RemoteBye,
    /// We hung up.
    LocalHangup,
    /// Our 2xx was never acknowledged (64*T1).
    AckTimeout,
    /// The peer cancelled before answer.
    Cancelled,
}

/// Something the application should know or act on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A new inbound call: answer with [`Endpoint::answer`] (SDP from the
    /// media layer) or refuse with [`Endpoint::reject`].
    IncomingCall {
        /// The call.
        call: CallHandle,
        /// The caller (From URI).
        from: Pii<String>,
        /// The called address (To URI).
        to: Pii<String>,
        /// The SDP offer, if the INVITE had one (else the offer goes in our 200).
        offer: Option<Vec<u8>>,
        /// Where it came from.
        source: SocketAddr,
        /// The transport it came over (the call's signalling stays on it:
        /// responses and our in-dialog requests use the same connection).
        transport: Transport,
        /// The trunk it came in on (`EndpointConfig::trunks`), by name;
        /// `None` when no trunks are configured.
        trunk: Option<String>,
        /// All headers, for context (e.g. User-to-User, Diversion); they carry
        /// phone numbers, hence `Pii`.
        headers: Pii<Headers>,
    },
    /// The dialog is confirmed (ACK received for our 2xx, or we ACKed theirs).
    /// `sdp` is the answer carried in the ACK for an offerless INVITE.
    CallConfirmed {
        /// The call.
        call: CallHandle,
        /// SDP in the ACK, if any.
        sdp: Option<Vec<u8>>,
    },
    /// Provisional response to our INVITE.
    CallProgress {
        /// The call.
        call: CallHandle,
        /// Status code (180, 183, ...).
        status: u16,
    },
    /// Our INVITE was answered (2xx); the ACK is already sent.
    CallAnswered {
        /// The call.
        call: CallHandle,
        /// The SDP answer.
        answer: Option<Vec<u8>>,
    },
    /// Our INVITE failed (non-2xx final, or 408 on Timer B).
    CallFailed {
        /// The call.
        call: CallHandle,
        /// Status code.
        status: u16,
    },
    /// The call is over.
    CallEnded {
        /// The call.
        call: CallHandle,
        /// Why.
        reason: EndReason,
    },
    /// The peer sent a re-INVITE: answer with [`Endpoint::answer_reinvite`]
    /// or refuse with [`Endpoint::reject_reinvite`].
    ReInvite {
        /// The call.
        call: CallHandle,
        /// The new offer (None: we must offer in the 200).
        offer: Option<Vec<u8>>,
    },
    /// A DTMF key from INFO application/dtmf-relay.
    Dtmf {
        /// The call.
        call: CallHandle,
        /// The key.
        digit: Dtmf,
        /// Duration in ms, if given.
        duration_ms: Option<u32>,
    },
    /// The peer accepted our REFER (202).
    TransferAccepted {
        /// The call.
        call: CallHandle,
    },
    /// The transfer target's provisional progress (NOTIFY sipfrag 1xx).
    TransferProgress {
        /// The call.
        call: CallHandle,
        /// Status from the sipfrag.
        status: u16,
    },
    /// The transfer finished: success (2xx sipfrag) or failure (REFER
    /// refused, timed out, or a >= 300 sipfrag).
    TransferResult {
        /// The call.
        call: CallHandle,
        /// Whether the target answered.
        success: bool,
        /// The status behind the decision.
        status: u16,
    },
    /// Registration succeeded; refreshed automatically before expiry.
    Registered {
        /// The registration.
        reg: RegistrationHandle,
        /// Granted expiry in seconds.
        expires: u32,
    },
    /// Registration failed (retried after `retry_after`).
    RegistrationFailed {
        /// The registration.
        reg: RegistrationHandle,
        /// Status code (408 on timeout).
        status: u16,
    },
}

/// Errors of application commands.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No such call (ended, or never existed).
    #[error("unknown call")]
    UnknownCall,
    /// The command does not fit the call's state (e.g. answer twice).
    #[error("command not valid in the call's current state")]
    InvalidState,
    /// A header given by the application is malformed.
    #[error("invalid header: {0}")]
    InvalidHeader(ParseError),
}

/// Computes digest credentials for our REGISTER (RFC 3261 sec. 22.2). The
/// engine implements it with the `auth` module.
pub trait DigestClient: Send {
    /// The Authorization (or Proxy-Authorization) value answering `challenge`.
    fn authorize(
        &mut self,
        challenge: &Challenge,
        method: &Method,
        uri: &str,
        body: &[u8],
    ) -> Option<String>;
}

/// Registration settings for one trunk.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// Registrar address.
    pub registrar: SocketAddr,
    /// Transport to it.
    pub transport: Transport,
    /// Request-URI (`sip:trunk.example`).
    pub registrar_uri: Uri,
    /// Address of record (To/From).
    pub aor: Uri,
    /// Requested expiry (seconds).
    pub expires: u32,
    /// Retry delay after a failure.
    pub retry_after: Duration,
}

/// An outbound call (callback).
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    /// Request-URI.
    pub target: Uri,
    /// Where to send the INVITE (trunk or peer).
    pub dest: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// Our identity (From URI).
    pub from: Uri,
    /// SDP offer.
    pub offer: Option<Vec<u8>>,
    /// Extra headers (e.g. P-Asserted-Identity).
    pub headers: Vec<(H, String)>,
}

/// Endpoint configuration.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The address we advertise in Via and Contact.
    pub advertised: SocketAddr,
    /// The address we advertise in Via and Contact for TLS (the TLS
    /// listener's port, usually 5061); `None`: `advertised`.
    pub advertised_tls: Option<SocketAddr>,
    /// User part of our Contact.
    pub contact_user: String,
    /// User-Agent (requests) / Server (responses) header value; empty: the
    /// header is left out. The default carries no version.
    pub user_agent: String,
    /// What we accept (Allow/Supported/Accept).
    pub policy: UasPolicy,
    /// T1/T2/T4.
    pub timers: TimerConfig,
    /// Concurrent calls before 503.
    pub max_calls: usize,
    /// `None`: accept from any source; `Some`: only these trunks (or digest), else 403.
    pub trunks: Option<Vec<TrunkAccess>>,
    /// Per-source limit for requests outside dialogs from sources outside
    /// every trunk (a trunk has its own bucket, so a flood from elsewhere
    /// does not take from it).
    pub rate_limit: RateLimit,
    /// What a request from a source outside every trunk gets: 403 or nothing.
    pub unknown_sources: UnknownSource,
    /// Realm of the digest challenges to trunks with credentials.
    pub digest_realm: String,
    /// Algorithm of those challenges.
    pub digest_algorithm: Algorithm,
    /// Randomness for tags, branches, Call-IDs: the OS CSPRNG unless a
    /// simulation test asks for a seeded (predictable) sequence.
    pub ids: IdSource,
}

impl EndpointConfig {
    /// Defaults for a given advertised address.
    pub fn new(advertised: SocketAddr) -> Self {
        EndpointConfig {
            advertised,
            advertised_tls: None,
            contact_user: "ivr".into(),
            user_agent: "ivr-sip".into(),
            policy: UasPolicy::default(),
            timers: TimerConfig::default(),
            max_calls: 200,
            trunks: None,
            rate_limit: RateLimit::default(),
            unknown_sources: UnknownSource::Forbidden,
            digest_realm: "ivr".into(),
            digest_algorithm: Algorithm::Sha256,
            ids: IdSource::Os,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// UAS: INVITE received, no final response yet.
    Incoming,
    /// UAS: 2xx sent, waiting for ACK.
    Answered,
    /// UAC: INVITE sent.
    Calling,
    /// UAC: provisional received.
    Early,
    /// ACK exchanged.
    Confirmed,
}

#[derive(Debug)]
struct OkRetransmit {
    bytes: Vec<u8>,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

#[derive(Debug)]
struct Call {
    state: CallState,
    transport: Transport,
    peer: SocketAddr,
    invite: Request,
    invite_key: Option<TxKey>,
    dialog: Option<Dialog>,
    local_tag: String,
    ok: Option<OkRetransmit>,
    /// Pending re-INVITE server transaction and its request.
    reinvite: Option<(TxKey, Request)>,
    /// UAC: hangup asked before any provisional: CANCEL when one arrives.
    cancel_wanted: bool,
    /// UAC: ACK for the 2xx, re-sent on 2xx retransmissions.
    ack: Option<Vec<u8>>,
    transfer_done: bool,
    /// UAS: the trunk the INVITE came in on (index into `cfg.trunks`).
    trunk: Option<usize>,
}

#[derive(Debug, Clone)]
enum Purpose {
    Invite(CallHandle),
    Bye,
    Cancel,
    Refer(CallHandle),
    Register(RegistrationHandle),
}

#[derive(Debug)]
struct ClientEntry {
    tx: ClientTransaction,
    transport: Transport,
    dest: SocketAddr,
    purpose: Purpose,
}

#[derive(Debug)]
struct ServerEntry {
    tx: ServerTransaction,
    transport: Transport,
    dest: SocketAddr,
    call: Option<CallHandle>,
}

struct Registration {
    cfg: RegistrationConfig,
    auth: Box<dyn DigestClient>,
    call_id: String,
    from_tag: String,
    cseq: u32,
    authorized_once: bool,
    next_at: Option<Instant>,
    /// An un-REGISTER (Expires: 0) is in flight; drop the registration after it.
    removing: bool,
}

/// Whose deadline a timer-index entry is.
#[derive(Debug, Clone)]
enum TimerOwner {
    Client(TxKey),
    Server(TxKey),
    Call(CallHandle),
    Reg(RegistrationHandle),
}

/// All deadlines of the endpoint in one min-heap. Every change of an owner's
/// deadline pushes a new entry; entries whose owner has since moved on are
/// skipped when popped (lazy deletion), so each input costs O(log n) rather
/// than a scan of every transaction.
#[derive(Debug, Default)]
struct TimerIndex {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, u64)>>,
    owners: HashMap<u64, TimerOwner>,
    seq: u64,
}

impl TimerIndex {
    fn push(&mut self, at: Instant, owner: TimerOwner) {
        self.seq += 1;
        self.heap.push(std::cmp::Reverse((at, self.seq)));
        self.owners.insert(self.seq, owner);
    }
    fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|r| r.0 .0)
    }
    fn pop_due(&mut self, now: Instant) -> Vec<TimerOwner> {
        let mut out = Vec::new();
        while let Some(std::cmp::Reverse((at, seq))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let Some(o) = self.owners.remove(&seq) {
                out.push(o);
            }
        }
        out
    }
}

/// The sans-IO user agent.
pub struct Endpoint {
    cfg: EndpointConfig,
    ids: IdGen,
    next_handle: u64,
    calls: HashMap<CallHandle, Call>,
    dialogs: HashMap<DialogId, CallHandle>,
    server: HashMap<TxKey, ServerEntry>,
    client: HashMap<TxKey, ClientEntry>,
    regs: HashMap<RegistrationHandle, Registration>,
    timers: TimerIndex,
    limiter: RateLimiter,
    verifier: Option<Box<dyn DigestVerifier>>,
    /// One bucket per trunk (same order as `cfg.trunks`), made on first use.
    trunk_buckets: Vec<Option<TokenBucket>>,
    /// Nonces of the challenges to trunks with credentials (random secret).
    nonces: NonceIssuer,
    /// The instant nonce times count from.
    epoch: Option<Instant>,
    stats: GuardStats,
    /// Shutting down: OPTIONS probes get 503, so a load balancer stops
    /// sending new calls (the application refuses INVITEs itself).
    draining: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

/// Whether `u` is a `sips:` URI.
fn is_sips(u: &Uri) -> bool {
    matches!(u, Uri::Sip(s) if s.secure)
}

/// Where a request inside a dialog goes. Over TLS: back over the connection
/// the dialog was set up on (`peer`: the connection's remote address), as
/// RFC 5923 reuses connections: the trunk authenticated that connection,
/// and a caller behind NAT or a trunk that accepts no inbound connections
/// cannot be reached at its Contact anyway. Otherwise the route set's
/// first hop or the remote target (RFC 3261 sec. 12.2.1.1).
fn in_dialog_dest(transport: Transport, d: &Dialog, peer: SocketAddr) -> SocketAddr {
    if transport == Transport::Tls {
        return peer;
    }
    d.next_hop().unwrap_or(peer)
}

/// The guard's decision on a request outside a dialog.
enum Admission {
    /// Process it; it came in on this trunk (`None`: no trunks configured,
    /// or admitted by the [`DigestVerifier`]).
    Trunk(Option<usize>),
    /// Drop it without a reply (rate limit, or silence towards strangers).
    Drop,
    /// Answer 401 with this WWW-Authenticate value.
    Challenge(String),
    /// Answer 403.
    Forbidden,
}

/// Whether the `uri` of digest credentials names the Request-URI (RFC 3261
/// sec. 22.4 leaves the comparison to the server: compared as parsed URIs,
/// so a client's different but equal spelling still matches).
fn uri_names(creds_uri: &str, req_uri: &Uri) -> bool {
    Uri::parse(creds_uri).is_ok_and(|u| u == *req_uri) || creds_uri == req_uri.to_string()
}

fn response_dest(via: &Via, src: SocketAddr, transport: Transport) -> SocketAddr {
    // RFC 3261 sec. 18.2.2 with RFC 3581 sec. 4: reliable -> the connection;
    // rport -> source address and port; else received (source IP) + Via port.
    if transport.reliable() || via.rport().is_some() {
        return src;
    }
    SocketAddr::new(src.ip(), via.port.unwrap_or(5060))
}

/// Adds `received` (and fills `rport`) on the top Via (sec. 18.2.1, RFC 3581 sec. 4).
fn stamp_via(req: &mut Request, src: SocketAddr) {
    let Some(pos) = req.headers.0.iter().position(|h| h.name == H::Via) else {
        return;
    };
    let value = req.headers.0[pos].value.clone();
    let Ok(parts) = split_list(&value, &H::Via) else {
        return;
    };
    let Some(first) = parts.first() else { return };
    let Ok(mut via) = Via::parse(first) else {
        return;
    };
    let host_is_src = match &via.host {
        Host::V4(a) => std::net::IpAddr::V4(*a) == src.ip(),
        Host::V6(a) => std::net::IpAddr::V6(*a) == src.ip(),
        Host::Domain(_) => false,
    };
    let rport = via.rport().is_some();
    if !host_is_src || rport {
        let ip = match src.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        via.params.set("received", Some(ip));
    }
    if rport {
        via.params.set("rport", Some(src.port().to_string()));
    }
    let mut rebuilt = via.to_string();
    for p in &parts[1..] {
        rebuilt.push_str(", ");
        rebuilt.push_str(p);
    }
    req.headers.0[pos].value = rebuilt;
}

/// The SDP in a body: `application/sdp`, or the SDP part of `multipart/mixed` (RFC 5621).
pub fn sdp_of(headers: &Headers, body: &[u8]) -> Option<Vec<u8>> {
    if body.is_empty() {
        return None;
    }
    let ct = headers.content_type().ok().flatten()?;
    if ct.is("application", "sdp") {
        return Some(body.to_vec());
    }
    if ct.is("multipart", "mixed") {
        let boundary = ct.params.get("boundary").flatten()?;
        let boundary = crate::msg::header::unquote(boundary);
        let delim = format!("--{boundary}");
        let text = body;
        let mut parts = Vec::new();
        let mut start = None;
        let mut i = 0;
        while i + delim.len() <= text.len() {
            if text[i..].starts_with(delim.as_bytes()) {
                if let Some(s) = start {
                    parts.push(&text[s..i]);
                }
                start = Some(i + delim.len());
                i += delim.len();
            } else {
                i += 1;
            }
        }
        for p in parts {
            let p = p.strip_prefix(b"\r\n").unwrap_or(p);
            let sep = p.windows(4).position(|w| w == b"\r\n\r\n")?;
            let head = String::from_utf8_lossy(&p[..sep]).to_ascii_lowercase();
            if head.contains("content-type: application/sdp") {
                let b = &p[sep + 4..];
                return Some(b.strip_suffix(b"\r\n").unwrap_or(b).to_vec());
            }
        }
    }
    None
}

/// Parses an `application/dtmf-relay` body (`Signal=5`, `Duration=160`).
pub fn parse_dtmf_relay(body: &[u8]) -> Option<(Dtmf, Option<u32>)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut digit = None;
    let mut duration = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        if k.trim().eq_ignore_ascii_case("signal") {
            digit = match v {
                "10" => Some(Dtmf::from_char('*').ok()?),
                "11" => Some(Dtmf::from_char('#').ok()?),
                _ => {
                    let mut ch = v.chars();
                    let c = ch.next()?;
                    if ch.next().is_some() {
                        return None;
                    }
                    Some(Dtmf::from_char(c.to_ascii_uppercase()).ok()?)
                }
            };
        } else if k.trim().eq_ignore_ascii_case("duration") {
            duration = v.parse().ok();
        }
    }
    digit.map(|d| (d, duration))
}

/// The status code of a `message/sipfrag` body (RFC 3420) holding a status line.
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?;
    let mut it = line.split(' ');
    let v = it.next()?;
    if !v.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code: u16 = it.next()?.parse().ok()?;
    (100..=699).contains(&code).then_some(code)
}

impl Endpoint {
    /// A new endpoint.
    pub fn new(cfg: EndpointConfig) -> Self {
        Endpoint {
            ids: IdGen::new(cfg.ids),
            limiter: RateLimiter::new(cfg.rate_limit),
            trunk_buckets: vec![None; cfg.trunks.as_ref().map_or(0, Vec::len)],
            nonces: NonceIssuer::with_random_secret(&cfg.digest_realm, cfg.digest_algorithm, 300),
            epoch: None,
            stats: GuardStats::default(),
            draining: false,
            cfg,
            next_handle: 1,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            server: HashMap::new(),
            client: HashMap::new(),
            regs: HashMap::new(),
            timers: TimerIndex::default(),
            verifier: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Challenge sources outside the trunk allowlists with digest instead of 403.
    pub fn set_digest_verifier(&mut self, v: Box<dyn DigestVerifier>) {
        self.verifier = Some(v);
    }

    /// Marks the endpoint as draining (graceful shutdown): OPTIONS probes
    /// outside a dialog are answered 503 with `Retry-After`, so a load
    /// balancer (Kamailio's dispatcher) takes this instance out of its set
    /// while the calls in progress finish.
    pub fn set_draining(&mut self, on: bool) {
        self.draining = on;
    }

    /// Counts of the inbound guard's decisions so far.
    pub fn guard_stats(&self) -> GuardStats {
        self.stats
    }

    /// Number of calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }
    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
    /// When [`Endpoint::handle_timeout`] must next be called.
    /// May return a deadline that turns out to have nothing due (an entry
    /// left by a timer that was since moved); calling `handle_timeout` then
    /// does nothing. O(1).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek()
    }

    fn handle(&mut self) -> u64 {
        self.next_handle += 1;
        self.next_handle
    }

    fn send(&mut self, transport: Transport, dest: SocketAddr, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit {
            transport,
            dest,
            bytes,
        });
    }

    /// The address we advertise for `transport`.
    fn advertised(&self, transport: Transport) -> SocketAddr {
        match (transport, self.cfg.advertised_tls) {
            (Transport::Tls, Some(a)) => a,
            _ => self.cfg.advertised,
        }
    }

    fn via(&mut self, transport: Transport) -> String {
        let a = self.advertised(transport);
        let host = match a.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        format!(
            "SIP/2.0/{} {host}:{};branch={};rport",
            transport.as_str(),
            a.port(),
            self.ids.branch()
        )
    }

    /// Our Contact. Over TLS: a `sips:` URI when the dialog's request was
    /// addressed to one (RFC 3261 sec. 12.1.1 requires it then, and RFC
    /// 5630 prefers it), else `sip:` with `;transport=tls`, which is what
    /// peers that do not route `sips:` (baresip/libre 1.x, older PBXs)
    /// understand; over TCP `;transport=tcp`.
    fn contact(&self, transport: Transport, sips: bool) -> String {
        let a = self.advertised(transport);
        let host = match a.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let (scheme, t) = match transport {
            Transport::Tcp => ("sip", ";transport=tcp"),
            Transport::Tls if sips => ("sips", ""),
            Transport::Tls => ("sip", ";transport=tls"),
            Transport::Udp => ("sip", ""),
        };
        format!(
            "<{scheme}:{}@{host}:{}{t}>",
            self.cfg.contact_user,
            a.port()
        )
    }

    fn our_uri(&self) -> String {
        let a = self.cfg.advertised;
        let host = match a.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        format!("sip:{}@{host}:{}", self.cfg.contact_user, a.port())
    }

    // ---------------------------------------------------------------- input

    /// A UDP datagram arrived from `src`. Unparseable datagrams are dropped,
    /// or answered 400 when the head parses as a request (RFC 4475 sec. 3.1.2).
    pub fn handle_datagram(&mut self, src: SocketAddr, bytes: &[u8], now: Instant) {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return; // keep-alive
        }
        match Message::parse_datagram(bytes) {
            Ok(m) => self.handle_message(Transport::Udp, src, m, now),
            Err(_) => {
                // Towards strangers the same rules as for parseable
                // requests: silence if configured, else rate-limited.
                if self.is_stranger(src) {
                    let silent = self.cfg.unknown_sources == UnknownSource::Silence
                        && self.verifier.is_none();
                    if silent || !self.limiter.allow(src.ip(), now) {
                        return;
                    }
                }
                let tag = self.ids.tag();
                if let Some(r) = policy::bad_request_for_unframed(bytes, &tag) {
                    if let Ok(via) = r.headers.top_via() {
                        let dest = response_dest(&via, src, Transport::Udp);
                        self.send(Transport::Udp, dest, r.to_bytes());
                    }
                }
            }
        }
    }

    /// A whole message arrived (from a datagram or a stream framer).
    pub fn handle_message(
        &mut self,
        transport: Transport,
        src: SocketAddr,
        m: Message,
        now: Instant,
    ) {
        match m {
            Message::Request(mut req) => {
                stamp_via(&mut req, src);
                self.on_request(transport, src, req, now);
            }
            Message::Response(resp) => self.on_response(resp, now),
        }
    }

    /// Time has advanced to `now`: fire due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut give_up = Vec::new();
        for owner in self.timers.pop_due(now) {
            match owner {
                TimerOwner::Client(k) => {
                    let due = self.client.get_mut(&k).is_some_and(|e| {
                        let due = e.tx.next_deadline().is_some_and(|d| d <= now);
                        if due {
                            e.tx.handle_timeout(now);
                        }
                        due
                    });
                    if due {
                        self.drain_client(&k, now);
                    }
                }
                TimerOwner::Server(k) => {
                    let due = self.server.get_mut(&k).is_some_and(|e| {
                        let due = e.tx.next_deadline().is_some_and(|d| d <= now);
                        if due {
                            e.tx.handle_timeout(now);
                        }
                        due
                    });
                    if due {
                        self.drain_server(&k);
                    }
                }
                // 2xx retransmission (sec. 13.3.1.4).
                TimerOwner::Call(h) => {
                    let t2 = self.cfg.timers.t2;
                    let Some(c) = self.calls.get_mut(&h) else {
                        continue;
                    };
                    let Some(ok) = c.ok.as_mut() else { continue };
                    if ok.give_up <= now {
                        give_up.push(h);
                    } else if ok.next <= now {
                        let (t, d, b) = (c.transport, c.peer, ok.bytes.clone());
                        ok.interval = (ok.interval * 2).min(t2);
                        ok.next = now + ok.interval;
                        let at = ok.next.min(ok.give_up);
                        self.timers.push(at, TimerOwner::Call(h));
                        self.send(t, d, b);
                    }
                }
                TimerOwner::Reg(h) => {
                    if self
                        .regs
                        .get(&h)
                        .is_some_and(|r| r.next_at.is_some_and(|t| t <= now))
                    {
                        self.send_register(h, None, now);
                    }
                }
            }
        }
        for h in give_up {
            if let Some(c) = self.calls.get_mut(&h) {
                c.ok = None;
            }
            let _ = self.send_bye(h, now);
            self.end_call(h, EndReason::AckTimeout);
        }
    }

    fn respond(&mut self, key: &TxKey, resp: Response, now: Instant) {
        if let Some(e) = self.server.get_mut(key) {
            e.tx.send_response(&resp, now);
        }
        self.drain_server(key);
    }

    /// Sends what one server transaction produced, in order (so e.g. the
    /// 200 for a CANCEL leaves before the 487 for its INVITE).
    fn drain_server(&mut self, key: &TxKey) {
        let Some(e) = self.server.get_mut(key) else {
            return;
        };
        if let Some(at) = e.tx.next_deadline() {
            self.timers.push(at, TimerOwner::Server(key.clone()));
        }
        let Some(e) = self.server.get_mut(key) else {
            return;
        };
        let (t, d) = (e.transport, e.dest);
        let outs: Vec<TxOutput> = std::iter::from_fn(|| e.tx.poll_output()).collect();
        for o in outs {
            match o {
                TxOutput::Transmit(b) => self.send(t, d, b),
                TxOutput::Terminated => {
                    self.server.remove(key);
                }
                TxOutput::Timeout | TxOutput::Response(_) => {}
            }
        }
    }

    /// Handles what one client transaction produced, in order.
    fn drain_client(&mut self, key: &TxKey, now: Instant) {
        let Some(e) = self.client.get_mut(key) else {
            return;
        };
        if let Some(at) = e.tx.next_deadline() {
            self.timers.push(at, TimerOwner::Client(key.clone()));
        }
        let Some(e) = self.client.get_mut(key) else {
            return;
        };
        let (t, d, purpose) = (e.transport, e.dest, e.purpose.clone());
        let outs: Vec<TxOutput> = std::iter::from_fn(|| e.tx.poll_output()).collect();
        for o in outs {
            match o {
                TxOutput::Transmit(b) => self.send(t, d, b),
                TxOutput::Terminated => {
                    self.client.remove(key);
                }
                TxOutput::Timeout => self.on_client_final(key, purpose.clone(), None, now),
                TxOutput::Response(r) => self.on_client_final(key, purpose.clone(), Some(r), now),
            }
        }
    }

    fn new_server_tx(
        &mut self,
        transport: Transport,
        src: SocketAddr,
        req: &Request,
        call: Option<CallHandle>,
    ) -> Option<TxKey> {
        let key = TxKey::server(req)?;
        let via = req.headers.top_via().ok()?;
        let dest = response_dest(&via, src, transport);
        let tx = ServerTransaction::new(req, transport.reliable(), self.cfg.timers);
        self.server.insert(
            key.clone(),
            ServerEntry {
                tx,
                transport,
                dest,
                call,
            },
        );
        Some(key)
    }

    fn reply(
        &mut self,
        transport: Transport,
        src: SocketAddr,
        req: &Request,
        status: u16,
        extra: Vec<(H, String)>,
        now: Instant,
    ) {
        let Some(key) = self.new_server_tx(transport, src, req, None) else {
            return;
        };
        let tag = self.ids.tag();
        let mut r = make_response(req, status, Some(&tag));
        let cl = r.headers.0.pop();
        for (n, v) in extra {
            r.headers.push(n, v);
        }
        self.push_product(&mut r.headers, H::Server);
        if let Some(cl) = cl {
            r.headers.0.push(cl);
        }
        self.respond(&key, r, now);
    }

    /// A response sent once, without a server transaction (RFC 3261 sec.
    /// 8.2.7): refusals of requests outside the trunks. A stateful 403 or
    /// 401 over UDP is retransmitted until an ACK that a forged source
    /// never sends, which would return several times the bytes it came with.
    fn reply_stateless(
        &mut self,
        transport: Transport,
        src: SocketAddr,
        req: &Request,
        status: u16,
        extra: Vec<(H, String)>,
    ) {
        if req.method == Method::Ack {
            return;
        }
        let Ok(via) = req.headers.top_via() else {
            return;
        };
        let tag = self.ids.tag();
        let mut r = make_response(req, status, Some(&tag));
        let cl = r.headers.0.pop();
        for (n, v) in extra {
            r.headers.push(n, v);
        }
        self.push_product(&mut r.headers, H::Server);
        if let Some(cl) = cl {
            r.headers.0.push(cl);
        }
        let dest = response_dest(&via, src, transport);
        self.send(transport, dest, r.to_bytes());
    }

    fn on_request(&mut self, transport: Transport, src: SocketAddr, req: Request, now: Instant) {
        if req.method == Method::Ack {
            self.on_ack(req, now);
            return;
        }
        if let Some(key) = TxKey::server(&req) {
            if let Some(e) = self.server.get_mut(&key) {
                e.tx.handle_retransmission();
                self.drain_server(&key);
                return;
            }
        }
        let in_dialog = req
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_string))
            .is_some();
        let mut trunk = None;
        if !in_dialog && req.method != Method::Cancel {
            match self.admit(&req, src, now) {
                Admission::Trunk(t) => trunk = t,
                Admission::Drop => return,
                Admission::Challenge(c) => {
                    self.stats.challenged += 1;
                    self.reply_stateless(transport, src, &req, 401, vec![(H::WwwAuthenticate, c)]);
                    return;
                }
                Admission::Forbidden => {
                    self.stats.forbidden += 1;
                    self.reply_stateless(transport, src, &req, 403, vec![]);
                    return;
                }
            }
        }
        if let Err(rej) = check_request(&req, &self.cfg.policy) {
            self.reply(transport, src, &req, rej.status, rej.headers, now);
            return;
        }
        match req.method {
            Method::Cancel => self.on_cancel(transport, src, req, now),
            Method::Invite if !in_dialog => self.on_invite(transport, src, req, trunk, now),
            Method::Invite => self.on_reinvite(transport, src, req, now),
            Method::Options if self.draining && !in_dialog => {
                let extra = vec![(H::RetryAfter, "60".to_string())];
                self.reply(transport, src, &req, 503, extra, now);
            }
            Method::Options => {
                let extra = vec![
                    (H::Allow, self.cfg.policy.allow_header()),
                    (H::Accept, self.cfg.policy.accept_header()),
                    (H::Supported, self.cfg.policy.supported_header()),
                ];
                self.reply(transport, src, &req, 200, extra, now);
            }
            Method::Bye | Method::Info | Method::Notify => {
                self.on_in_dialog(transport, src, req, now)
            }
            _ => {
                let allow = vec![(H::Allow, self.cfg.policy.allow_header())];
                self.reply(transport, src, &req, 405, allow, now);
            }
        }
    }

    /// Whether `src` is outside every trunk's sources, with no trunk that
    /// takes any source (false when no trunks are configured).
    fn is_stranger(&self, src: SocketAddr) -> bool {
        self.cfg.trunks.as_ref().is_some_and(|ts| {
            !ts.iter().any(|t| {
                t.allow.iter().any(|n| n.contains(src.ip()))
                    || (t.allow.is_empty() && t.digest.is_some())
            })
        })
    }

    /// The guard for a request outside a dialog (see [`crate::guard`]): which
    /// trunk it belongs to, its rate limit, its credentials.
    fn admit(&mut self, req: &Request, src: SocketAddr, now: Instant) -> Admission {
        let Some(trunks) = &self.cfg.trunks else {
            if !self.limiter.allow(src.ip(), now) {
                self.stats.rate_limited += 1;
                return Admission::Drop;
            }
            return Admission::Trunk(None);
        };
        let by_source = trunks
            .iter()
            .position(|t| t.allow.iter().any(|n| n.contains(src.ip())));
        let open = trunks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.allow.is_empty() && t.digest.is_some())
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        // Rate: a trunk's own bucket for its sources; the per-source
        // outside limiter for everyone else (a flood from outside never
        // takes a trunk's tokens).
        let within = match by_source {
            Some(i) => match (self.trunk_buckets.get_mut(i), trunks[i].rate) {
                (Some(slot), Some(rate)) => slot
                    .get_or_insert_with(|| TokenBucket::new(rate, now))
                    .allow(now),
                _ => true,
            },
            None => {
                if open.is_empty()
                    && self.verifier.is_none()
                    && self.cfg.unknown_sources == UnknownSource::Silence
                {
                    self.stats.ignored += 1;
                    return Admission::Drop;
                }
                self.limiter.allow(src.ip(), now)
            }
        };
        if !within {
            self.stats.rate_limited += 1;
            return Admission::Drop;
        }
        let candidates: Vec<usize> = by_source.into_iter().chain(open).collect();
        if candidates.is_empty() {
            return match self.access_legacy(req, now) {
                Some(Access::Allowed) => Admission::Trunk(None),
                Some(Access::Challenge(c)) => Admission::Challenge(c),
                _ => Admission::Forbidden,
            };
        }
        if let Some(&i) = candidates.iter().find(|&&i| trunks[i].digest.is_none()) {
            return Admission::Trunk(Some(i));
        }
        // Every candidate wants a digest answer (RFC 3261 sec. 22.4).
        let epoch = *self.epoch.get_or_insert(now);
        let secs = now.saturating_duration_since(epoch).as_secs();
        let mut stale = false;
        for h in req.headers.0.iter().filter(|h| h.name == H::Authorization) {
            let Ok(creds) = Credentials::parse(&h.value) else {
                continue;
            };
            if !uri_names(&creds.uri, &req.uri) {
                continue;
            }
            let Some(&i) = candidates.iter().find(|&&i| {
                trunks[i]
                    .digest
                    .as_ref()
                    .is_some_and(|d| d.username == creds.username)
            }) else {
                continue;
            };
            let Some(d) = trunks[i].digest.as_ref() else {
                continue;
            };
            match self.nonces.verify(
                &creds,
                req.method.as_str(),
                &req.body,
                Secret::Password(&d.password),
                secs,
            ) {
                Ok(()) => return Admission::Trunk(Some(i)),
                Err(crate::auth::AuthError::StaleNonce) => stale = true,
                Err(_) => {}
            }
        }
        Admission::Challenge(self.nonces.challenge(secs, stale).to_string())
    }

    /// Sources outside every trunk with a [`DigestVerifier`] set: challenged.
    fn access_legacy(&mut self, req: &Request, now: Instant) -> Option<Access> {
        let v = self.verifier.as_mut()?;
        if let Ok(creds) = req.headers.challenges(&H::Authorization) {
            if creds
                .iter()
                .any(|c| c.scheme.eq_ignore_ascii_case("Digest") && v.verify(req, c, now))
            {
                return Some(Access::Allowed);
            }
        }
        Some(Access::Challenge(v.challenge(now)))
    }

    fn on_invite(
        &mut self,
        transport: Transport,
        src: SocketAddr,
        req: Request,
        trunk: Option<usize>,
        now: Instant,
    ) {
        let trunk_full = trunk.is_some_and(|i| {
            let limit = self
                .cfg
                .trunks
                .as_ref()
                .and_then(|t| t.get(i))
                .map_or(0, |t| t.max_calls);
            limit > 0 && self.calls.values().filter(|c| c.trunk == Some(i)).count() >= limit
        });
        if trunk_full {
            self.stats.trunk_busy += 1;
        }
        if trunk_full || self.calls.len() >= self.cfg.max_calls {
            self.reply(
                transport,
                src,
                &req,
                503,
                vec![(H::RetryAfter, "5".into())],
                now,
            );
            return;
        }
        let h = CallHandle(self.handle());
        let Some(key) = self.new_server_tx(transport, src, &req, Some(h)) else {
            return;
        };
        let local_tag = self.ids.tag();
        let trying = make_response(&req, 100, None);
        self.respond(&key, trying, now);
        let from = req
            .headers
            .from()
            .map(|f| f.uri.to_string())
            .unwrap_or_default();
        let to = req
            .headers
            .to()
            .map(|f| f.uri.to_string())
            .unwrap_or_default();
        let offer = sdp_of(&req.headers, &req.body);
        self.events.push_back(Event::IncomingCall {
            call: h,
            from: Pii::new(from),
            to: Pii::new(to),
            offer,
            source: src,
            transport,
            trunk: trunk.and_then(|i| {
                self.cfg
                    .trunks
                    .as_ref()
                    .and_then(|t| t.get(i))
                    .map(|t| t.name.clone())
            }),
            headers: Pii::new(req.headers.clone()),
        });
        self.calls.insert(
            h,
            Call {
                state: CallState::Incoming,
                transport,
                peer: src,
                invite: req,
                invite_key: Some(key),
                dialog: None,
                local_tag,
                ok: None,
                reinvite: None,
                cancel_wanted: false,
                ack: None,
                transfer_done: false,
                trunk,
            },
        );
    }

    fn on_reinvite(&mut self, transport: Transport, src: SocketAddr, req: Request, now: Instant) {
        let Some(h) = Dialog::id_of_incoming(&req).and_then(|id| self.dialogs.get(&id).copied())
        else {
            self.reply(transport, src, &req, 481, vec![], now);
            return;
        };
        let pending = self
            .calls
            .get(&h)
            .is_some_and(|c| c.reinvite.is_some() || c.ok.is_some());
        if pending {
            self.reply(transport, src, &req, 491, vec![], now);
            return;
        }
        let Some(key) = self.new_server_tx(transport, src, &req, Some(h)) else {
            return;
        };
        let trying = make_response(&req, 100, None);
        self.respond(&key, trying, now);
        if let Some(c) = self.calls.get_mut(&h) {
            if let (Some(d), Ok(cs)) = (c.dialog.as_mut(), req.headers.cseq()) {
                d.remote_cseq = Some(cs.seq);
            }
            let offer = sdp_of(&req.headers, &req.body);
            c.reinvite = Some((key, req));
            self.events.push_back(Event::ReInvite { call: h, offer });
        }
    }

    fn on_ack(&mut self, req: Request, now: Instant) {
        // ACK for a non-2xx final: absorbed by the INVITE server transaction.
        if let Some(key) = TxKey::server(&req) {
            if let Some(e) = self.server.get_mut(&key) {
                if e.tx.is_final() && e.tx.state() != crate::transaction::ServerState::Accepted {
                    e.tx.handle_ack(now);
                    self.drain_server(&key);
                    return;
                }
            }
        }
        // ACK for a 2xx: a request of its own, for the dialog (sec. 13.3.1.4).
        let Some(h) = Dialog::id_of_incoming(&req).and_then(|id| self.dialogs.get(&id).copied())
        else {
            return;
        };
        if let Some(c) = self.calls.get_mut(&h) {
            if c.ok.take().is_some() {
                c.state = CallState::Confirmed;
                let sdp = sdp_of(&req.headers, &req.body);
                self.events.push_back(Event::CallConfirmed { call: h, sdp });
            }
        }
    }

    fn on_cancel(&mut self, transport: Transport, src: SocketAddr, req: Request, now: Instant) {
        let target = TxKey::cancel_target(&req);
        let found = target.as_ref().and_then(|k| {
            self.server
                .get(k)
                .map(|e| (k.clone(), e.call, e.tx.is_final()))
        });
        let Some((inv_key, call, is_final)) = found else {
            self.reply(transport, src, &req, 481, vec![], now);
            return;
        };
        self.reply(transport, src, &req, 200, vec![], now);
        if is_final {
            return; // too late: the INVITE has its final response (sec. 9.2)
        }
        let Some(h) = call else { return };
        let Some(c) = self.calls.get(&h) else { return };
        let resp = make_response(&c.invite, 487, Some(&c.local_tag));
        self.respond(&inv_key, resp, now);
        self.end_call(h, EndReason::Cancelled);
    }

    fn on_in_dialog(&mut self, transport: Transport, src: SocketAddr, req: Request, now: Instant) {
        let Some(h) = Dialog::id_of_incoming(&req).and_then(|id| self.dialogs.get(&id).copied())
        else {
            self.reply(transport, src, &req, 481, vec![], now);
            return;
        };
        let Ok(cseq) = req.headers.cseq() else { return };
        if let Some(d) = self.calls.get_mut(&h).and_then(|c| c.dialog.as_mut()) {
            if d.remote_cseq.is_some_and(|r| cseq.seq < r) {
                // Out of order (sec. 12.2.2): 500.
                self.reply(transport, src, &req, 500, vec![], now);
                return;
            }
            d.remote_cseq = Some(cseq.seq);
        }
        match req.method {
            Method::Bye => {
                self.reply(transport, src, &req, 200, vec![], now);
                // A pending re-INVITE gets 487 (sec. 15.1.2).
                if let Some((k, r)) = self.calls.get_mut(&h).and_then(|c| c.reinvite.take()) {
                    let resp = make_response(&r, 487, None);
                    self.respond(&k, resp, now);
                }
                self.end_call(h, EndReason::RemoteBye);
            }
            Method::Info => {
                let ct = req.headers.content_type().ok().flatten();
                match ct {
                    None if req.body.is_empty() => {
                        self.reply(transport, src, &req, 200, vec![], now)
                    }
                    Some(t) if t.is("application", "dtmf-relay") => {
                        match parse_dtmf_relay(&req.body) {
                            Some((digit, duration_ms)) => {
                                self.reply(transport, src, &req, 200, vec![], now);
                                self.events.push_back(Event::Dtmf {
                                    call: h,
                                    digit,
                                    duration_ms,
                                });
                            }
                            None => self.reply(transport, src, &req, 400, vec![], now),
                        }
                    }
                    _ => {
                        let a = vec![(H::Accept, "application/dtmf-relay".to_string())];
                        self.reply(transport, src, &req, 415, a, now)
                    }
                }
            }
            Method::Notify => {
                let is_refer = req
                    .headers
                    .event()
                    .ok()
                    .flatten()
                    .is_some_and(|(e, _)| e.eq_ignore_ascii_case("refer"));
                if !is_refer {
                    self.reply(transport, src, &req, 489, vec![], now);
                    return;
                }
                self.reply(transport, src, &req, 200, vec![], now);
                let terminated = req
                    .headers
                    .subscription_state()
                    .ok()
                    .flatten()
                    .is_some_and(|(s, _)| s.eq_ignore_ascii_case("terminated"));
                match sipfrag_status(&req.body) {
                    Some(s) if s < 200 => self
                        .events
                        .push_back(Event::TransferProgress { call: h, status: s }),
                    Some(s) => self.transfer_result(h, (200..300).contains(&s), s),
                    None if terminated => self.transfer_result(h, false, 0),
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn transfer_result(&mut self, h: CallHandle, success: bool, status: u16) {
        if let Some(c) = self.calls.get_mut(&h) {
            if c.transfer_done {
                return;
            }
            c.transfer_done = true;
        }
        self.events.push_back(Event::TransferResult {
            call: h,
            success,
            status,
        });
    }

    fn on_response(&mut self, resp: Response, now: Instant) {
        if check_response(&resp).is_err() {
            return;
        }
        let Some(key) = TxKey::client_for_response(&resp) else {
            return;
        };
        if let Some(e) = self.client.get_mut(&key) {
            e.tx.handle_response(resp, now);
            self.drain_client(&key, now);
            return;
        }
        // A 2xx retransmission after the transaction ended: re-send our ACK.
        if (200..300).contains(&resp.status)
            && resp
                .headers
                .cseq()
                .is_ok_and(|c| c.method == Method::Invite)
        {
            let call_id = resp.headers.call_id().unwrap_or("").to_string();
            let found = self
                .calls
                .values()
                .find(|c| c.invite.headers.call_id().ok() == Some(call_id.as_str()));
            if let Some(c) = found {
                if let Some(ack) = c.ack.clone() {
                    let (t, d) = (c.transport, c.peer);
                    self.send(t, d, ack);
                }
            }
        }
    }

    // ------------------------------------------------------- transactions

    fn on_client_final(
        &mut self,
        key: &TxKey,
        purpose: Purpose,
        resp: Option<Response>,
        now: Instant,
    ) {
        let status = resp.as_ref().map(|r| r.status).unwrap_or(408);
        match purpose {
            Purpose::Invite(h) => self.on_invite_response(key, h, resp, now),
            Purpose::Refer(h) => {
                if (200..300).contains(&status) {
                    self.events.push_back(Event::TransferAccepted { call: h });
                } else if status >= 300 {
                    self.transfer_result(h, false, status);
                }
            }
            Purpose::Register(r) => self.on_register_response(r, resp, now),
            Purpose::Bye | Purpose::Cancel => {}
        }
    }

    fn on_invite_response(
        &mut self,
        key: &TxKey,
        h: CallHandle,
        resp: Option<Response>,
        now: Instant,
    ) {
        let Some(resp) = resp else {
            self.events.push_back(Event::CallFailed {
                call: h,
                status: 408,
            });
            self.remove_call(h);
            return;
        };
        let status = resp.status;
        if status < 200 {
            let cancel = match self.calls.get_mut(&h) {
                Some(c) => {
                    c.state = CallState::Early;
                    std::mem::take(&mut c.cancel_wanted)
                }
                None => false,
            };
            if status > 100 {
                self.events
                    .push_back(Event::CallProgress { call: h, status });
            }
            if cancel {
                self.send_cancel(h, now);
            }
            return;
        }
        if status >= 300 {
            if self.calls.contains_key(&h) {
                self.events.push_back(Event::CallFailed { call: h, status });
                self.remove_call(h);
            }
            return;
        }
        // 2xx: build the dialog (first 2xx only), ACK, maybe BYE if we had hung up.
        let _ = key;
        let Some(c) = self.calls.get(&h) else { return };
        let (invite, transport, peer, old_ack, hung_up) = (
            c.invite.clone(),
            c.transport,
            c.peer,
            c.ack.clone(),
            c.cancel_wanted,
        );
        if let Some(ack) = old_ack {
            self.send(transport, peer, ack);
            return;
        }
        let Some(mut dialog) = Dialog::new_uac(&invite, &resp) else {
            return;
        };
        let cseq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
        let via = self.via(transport);
        let contact = self.contact(transport, is_sips(&invite.uri));
        let mut ack = dialog.request(Method::Ack, &via, &contact, Some(cseq));
        ack.headers.push(H::ContentLength, "0");
        let ack_bytes = ack.to_bytes();
        let dest = in_dialog_dest(transport, &dialog, peer);
        self.dialogs.insert(dialog.id.clone(), h);
        if let Some(c) = self.calls.get_mut(&h) {
            c.dialog = Some(dialog);
            c.peer = dest;
            c.ack = Some(ack_bytes.clone());
            c.state = CallState::Confirmed;
        }
        self.send(transport, dest, ack_bytes);
        if hung_up {
            let _ = self.send_bye(h, now);
            self.end_call(h, EndReason::LocalHangup);
            return;
        }
        let answer = sdp_of(&resp.headers, &resp.body);
        self.events
            .push_back(Event::CallAnswered { call: h, answer });
    }

    fn start_client(
        &mut self,
        req: Request,
        transport: Transport,
        dest: SocketAddr,
        purpose: Purpose,
        now: Instant,
    ) {
        let Some(key) = TxKey::client_for_request(&req) else {
            return;
        };
        let tx = ClientTransaction::new(req, transport.reliable(), self.cfg.timers, now);
        self.client.insert(
            key.clone(),
            ClientEntry {
                tx,
                transport,
                dest,
                purpose,
            },
        );
        self.drain_client(&key, now);
    }

    // ------------------------------------------------------------ commands

    /// Sends 180 Ringing for an incoming call.
    pub fn ringing(&mut self, call: CallHandle, now: Instant) -> Result<(), EndpointError> {
        let c = self.calls.get(&call).ok_or(EndpointError::UnknownCall)?;
        if c.state != CallState::Incoming {
            return Err(EndpointError::InvalidState);
        }
        let key = c.invite_key.clone().ok_or(EndpointError::InvalidState)?;
        let mut r = make_response(&c.invite, 180, Some(&c.local_tag));
        let cl = r.headers.0.pop();
        r.headers.push(
            H::Contact,
            self.contact(c.transport, is_sips(&c.invite.uri)),
        );
        r.headers.0.extend(cl);
        self.respond(&key, r, now);
        Ok(())
    }

    /// Answers an incoming call with 200 OK carrying `sdp` (the answer, or
    /// our offer if the INVITE had none). Retransmitted until ACK.
    pub fn answer(
        &mut self,
        call: CallHandle,
        sdp: Vec<u8>,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let c = self.calls.get(&call).ok_or(EndpointError::UnknownCall)?;
        if c.state != CallState::Incoming {
            return Err(EndpointError::InvalidState);
        }
        let key = c.invite_key.clone().ok_or(EndpointError::InvalidState)?;
        let dialog = Dialog::new_uas(&c.invite, &c.local_tag);
        let ok = self.ok_response(&c.invite, &c.local_tag, c.transport, sdp);
        let reliable = c.transport.reliable();
        let bytes = ok.to_bytes();
        self.respond(&key, ok, now);
        let t1 = self.cfg.timers.t1;
        if let Some(d) = &dialog {
            self.dialogs.insert(d.id.clone(), call);
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.state = CallState::Answered;
            if let Some(d) = dialog {
                c.dialog = Some(d);
            }
            c.ok = Some(OkRetransmit {
                bytes,
                interval: t1,
                // Over TCP the 2xx is not retransmitted, but the ACK wait still applies.
                next: if reliable {
                    now + 64 * t1 + Duration::from_secs(1)
                } else {
                    now + t1
                },
                give_up: now + 64 * t1,
            });
            if let Some(ok) = &c.ok {
                let at = ok.next.min(ok.give_up);
                self.timers.push(at, TimerOwner::Call(call));
            }
        }
        Ok(())
    }

    /// Adds `Server`/`User-Agent` with our product name, unless configured empty.
    fn push_product(&self, headers: &mut Headers, name: H) {
        if !self.cfg.user_agent.is_empty() {
            headers.push(name, self.cfg.user_agent.clone());
        }
    }

    fn ok_response(
        &self,
        req: &Request,
        tag: &str,
        transport: Transport,
        sdp: Vec<u8>,
    ) -> Response {
        let mut ok = make_response(req, 200, Some(tag));
        ok.headers.0.pop();
        for rr in req.headers.get_all(&H::RecordRoute) {
            ok.headers.push(H::RecordRoute, rr.to_string());
        }
        ok.headers
            .push(H::Contact, self.contact(transport, is_sips(&req.uri)));
        ok.headers.push(H::Allow, self.cfg.policy.allow_header());
        ok.headers
            .push(H::Supported, self.cfg.policy.supported_header());
        self.push_product(&mut ok.headers, H::Server);
        ok.set_body(Some("application/sdp"), sdp);
        ok
    }

    /// Refuses an incoming call (486 busy, 488 no common codec, 603, ...).
    pub fn reject(
        &mut self,
        call: CallHandle,
        status: u16,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let c = self.calls.get(&call).ok_or(EndpointError::UnknownCall)?;
        if c.state != CallState::Incoming || status < 300 {
            return Err(EndpointError::InvalidState);
        }
        let key = c.invite_key.clone().ok_or(EndpointError::InvalidState)?;
        let r = make_response(&c.invite, status, Some(&c.local_tag));
        self.respond(&key, r, now);
        self.remove_call(call);
        Ok(())
    }

    /// Answers a pending re-INVITE with 200 and `sdp` (hold, resume, codec change).
    pub fn answer_reinvite(
        &mut self,
        call: CallHandle,
        sdp: Vec<u8>,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let c = self
            .calls
            .get_mut(&call)
            .ok_or(EndpointError::UnknownCall)?;
        let (key, req) = c.reinvite.take().ok_or(EndpointError::InvalidState)?;
        let (tag, transport) = (c.local_tag.clone(), c.transport);
        let ok = self.ok_response(&req, &tag, transport, sdp);
        let bytes = ok.to_bytes();
        self.respond(&key, ok, now);
        let t1 = self.cfg.timers.t1;
        if let Some(c) = self.calls.get_mut(&call) {
            c.ok = Some(OkRetransmit {
                bytes,
                interval: t1,
                next: if transport.reliable() {
                    now + 64 * t1 + Duration::from_secs(1)
                } else {
                    now + t1
                },
                give_up: now + 64 * t1,
            });
            if let Some(ok) = &c.ok {
                let at = ok.next.min(ok.give_up);
                self.timers.push(at, TimerOwner::Call(call));
            }
        }
        Ok(())
    }

    /// Refuses a pending re-INVITE (488 when the offer is unacceptable); the call continues.
    pub fn reject_reinvite(
        &mut self,
        call: CallHandle,
        status: u16,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let c = self
            .calls
            .get_mut(&call)
            .ok_or(EndpointError::UnknownCall)?;
        let (key, req) = c.reinvite.take().ok_or(EndpointError::InvalidState)?;
        let r = make_response(&req, status, None);
        self.respond(&key, r, now);
        Ok(())
    }

    /// Ends a call in whatever state: 486 before answer (UAS), CANCEL
    /// before answer (UAC), BYE after.
    pub fn hangup(&mut self, call: CallHandle, now: Instant) -> Result<(), EndpointError> {
        let c = self
            .calls
            .get_mut(&call)
            .ok_or(EndpointError::UnknownCall)?;
        match c.state {
            CallState::Incoming => return self.reject(call, 486, now),
            CallState::Calling => {
                c.cancel_wanted = true; // CANCEL only after a provisional (sec. 9.1)
                return Ok(());
            }
            CallState::Early => {
                c.cancel_wanted = true; // if the 200 races the CANCEL we ACK and BYE
                self.send_cancel(call, now);
                return Ok(());
            }
            CallState::Answered | CallState::Confirmed => {}
        }
        self.send_bye(call, now)?;
        self.end_call(call, EndReason::LocalHangup);
        Ok(())
    }

    fn send_cancel(&mut self, call: CallHandle, now: Instant) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let inv = &c.invite;
        let mut cancel = Request::new(Method::Cancel, inv.uri.clone());
        for n in [H::Via, H::MaxForwards, H::From, H::To, H::CallId] {
            if let Some(v) = inv.headers.get(&n) {
                cancel.headers.push(n, v.to_string());
            }
        }
        if let Ok(cs) = inv.headers.cseq() {
            cancel.headers.push(H::CSeq, format!("{} CANCEL", cs.seq));
        }
        for r in inv.headers.get_all(&H::Route) {
            cancel.headers.push(H::Route, r.to_string());
        }
        cancel.headers.push(H::ContentLength, "0");
        let (t, d) = (c.transport, c.peer);
        self.start_client(cancel, t, d, Purpose::Cancel, now);
    }

    fn send_bye(&mut self, call: CallHandle, now: Instant) -> Result<(), EndpointError> {
        let c = self.calls.get(&call).ok_or(EndpointError::UnknownCall)?;
        let (transport, sips) = (c.transport, is_sips(&c.invite.uri));
        let via = self.via(transport);
        let contact = self.contact(transport, sips);
        let c = self
            .calls
            .get_mut(&call)
            .ok_or(EndpointError::UnknownCall)?;
        let d = c.dialog.as_mut().ok_or(EndpointError::InvalidState)?;
        let mut bye = d.request(Method::Bye, &via, &contact, None);
        bye.headers.push(H::ContentLength, "0");
        let dest = in_dialog_dest(transport, d, c.peer);
        self.start_client(bye, transport, dest, Purpose::Bye, now);
        Ok(())
    }

    fn end_call(&mut self, call: CallHandle, reason: EndReason) {
        if self.calls.contains_key(&call) {
            self.events.push_back(Event::CallEnded { call, reason });
            self.remove_call(call);
        }
    }

    fn remove_call(&mut self, call: CallHandle) {
        if let Some(c) = self.calls.remove(&call) {
            if let Some(d) = c.dialog {
                self.dialogs.remove(&d.id);
            }
        }
    }

    /// Places an outbound call (callback). Progress arrives as events.
    pub fn invite(
        &mut self,
        call: OutgoingCall,
        now: Instant,
    ) -> Result<CallHandle, EndpointError> {
        let h = CallHandle(self.handle());
        let via = self.via(call.transport);
        let contact = self.contact(call.transport, is_sips(&call.target));
        let host = self.cfg.advertised.ip().to_string();
        let mut req = Request::new(Method::Invite, call.target.clone());
        req.headers.push(H::Via, via);
        req.headers.push(H::MaxForwards, "70");
        req.headers
            .push(H::From, format!("<{}>;tag={}", call.from, self.ids.tag()));
        req.headers.push(H::To, format!("<{}>", call.target));
        req.headers.push(H::CallId, self.ids.call_id(&host));
        req.headers.push(H::CSeq, "1 INVITE");
        req.headers.push(H::Contact, contact);
        req.headers.push(H::Allow, self.cfg.policy.allow_header());
        req.headers
            .push(H::Supported, self.cfg.policy.supported_header());
        self.push_product(&mut req.headers, H::UserAgent);
        for (n, v) in call.headers {
            req.headers.push(n, v);
        }
        match call.offer {
            Some(sdp) => req.set_body(Some("application/sdp"), sdp),
            None => req.set_body(None, Vec::new()),
        }
        self.calls.insert(
            h,
            Call {
                state: CallState::Calling,
                transport: call.transport,
                peer: call.dest,
                invite: req.clone(),
                invite_key: TxKey::client_for_request(&req),
                dialog: None,
                local_tag: String::new(),
                ok: None,
                reinvite: None,
                cancel_wanted: false,
                ack: None,
                transfer_done: false,
                trunk: None,
            },
        );
        self.start_client(req, call.transport, call.dest, Purpose::Invite(h), now);
        Ok(h)
    }

    /// Blind transfer (RFC 3515): REFER to `target` with Referred-By and
    /// `context` headers (e.g. `User-to-User` per RFC 7433, or configured
    /// `X-` headers) so the agent sees what the bot learned.
    pub fn refer(
        &mut self,
        call: CallHandle,
        target: &Uri,
        context: Vec<(H, String)>,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let c = self.calls.get(&call).ok_or(EndpointError::UnknownCall)?;
        if c.state != CallState::Confirmed {
            return Err(EndpointError::InvalidState);
        }
        let (transport, sips) = (c.transport, is_sips(&c.invite.uri));
        let via = self.via(transport);
        let contact = self.contact(transport, sips);
        let referred_by = format!("<{}>", self.our_uri());
        let c = self
            .calls
            .get_mut(&call)
            .ok_or(EndpointError::UnknownCall)?;
        c.transfer_done = false;
        let d = c.dialog.as_mut().ok_or(EndpointError::InvalidState)?;
        let mut refer = d.request(Method::Refer, &via, &contact, None);
        refer.headers.push(H::ReferTo, format!("<{target}>"));
        refer.headers.push(H::ReferredBy, referred_by);
        for (n, v) in context {
            if v.contains(['\r', '\n']) {
                return Err(EndpointError::InvalidHeader(ParseError::InvalidHeader(n)));
            }
            refer.headers.push(n, v);
        }
        refer.headers.push(H::ContentLength, "0");
        let dest = in_dialog_dest(transport, d, c.peer);
        self.start_client(refer, transport, dest, Purpose::Refer(call), now);
        Ok(())
    }

    /// Starts registering to a trunk; refreshed before expiry until removed.
    pub fn register(
        &mut self,
        cfg: RegistrationConfig,
        auth: Box<dyn DigestClient>,
        now: Instant,
    ) -> RegistrationHandle {
        let h = RegistrationHandle(self.handle());
        let host = self.cfg.advertised.ip().to_string();
        let reg = Registration {
            cfg,
            auth,
            call_id: self.ids.call_id(&host),
            from_tag: self.ids.tag(),
            cseq: 0,
            authorized_once: false,
            next_at: None,
            removing: false,
        };
        self.regs.insert(h, reg);
        self.send_register(h, None, now);
        h
    }

    fn send_register(
        &mut self,
        h: RegistrationHandle,
        authorization: Option<(H, String)>,
        now: Instant,
    ) {
        let Some(r) = self.regs.get(&h) else { return };
        let (transport, sips) = (r.cfg.transport, is_sips(&r.cfg.registrar_uri));
        let via = self.via(transport);
        let contact = self.contact(transport, sips);
        let Some(r) = self.regs.get_mut(&h) else {
            return;
        };
        r.cseq += 1;
        r.next_at = None;
        let mut req = Request::new(Method::Register, r.cfg.registrar_uri.clone());
        req.headers.push(H::Via, via);
        req.headers.push(H::MaxForwards, "70");
        req.headers
            .push(H::From, format!("<{}>;tag={}", r.cfg.aor, r.from_tag));
        req.headers.push(H::To, format!("<{}>", r.cfg.aor));
        req.headers.push(H::CallId, r.call_id.clone());
        req.headers.push(H::CSeq, format!("{} REGISTER", r.cseq));
        req.headers.push(H::Contact, contact);
        req.headers.push(H::Expires, r.cfg.expires.to_string());
        if let Some((n, v)) = authorization {
            req.headers.push(n, v);
        } else {
            r.authorized_once = false;
        }
        req.headers.push(H::ContentLength, "0");
        let dest = r.cfg.registrar;
        self.start_client(req, transport, dest, Purpose::Register(h), now);
    }

    fn on_register_response(
        &mut self,
        h: RegistrationHandle,
        resp: Option<Response>,
        now: Instant,
    ) {
        let Some(reg) = self.regs.get_mut(&h) else {
            return;
        };
        let status = resp.as_ref().map(|r| r.status).unwrap_or(408);
        if status < 200 {
            return;
        }
        if let (Some(resp), 401 | 407) = (resp.as_ref(), status) {
            if !reg.authorized_once {
                let (ask, give) = if status == 401 {
                    (H::WwwAuthenticate, H::Authorization)
                } else {
                    (H::ProxyAuthenticate, H::ProxyAuthorization)
                };
                let ch = resp.headers.challenges(&ask).ok().and_then(|c| {
                    c.into_iter()
                        .find(|c| c.scheme.eq_ignore_ascii_case("Digest"))
                });
                let uri = reg.cfg.registrar_uri.to_string();
                if let Some(v) =
                    ch.and_then(|c| reg.auth.authorize(&c, &Method::Register, &uri, &[]))
                {
                    reg.authorized_once = true;
                    self.send_register(h, Some((give, v)), now);
                    return;
                }
            }
        }
        if reg.removing {
            self.regs.remove(&h);
            return;
        }
        // 423 Interval Too Brief: retry with the registrar's Min-Expires (sec. 10.2.8).
        if let (Some(resp), 423) = (resp.as_ref(), status) {
            let min = resp
                .headers
                .get(&H::Other("Min-Expires".into()))
                .and_then(|v| v.trim().parse::<u32>().ok());
            if let Some(min) = min.filter(|m| *m > reg.cfg.expires) {
                reg.cfg.expires = min;
                self.send_register(h, None, now);
                return;
            }
        }
        if (200..300).contains(&status) {
            let resp = resp.as_ref();
            let granted = resp
                .and_then(|r| r.headers.contacts().ok().flatten())
                .and_then(|cs| {
                    cs.iter().find_map(|c| {
                        c.params
                            .get("expires")
                            .flatten()
                            .and_then(|e| e.parse::<u32>().ok())
                    })
                })
                .or_else(|| resp.and_then(|r| r.headers.expires().ok().flatten()))
                .unwrap_or(reg.cfg.expires);
            // Refresh before expiry: at half-time for short grants, 30 s before for long ones.
            let lead = (granted / 2).min(30);
            let at = now + Duration::from_secs(u64::from(granted.saturating_sub(lead).max(1)));
            reg.next_at = Some(at);
            self.timers.push(at, TimerOwner::Reg(h));
            self.events.push_back(Event::Registered {
                reg: h,
                expires: granted,
            });
        } else {
            let at = now + reg.cfg.retry_after;
            reg.next_at = Some(at);
            self.timers.push(at, TimerOwner::Reg(h));
            self.events
                .push_back(Event::RegistrationFailed { reg: h, status });
        }
    }

    /// Removes a registration: sends REGISTER with Expires: 0 (sec. 10.2.2)
    /// and stops refreshing; the registration is forgotten after the answer.
    pub fn unregister(&mut self, reg: RegistrationHandle, now: Instant) {
        let Some(r) = self.regs.get_mut(&reg) else {
            return;
        };
        r.removing = true;
        r.cfg.expires = 0;
        self.send_register(reg, None, now);
    }
}

/// A `sip:` URI for an address (helper for configs and tests).
pub fn sip_uri_for(user: Option<&str>, addr: SocketAddr) -> Uri {
    let host = match addr.ip() {
        std::net::IpAddr::V4(a) => Host::V4(a),
        std::net::IpAddr::V6(a) => Host::V6(a),
    };
    Uri::Sip(SipUri::new(user, host, Some(addr.port())))
}

/// The SocketAddr a name-addr points at, if its host is an IP literal.
pub fn name_addr_socket(n: &NameAddr) -> Option<SocketAddr> {
    uri_socket_addr(&n.uri)
}
