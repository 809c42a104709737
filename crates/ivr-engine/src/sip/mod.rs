//! SIP transport: tokio UDP and TCP sockets (IPv4 and IPv6) driving the
//! sans-IO [`ivr_sip::Endpoint`] with real time (RFC 3261 sec. 18).
//!
//! - UDP: one receive task per socket; responses go to the address RFC 3581
//!   gives (the endpoint stamps `received`/`rport` on the top Via).
//! - TCP: one task per connection; messages are framed with
//!   [`ivr_sip::msg::framer::StreamFramer`] (Content-Length, bounded sizes;
//!   a framing error closes the connection). Requests we send over TCP reuse
//!   a connection to the destination, or open one.
//! - Timers: one task sleeps until [`Endpoint::poll_timeout`] and is woken
//!   whenever an input may have changed it.
//!
//! Queues and what happens when full:
//! - events to the application: bounded ([`EVENT_QUEUE`]); when full the
//!   SIP tasks wait (backpressure: datagrams queue in the kernel and SIP
//!   retransmission recovers what the kernel drops);
//! - per-connection TCP writes: bounded ([`TCP_WRITE_QUEUE`]); when full the
//!   message is dropped and the connection closed, since a peer that does not
//!   read would otherwise hold memory without bound;
//! - UDP sends use `try_send_to`: a full socket buffer drops the datagram,
//!   as the network could have.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ivr_sip::msg::framer::{Framed, StreamFramer};
use ivr_sip::msg::{HeaderName, DEFAULT_MAX_BODY, DEFAULT_MAX_HEAD};
use ivr_sip::{
    CallHandle, DigestClient, Endpoint, EndpointConfig, EndpointError, Event, OutgoingCall,
    RegistrationConfig, RegistrationHandle, Transmit, Transport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// Capacity of the event channel to the application.
pub const EVENT_QUEUE: usize = 1024;
/// Capacity of each TCP connection's write queue (messages).
pub const TCP_WRITE_QUEUE: usize = 256;

/// Where to listen.
#[derive(Debug, Clone, Default)]
pub struct SipListenConfig {
    /// UDP listen addresses (`0.0.0.0:5060`, `[::]:5060`, port 0 for any).
    pub udp: Vec<SocketAddr>,
    /// TCP listen addresses; port 0 takes the port of the UDP socket on the same IP.
    pub tcp: Vec<SocketAddr>,
    /// Address put in Via/Contact; default: the first bound socket (must not be unspecified).
    pub advertised: Option<SocketAddr>,
}

/// Why the transport could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SipTransportError {
    /// Binding a socket failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// No listen address was configured.
    #[error("no SIP listen address configured")]
    NoListenAddress,
    /// The advertised address would be 0.0.0.0 or ::; set `advertised`.
    #[error("advertised address {0} is unspecified; configure one")]
    UnspecifiedAdvertised(SocketAddr),
}

struct Shared {
    ep: Mutex<Endpoint>,
    wake: Notify,
    udp: Vec<Arc<UdpSocket>>,
    conns: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
    events: mpsc::Sender<Event>,
}

/// The running SIP transport; drop or [`SipService::shutdown`] to stop it.
pub struct SipService {
    handle: SipHandle,
    tasks: Vec<JoinHandle<()>>,
}

/// A cheap, cloneable handle for application commands.
#[derive(Clone)]
pub struct SipHandle {
    shared: Arc<Shared>,
    local: Arc<Vec<(Transport, SocketAddr)>>,
}

fn lock(m: &Mutex<Endpoint>) -> MutexGuard<'_, Endpoint> {
    // A panic while holding the lock would be a bug in ivr-sip; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SipService {
    /// Binds the sockets and starts the tasks. `endpoint` is built from
    /// the advertised address (which may depend on ports bound here).
    pub async fn start(
        listen: SipListenConfig,
        endpoint: impl FnOnce(SocketAddr) -> EndpointConfig,
    ) -> Result<(SipService, mpsc::Receiver<Event>), SipTransportError> {
        let mut udp = Vec::new();
        let mut local = Vec::new();
        for addr in &listen.udp {
            let s = UdpSocket::bind(addr)
                .await
                .map_err(|source| SipTransportError::Bind {
                    addr: *addr,
                    source,
                })?;
            let bound = s.local_addr().map_err(|source| SipTransportError::Bind {
                addr: *addr,
                source,
            })?;
            local.push((Transport::Udp, bound));
            udp.push(Arc::new(s));
        }
        let mut listeners = Vec::new();
        for addr in &listen.tcp {
            let mut addr = *addr;
            if addr.port() == 0 {
                if let Some((_, u)) = local
                    .iter()
                    .find(|(t, a)| *t == Transport::Udp && a.ip() == addr.ip())
                {
                    addr.set_port(u.port());
                }
            }
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| SipTransportError::Bind { addr, source })?;
            let bound = l
                .local_addr()
                .map_err(|source| SipTransportError::Bind { addr, source })?;
            local.push((Transport::Tcp, bound));
            listeners.push(l);
        }
        let first = local
            .first()
            .map(|(_, a)| *a)
            .ok_or(SipTransportError::NoListenAddress)?;
        let advertised = listen.advertised.unwrap_or(first);
        if advertised.ip().is_unspecified() {
            return Err(SipTransportError::UnspecifiedAdvertised(advertised));
        }
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let shared = Arc::new(Shared {
            ep: Mutex::new(Endpoint::new(endpoint(advertised))),
            wake: Notify::new(),
            udp: udp.clone(),
            conns: Mutex::new(HashMap::new()),
            events: events_tx,
        });
        let mut tasks = Vec::new();
        for s in udp {
            tasks.push(tokio::spawn(udp_loop(shared.clone(), s)));
        }
        for l in listeners {
            tasks.push(tokio::spawn(tcp_accept_loop(shared.clone(), l)));
        }
        tasks.push(tokio::spawn(timer_loop(shared.clone())));
        let handle = SipHandle {
            shared,
            local: Arc::new(local),
        };
        Ok((SipService { handle, tasks }, events_rx))
    }

    /// A handle for commands.
    pub fn handle(&self) -> SipHandle {
        self.handle.clone()
    }

    /// Stops all tasks.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for SipService {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn flush(shared: &Arc<Shared>) {
    let (tx, ev): (Vec<Transmit>, Vec<Event>) = {
        let mut ep = lock(&shared.ep);
        (
            std::iter::from_fn(|| ep.poll_transmit()).collect(),
            std::iter::from_fn(|| ep.poll_event()).collect(),
        )
    };
    for t in tx {
        send(shared, t);
    }
    for e in ev {
        if shared.events.send(e).await.is_err() {
            break; // application gone
        }
    }
    shared.wake.notify_one();
}

fn send(shared: &Arc<Shared>, t: Transmit) {
    match t.transport {
        Transport::Udp => {
            let sock = shared.udp.iter().find(|s| {
                s.local_addr()
                    .is_ok_and(|a| a.is_ipv4() == t.dest.is_ipv4())
            });
            match sock {
                Some(s) => {
                    if let Err(e) = s.try_send_to(&t.bytes, t.dest) {
                        tracing::debug!(dest = %t.dest, error = %e, "UDP send dropped");
                    }
                }
                None => tracing::warn!(dest = %t.dest, "no UDP socket for address family"),
            }
        }
        Transport::Tcp => {
            let existing = shared
                .conns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&t.dest)
                .cloned();
            match existing {
                Some(w) => {
                    if w.try_send(t.bytes).is_err() {
                        tracing::warn!(dest = %t.dest, "TCP write queue full; closing connection");
                        shared
                            .conns
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&t.dest);
                    }
                }
                None => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        match TcpStream::connect(t.dest).await {
                            Ok(stream) => {
                                let w = spawn_connection(shared, stream, t.dest);
                                let _ = w.try_send(t.bytes);
                            }
                            Err(e) => {
                                tracing::warn!(dest = %t.dest, error = %e, "TCP connect failed")
                            }
                        }
                    });
                }
            }
        }
    }
}

async fn udp_loop(shared: Arc<Shared>, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP port unreachable surfaces here on some OSes; keep going.
                tracing::debug!(error = %e, "UDP receive error");
                continue;
            }
        };
        lock(&shared.ep).handle_datagram(src, &buf[..n], Instant::now());
        flush(&shared).await;
    }
}

async fn tcp_accept_loop(shared: Arc<Shared>, l: TcpListener) {
    loop {
        match l.accept().await {
            Ok((stream, peer)) => {
                spawn_connection(shared.clone(), stream, peer);
            }
            Err(e) => tracing::warn!(error = %e, "TCP accept failed"),
        }
    }
}

fn spawn_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
) -> mpsc::Sender<Vec<u8>> {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_WRITE_QUEUE);
    shared
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(peer, tx.clone());
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let reader_shared = shared.clone();
    let my_tx = tx.clone();
    tokio::spawn(async move {
        let shared = reader_shared;
        let mut framer = StreamFramer::new(DEFAULT_MAX_HEAD, DEFAULT_MAX_BODY);
        let mut buf = vec![0u8; 16 * 1024];
        'conn: loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            loop {
                match framer.next_message() {
                    Ok(Framed::Message(m)) => {
                        lock(&shared.ep).handle_message(Transport::Tcp, peer, *m, Instant::now());
                        flush(&shared).await;
                    }
                    Ok(Framed::NeedMore) => break,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "SIP stream framing error; closing");
                        break 'conn;
                    }
                }
            }
        }
        let mut conns = shared.conns.lock().unwrap_or_else(|p| p.into_inner());
        if conns.get(&peer).is_some_and(|c| c.same_channel(&my_tx)) {
            conns.remove(&peer);
        }
    });
    tx
}

async fn timer_loop(shared: Arc<Shared>) {
    loop {
        let next = lock(&shared.ep).poll_timeout();
        match next {
            Some(at) => {
                let at = tokio::time::Instant::from_std(at);
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {
                        lock(&shared.ep).handle_timeout(Instant::now());
                        flush(&shared).await;
                    }
                    _ = shared.wake.notified() => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

impl SipHandle {
    /// The bound sockets.
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.local
    }

    /// The bound address of the first socket of `transport`.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.local
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
    }

    async fn run<T>(&self, f: impl FnOnce(&mut Endpoint, Instant) -> T) -> T {
        let r = f(&mut lock(&self.shared.ep), Instant::now());
        flush(&self.shared).await;
        r
    }

    /// 180 Ringing.
    pub async fn ringing(&self, call: CallHandle) -> Result<(), EndpointError> {
        self.run(|ep, now| ep.ringing(call, now)).await
    }
    /// 200 OK with the SDP answer.
    pub async fn answer(&self, call: CallHandle, sdp: Vec<u8>) -> Result<(), EndpointError> {
        self.run(|ep, now| ep.answer(call, sdp, now)).await
    }
    /// Refuse an incoming call.
    pub async fn reject(&self, call: CallHandle, status: u16) -> Result<(), EndpointError> {
        self.run(|ep, now| ep.reject(call, status, now)).await
    }
    /// Answer a re-INVITE.
    pub async fn answer_reinvite(
        &self,
        call: CallHandle,
        sdp: Vec<u8>,
    ) -> Result<(), EndpointError> {
        self.run(|ep, now| ep.answer_reinvite(call, sdp, now)).await
    }
    /// Refuse a re-INVITE.
    pub async fn reject_reinvite(
        &self,
        call: CallHandle,
        status: u16,
    ) -> Result<(), EndpointError> {
        self.run(|ep, now| ep.reject_reinvite(call, status, now))
            .await
    }
    /// Hang up.
    pub async fn hangup(&self, call: CallHandle) -> Result<(), EndpointError> {
        self.run(|ep, now| ep.hangup(call, now)).await
    }
    /// Blind transfer.
    pub async fn refer(
        &self,
        call: CallHandle,
        target: ivr_sip::msg::Uri,
        context: Vec<(HeaderName, String)>,
    ) -> Result<(), EndpointError> {
        self.run(|ep, now| ep.refer(call, &target, context, now))
            .await
    }
    /// Outbound call.
    pub async fn invite(&self, call: OutgoingCall) -> Result<CallHandle, EndpointError> {
        self.run(|ep, now| ep.invite(call, now)).await
    }
    /// Register to a trunk.
    pub async fn register(
        &self,
        cfg: RegistrationConfig,
        auth: Box<dyn DigestClient>,
    ) -> RegistrationHandle {
        self.run(|ep, now| ep.register(cfg, auth, now)).await
    }
    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        lock(&self.shared.ep).call_count()
    }
}

/// Decides the SDP answer for a call; the engine's media layer implements
/// it for real calls.
pub trait AnswerSdp: Send + 'static {
    /// The answer to `offer` (or our offer when `None`); `None` refuses with 488.
    fn answer(&mut self, offer: Option<&[u8]>) -> Option<Vec<u8>>;
    /// Whether to answer the call to this Request-URI/To user, or only ring (tests of CANCEL).
    fn should_answer(&mut self, _to: &str) -> bool {
        true
    }
}

/// A fixed minimal PCMA answer, for transport tests until the SDP module is
/// wired in: it does not negotiate.
#[derive(Debug, Clone)]
pub struct FixedPcmaAnswer {
    /// Address in `c=`.
    pub ip: std::net::IpAddr,
    /// RTP port in `m=`.
    pub port: u16,
}

impl AnswerSdp for FixedPcmaAnswer {
    fn answer(&mut self, offer: Option<&[u8]>) -> Option<Vec<u8>> {
        let family = if self.ip.is_ipv4() { "IP4" } else { "IP6" };
        let dir = match offer.map(String::from_utf8_lossy) {
            Some(o) if o.contains("a=sendonly") => "recvonly",
            Some(o) if o.contains("a=inactive") => "inactive",
            _ => "sendrecv",
        };
        Some(
            format!(
                "v=0\r\no=ivr 1 1 IN {family} {ip}\r\ns=ivr\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\na={dir}\r\n",
                ip = self.ip,
                port = self.port
            )
            .into_bytes(),
        )
    }
    fn should_answer(&mut self, to: &str) -> bool {
        !to.starts_with("sip:ring")
    }
}

/// Counts of what an answering loop saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AnswerStats {
    /// IncomingCall events.
    pub incoming: u64,
    /// Calls answered with 200.
    pub answered: u64,
    /// ACKs received.
    pub confirmed: u64,
    /// re-INVITEs answered.
    pub reinvites: u64,
    /// Calls ended by the peer's BYE.
    pub ended_by_peer: u64,
    /// Calls cancelled before answer.
    pub cancelled: u64,
    /// Other call ends (ACK timeout, local hangup).
    pub ended_other: u64,
}

/// Answers every call with `sdp` (after 180), answers re-INVITEs, and keeps
/// counts until the event channel closes. The hook tests and `ivr serve`
/// without a flow use.
pub async fn answer_calls(
    handle: SipHandle,
    mut events: mpsc::Receiver<Event>,
    mut sdp: impl AnswerSdp,
    stats: Arc<Mutex<AnswerStats>>,
) {
    while let Some(e) = events.recv().await {
        let bump =
            |f: fn(&mut AnswerStats)| f(&mut stats.lock().unwrap_or_else(|p| p.into_inner()));
        match e {
            Event::IncomingCall {
                call, offer, to, ..
            } => {
                bump(|s| s.incoming += 1);
                let _ = handle.ringing(call).await;
                if !sdp.should_answer(to.expose()) {
                    continue;
                }
                match sdp.answer(offer.as_deref()) {
                    Some(a) => {
                        if handle.answer(call, a).await.is_ok() {
                            bump(|s| s.answered += 1);
                        }
                    }
                    None => {
                        let _ = handle.reject(call, 488).await;
                    }
                }
            }
            Event::CallConfirmed { .. } => bump(|s| s.confirmed += 1),
            Event::ReInvite { call, offer } => match sdp.answer(offer.as_deref()) {
                Some(a) => {
                    if handle.answer_reinvite(call, a).await.is_ok() {
                        bump(|s| s.reinvites += 1);
                    }
                }
                None => {
                    let _ = handle.reject_reinvite(call, 488).await;
                }
            },
            Event::CallEnded { reason, .. } => match reason {
                ivr_sip::EndReason::RemoteBye => bump(|s| s.ended_by_peer += 1),
                ivr_sip::EndReason::Cancelled => bump(|s| s.cancelled += 1),
                _ => bump(|s| s.ended_other += 1),
            },
            _ => {}
        }
    }
}
