//! SIP transport: tokio UDP and TCP sockets (IPv4 and IPv6) around the
//! sans-IO [`ivr_sip::Endpoint`], driven with real time (RFC 3261 sec. 18).
//!
//! One task, the driver, owns the endpoint (architecture principle 13):
//!
//! ```text
//! UDP recv tasks --(datagrams, INPUT_QUEUE, try_send)--+
//! TCP conn tasks --(framed messages, INPUT_QUEUE)------+--> driver --(EVENT_QUEUE)--> application
//! SipHandle      --(commands + oneshot, COMMAND_QUEUE)-+      |  owns the Endpoint; alone polls
//!                                                             |  transmits, events and the next
//!         UDP try_send_to / TCP write queues <----------------+  timeout, and sleeps until it
//! ```
//!
//! - UDP: one receive task per socket; responses go to the address RFC 3581
//!   gives (the endpoint stamps `received`/`rport` on the top Via).
//! - TLS ([`tls`]): as TCP, after a handshake bounded in time on a task of
//!   its own; at most `max_connections` at once, idle ones closed. A call
//!   that came over TLS keeps its signalling on that connection (responses
//!   and our BYE/REFER), so the trunk that authenticated it hears from us.
//! - TCP: one task per connection; messages are framed with
//!   [`ivr_sip::msg::framer::StreamFramer`] (Content-Length, bounded sizes;
//!   a framing error closes the connection). Requests we send over TCP reuse
//!   a connection to the destination, or open one (messages queue while it
//!   connects).
//! - Commands ([`SipHandle`] methods) are closures run by the driver on the
//!   endpoint with the current time; the result comes back on a oneshot once
//!   the messages the command made are handed to the sockets. No lock:
//!   nothing but the driver touches the endpoint.
//!
//! Queues and what happens when full:
//! - network input ([`INPUT_QUEUE`], shared by all sockets): a UDP datagram
//!   that finds it full is dropped and counted
//!   ([`SipHandle::dropped_datagrams`]), as the network could have dropped
//!   it; SIP retransmission recovers it. A TCP connection waits for room
//!   (TCP flow control then pushes back on the peer; dropping a message from
//!   a reliable stream would lose it for good).
//! - commands ([`COMMAND_QUEUE`]): the caller waits for room. The driver
//!   serves commands first and never waits on anything but its queues, so
//!   the wait is short.
//! - events to the application ([`EVENT_QUEUE`]): the driver never blocks on
//!   it (the application awaits commands while it consumes events, so a
//!   blocking driver could deadlock with it). Events that find it full wait,
//!   in order, in the driver's backlog; while the backlog is not empty the
//!   driver takes no network input (which then queues in [`INPUT_QUEUE`] and
//!   the kernel, and is dropped there as above), but keeps serving commands
//!   and timers. Those only make events about calls and transactions that
//!   already exist, so the backlog is bounded by the endpoint's own limits
//!   (`max_calls`, the per-source rate limit).
//! - per-connection TCP writes ([`TCP_WRITE_QUEUE`]): when full the message
//!   is dropped and the connection closed, since a peer that does not read
//!   would otherwise hold memory without bound;
//! - UDP sends use `try_send_to`: a full socket buffer drops the datagram,
//!   as the network could have.

mod answer;
mod driver;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use ivr_sip::msg::HeaderName;
use ivr_sip::{
    CallHandle, DigestClient, Endpoint, EndpointConfig, EndpointError, Event, OutgoingCall,
    RegistrationConfig, RegistrationHandle, Transport,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use answer::{answer_calls, AnswerSdp, AnswerStats, FixedPcmaAnswer};
use driver::{Command, Counters, Driver};
pub use tls::{ClientAuth, StreamLimits, Tls, TlsError, TlsSettings};

/// Capacity of the event channel to the application.
pub const EVENT_QUEUE: usize = 1024;
/// Capacity of the driver's network input queue (datagrams and framed TCP messages).
pub const INPUT_QUEUE: usize = 1024;
/// Capacity of the driver's command queue.
pub const COMMAND_QUEUE: usize = 256;
/// Capacity of the queue of datagrams from sources outside the trunks.
pub const OUTSIDE_QUEUE: usize = 256;
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
    /// TLS listen addresses (with [`SipListenConfig::tls_config`]).
    pub tls: Vec<SocketAddr>,
    /// Address put in Via/Contact for TLS; default: the first TLS socket
    /// (its IP replaced by `advertised`'s when unspecified).
    pub advertised_tls: Option<SocketAddr>,
    /// The TLS configuration: needed for TLS listeners and for TLS
    /// connections we open.
    pub tls_config: Option<Arc<Tls>>,
    /// Source networks of the trunks: their datagrams have the input
    /// queue to themselves, everyone else's wait in [`OUTSIDE_QUEUE`]
    /// (empty: one queue for all).
    pub trunk_sources: Vec<ivr_sip::guard::IpNet>,
    /// Limits of SIP over TCP connections.
    pub tcp_limits: TcpLimits,
}

/// Limits of SIP over TCP connections (RFC 3261 sec. 18.3 leaves them to
/// the implementation; without them idle or slow peers hold descriptors).
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Most connections open at once; beyond it a new one is closed at once.
    pub max_connections: usize,
    /// Nothing received for this long closes the connection.
    pub idle_timeout: std::time::Duration,
    /// A message must arrive whole within this long of its first byte.
    pub message_timeout: std::time::Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 256,
            idle_timeout: std::time::Duration::from_secs(120),
            message_timeout: std::time::Duration::from_secs(10),
        }
    }
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
    /// TLS listen addresses are configured without certificate and key.
    #[error("TLS listen address configured without a TLS configuration (cert_file, key_file)")]
    NoTlsConfig,
}

/// The running SIP transport; drop or [`SipService::shutdown`] to stop it.
pub struct SipService {
    handle: SipHandle,
    tasks: Vec<JoinHandle<()>>,
}

/// A cheap, cloneable handle for application commands.
#[derive(Clone)]
pub struct SipHandle {
    cmds: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    local: Arc<Vec<(Transport, SocketAddr)>>,
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
        let mut tls_listeners = Vec::new();
        if !listen.tls.is_empty() && listen.tls_config.is_none() {
            return Err(SipTransportError::NoTlsConfig);
        }
        for addr in &listen.tls {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| SipTransportError::Bind {
                    addr: *addr,
                    source,
                })?;
            let bound = l.local_addr().map_err(|source| SipTransportError::Bind {
                addr: *addr,
                source,
            })?;
            local.push((Transport::Tls, bound));
            tls_listeners.push(l);
        }
        let first = local
            .first()
            .map(|(_, a)| *a)
            .ok_or(SipTransportError::NoListenAddress)?;
        let advertised = listen.advertised.unwrap_or(first);
        if advertised.ip().is_unspecified() {
            return Err(SipTransportError::UnspecifiedAdvertised(advertised));
        }
        let advertised_tls = listen.advertised_tls.or_else(|| {
            let (_, mut a) = *local.iter().find(|(t, _)| *t == Transport::Tls)?;
            if a.ip().is_unspecified() {
                a.set_ip(advertised.ip());
            }
            Some(a)
        });
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let counters = Arc::new(Counters::default());
        let (net_tx, net_rx) = mpsc::channel(INPUT_QUEUE);
        let (outside_tx, outside_rx) = mpsc::channel(OUTSIDE_QUEUE);
        let trunk_sources = Arc::new(listen.trunk_sources.clone());
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let mut tasks = Vec::new();
        let mut sockets = Vec::new();
        let bound_udp = local.iter().filter(|(t, _)| *t == Transport::Udp);
        for (s, (_, bound)) in udp.into_iter().zip(bound_udp) {
            sockets.push((bound.is_ipv4(), s.clone()));
            tasks.push(tokio::spawn(driver::udp_loop(
                s,
                net_tx.clone(),
                outside_tx.clone(),
                trunk_sources.clone(),
                counters.clone(),
            )));
        }
        for l in listeners {
            tasks.push(tokio::spawn(driver::tcp_accept_loop(
                l,
                net_tx.clone(),
                listen.tcp_limits,
            )));
        }
        for l in tls_listeners {
            if let Some(tls) = &listen.tls_config {
                tasks.push(tokio::spawn(driver::tls_accept_loop(
                    l,
                    tls.clone(),
                    net_tx.clone(),
                    counters.clone(),
                )));
            }
        }
        let mut ep = endpoint(advertised);
        ep.advertised_tls = advertised_tls;
        let driver = Driver::new(
            Endpoint::new(ep),
            sockets,
            net_tx,
            counters.clone(),
            listen.tls_config.clone(),
        );
        tasks.push(tokio::spawn(
            driver.run(net_rx, outside_rx, cmd_rx, events_tx),
        ));
        let handle = SipHandle {
            cmds: cmd_tx,
            counters,
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

    /// Runs `f` on the driver; `None` when the service has stopped.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Endpoint, Instant) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let cmd: Command = Box::new(move |ep, now| {
            let r = f(ep, now);
            Box::new(move || {
                let _ = tx.send(r);
            })
        });
        self.cmds.send(cmd).await.ok()?;
        rx.await.ok()
    }

    /// Runs a call command; a stopped service has no calls.
    async fn call_cmd<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Endpoint, Instant) -> Result<T, EndpointError> + Send + 'static,
    ) -> Result<T, EndpointError> {
        self.run(f).await.unwrap_or(Err(EndpointError::UnknownCall))
    }

    /// Graceful shutdown: OPTIONS probes get 503 from now on, so a load
    /// balancer stops sending this instance new calls.
    pub async fn set_draining(&self, on: bool) {
        let _ = self.run(move |ep, _| ep.set_draining(on)).await;
    }

    /// 180 Ringing.
    pub async fn ringing(&self, call: CallHandle) -> Result<(), EndpointError> {
        self.call_cmd(move |ep, now| ep.ringing(call, now)).await
    }
    /// 200 OK with the SDP answer.
    pub async fn answer(&self, call: CallHandle, sdp: Vec<u8>) -> Result<(), EndpointError> {
        self.call_cmd(move |ep, now| ep.answer(call, sdp, now))
            .await
    }
    /// Refuse an incoming call.
    pub async fn reject(&self, call: CallHandle, status: u16) -> Result<(), EndpointError> {
        self.call_cmd(move |ep, now| ep.reject(call, status, now))
            .await
    }
    /// Answer a re-INVITE.
    pub async fn answer_reinvite(
        &self,
        call: CallHandle,
        sdp: Vec<u8>,
    ) -> Result<(), EndpointError> {
        self.call_cmd(move |ep, now| ep.answer_reinvite(call, sdp, now))
            .await
    }
    /// Refuse a re-INVITE.
    pub async fn reject_reinvite(
        &self,
        call: CallHandle,
        status: u16,
    ) -> Result<(), EndpointError> {
        self.call_cmd(move |ep, now| ep.reject_reinvite(call, status, now))
            .await
    }
    /// Hang up.
    pub async fn hangup(&self, call: CallHandle) -> Result<(), EndpointError> {
        self.call_cmd(move |ep, now| ep.hangup(call, now)).await
    }
    /// Blind transfer.
    pub async fn refer(
        &self,
        call: CallHandle,
        target: ivr_sip::msg::Uri,
        context: Vec<(HeaderName, String)>,
    ) -> Result<(), EndpointError> {
        self.call_cmd(move |ep, now| ep.refer(call, &target, context, now))
            .await
    }
    /// Outbound call.
    pub async fn invite(&self, call: OutgoingCall) -> Result<CallHandle, EndpointError> {
        self.call_cmd(move |ep, now| ep.invite(call, now)).await
    }
    /// Register to a trunk; `None` when the service has stopped.
    pub async fn register(
        &self,
        cfg: RegistrationConfig,
        auth: Box<dyn DigestClient>,
    ) -> Option<RegistrationHandle> {
        self.run(move |ep, now| ep.register(cfg, auth, now)).await
    }
    /// Calls in the endpoint after the driver's last step (events about a
    /// call leave the driver after the step that counted it).
    pub fn call_count(&self) -> usize {
        self.counters.calls.load(Ordering::Relaxed)
    }

    /// UDP datagrams dropped so far because the driver's input queue was full.
    pub fn dropped_datagrams(&self) -> u64 {
        self.counters.dropped_datagrams.load(Ordering::Relaxed)
    }

    /// TLS connections refused so far: over the connection limit, or a
    /// handshake that failed or timed out.
    pub fn tls_refused(&self) -> u64 {
        self.counters.tls_refused.load(Ordering::Relaxed)
    }

    /// Datagrams from outside the trunks dropped at their full queue.
    pub fn dropped_outside(&self) -> u64 {
        self.counters.dropped_outside.load(Ordering::Relaxed)
    }

    /// The SIP guard's decisions so far (403s, silence, rate limits, 401s).
    pub fn guard_stats(&self) -> ivr_sip::guard::GuardStats {
        self.counters.guard.lock().map(|g| *g).unwrap_or_default()
    }
}
