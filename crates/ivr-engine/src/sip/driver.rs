//! The one task that owns the [`Endpoint`], and the socket tasks that feed
//! it. See the [module docs](super) for the queues and their policies.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_sip::msg::framer::{Framed, StreamFramer};
use ivr_sip::msg::{Message, DEFAULT_MAX_BODY, DEFAULT_MAX_HEAD};
use ivr_sip::{Endpoint, Event, Transmit, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};

use super::tls::Tls;
use super::TCP_WRITE_QUEUE;

/// An application command: runs on the driver with the endpoint and the
/// time, and gives back the reply (sending its result on a oneshot), which
/// the driver calls once the transmits the command made are handed to the
/// sockets.
pub(super) type Command = Box<dyn FnOnce(&mut Endpoint, Instant) -> Reply + Send>;
/// Sends a command's result.
pub(super) type Reply = Box<dyn FnOnce() + Send>;

/// What the socket tasks hand to the driver.
pub(super) enum NetInput {
    /// A UDP datagram.
    Datagram { src: SocketAddr, bytes: Vec<u8> },
    /// A message framed from a TCP or TLS connection.
    Stream {
        transport: Transport,
        peer: SocketAddr,
        msg: Box<Message>,
    },
    /// An accepted (or, for TLS, handshaken) connection's write queue.
    Opened {
        transport: Transport,
        peer: SocketAddr,
        conn: u64,
        writer: mpsc::Sender<Vec<u8>>,
    },
    /// A connection ended (or an outbound connect failed).
    Closed {
        transport: Transport,
        peer: SocketAddr,
        conn: u64,
    },
}

/// Counters the driver keeps for [`super::SipHandle`].
#[derive(Default)]
pub(super) struct Counters {
    /// Calls in the endpoint after the driver's last step.
    pub(super) calls: AtomicUsize,
    /// UDP datagrams dropped because the input queue was full.
    pub(super) dropped_datagrams: AtomicU64,
    /// TLS connections refused: over the connection limit, or a handshake
    /// that failed or timed out.
    pub(super) tls_refused: AtomicU64,
    /// Datagrams from outside the trunks dropped because their own queue was full.
    pub(super) dropped_outside: AtomicU64,
    /// The endpoint's guard decisions after the driver's last step.
    pub(super) guard: std::sync::Mutex<ivr_sip::guard::GuardStats>,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

struct Conn {
    id: u64,
    writer: mpsc::Sender<Vec<u8>>,
}

pub(super) struct Driver {
    pub(super) ep: Endpoint,
    /// UDP sockets with their address family (true: IPv4).
    pub(super) udp: Vec<(bool, Arc<UdpSocket>)>,
    /// A sender of the input queue, for connections the driver opens.
    pub(super) net_tx: mpsc::Sender<NetInput>,
    pub(super) counters: Arc<Counters>,
    /// The TLS transport, when configured (for connections we open).
    pub(super) tls: Option<Arc<Tls>>,
    conns: HashMap<(Transport, SocketAddr), Conn>,
    /// Events the application queue had no room for, oldest first.
    backlog: VecDeque<Event>,
    /// The application dropped its event receiver: events are discarded.
    app_gone: bool,
}

impl Driver {
    pub(super) fn new(
        ep: Endpoint,
        udp: Vec<(bool, Arc<UdpSocket>)>,
        net_tx: mpsc::Sender<NetInput>,
        counters: Arc<Counters>,
        tls: Option<Arc<Tls>>,
    ) -> Self {
        Driver {
            ep,
            udp,
            net_tx,
            counters,
            tls,
            conns: HashMap::new(),
            backlog: VecDeque::new(),
            app_gone: false,
        }
    }

    /// Runs until every command sender is gone (the service was dropped)
    /// or the task is aborted.
    pub(super) async fn run(
        mut self,
        mut net: mpsc::Receiver<NetInput>,
        mut outside: mpsc::Receiver<NetInput>,
        mut cmds: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
    ) {
        loop {
            self.pump(&events);
            let deadline = self.ep.poll_timeout().map(tokio::time::Instant::from_std);
            let sleep = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // Local work first (commands, then the application's room for
            // events, then timers); the network, the one source whose rate
            // we do not control, last, and only while events flow.
            tokio::select! {
                biased;
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => {
                        let reply = cmd(&mut self.ep, Instant::now());
                        self.pump(&events);
                        reply();
                    }
                    None => return,
                },
                permit = events.reserve(), if !self.backlog.is_empty() => match permit {
                    Ok(p) => {
                        if let Some(e) = self.backlog.pop_front() {
                            p.send(e);
                        }
                    }
                    Err(_) => {
                        self.app_gone = true;
                        self.backlog.clear();
                    }
                },
                () = sleep => self.ep.handle_timeout(Instant::now()),
                input = net.recv(), if self.backlog.is_empty() => match input {
                    Some(i) => self.input(i),
                    None => return,
                },
                // Datagrams from outside the trunks last: a flood of them
                // waits (and is dropped) in its own queue, never ahead of a trunk's.
                Some(i) = outside.recv(), if self.backlog.is_empty() => self.input(i),
            }
        }
    }

    fn input(&mut self, input: NetInput) {
        match input {
            NetInput::Datagram { src, bytes } => {
                self.ep.handle_datagram(src, &bytes, Instant::now());
            }
            NetInput::Stream {
                transport,
                peer,
                msg,
            } => {
                self.ep
                    .handle_message(transport, peer, *msg, Instant::now());
            }
            NetInput::Opened {
                transport,
                peer,
                conn,
                writer,
            } => {
                self.conns
                    .insert((transport, peer), Conn { id: conn, writer });
            }
            NetInput::Closed {
                transport,
                peer,
                conn,
            } => {
                let key = (transport, peer);
                if self.conns.get(&key).is_some_and(|c| c.id == conn) {
                    self.conns.remove(&key);
                }
            }
        }
    }

    /// Sends what the endpoint wants sent and moves its events towards the
    /// application, keeping order: while a backlog exists, new events join it.
    fn pump(&mut self, events: &mpsc::Sender<Event>) {
        // Counted before the events leave, so an application that saw a
        // call end sees it gone from the count.
        self.counters
            .calls
            .store(self.ep.call_count(), Ordering::Relaxed);
        if let Ok(mut g) = self.counters.guard.lock() {
            *g = self.ep.guard_stats();
        }
        while let Some(t) = self.ep.poll_transmit() {
            self.send(t);
        }
        while let Some(e) = self.ep.poll_event() {
            if self.app_gone {
                continue;
            }
            if !self.backlog.is_empty() {
                self.backlog.push_back(e);
                continue;
            }
            match events.try_send(e) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(e)) => self.backlog.push_back(e),
                Err(mpsc::error::TrySendError::Closed(_)) => self.app_gone = true,
            }
        }
    }

    fn send(&mut self, t: Transmit) {
        match t.transport {
            Transport::Udp => {
                let v4 = t.dest.is_ipv4();
                match self.udp.iter().find(|(is_v4, _)| *is_v4 == v4) {
                    Some((_, s)) => {
                        if let Err(e) = s.try_send_to(&t.bytes, t.dest) {
                            tracing::debug!(dest = %t.dest, error = %e, "UDP send dropped");
                        }
                    }
                    None => tracing::warn!(dest = %t.dest, "no UDP socket for address family"),
                }
            }
            Transport::Tcp | Transport::Tls => {
                let key = (t.transport, t.dest);
                match self.conns.get(&key) {
                    Some(c) => {
                        if c.writer.try_send(t.bytes).is_err() {
                            tracing::warn!(dest = %t.dest, "stream write queue full; closing connection");
                            self.conns.remove(&key);
                        }
                    }
                    None => {
                        // Queue now, connect in the background: later messages to
                        // the same peer wait in the same queue, in order.
                        let tls = match (t.transport, &self.tls) {
                            (Transport::Tls, Some(tls)) => Some(tls.clone()),
                            (Transport::Tls, None) => {
                                tracing::warn!(dest = %t.dest, "no TLS transport configured; message dropped");
                                return;
                            }
                            _ => None,
                        };
                        let (writer, rx) = mpsc::channel(TCP_WRITE_QUEUE);
                        let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
                        let _ = writer.try_send(t.bytes);
                        self.conns.insert(key, Conn { id: conn, writer });
                        tokio::spawn(connect(t.dest, conn, rx, self.net_tx.clone(), tls));
                    }
                }
            }
        }
    }
}

async fn connect(
    peer: SocketAddr,
    conn: u64,
    rx: mpsc::Receiver<Vec<u8>>,
    net: mpsc::Sender<NetInput>,
    tls: Option<Arc<Tls>>,
) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let closed = NetInput::Closed {
        transport,
        peer,
        conn,
    };
    let stream = match TcpStream::connect(peer).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(dest = %peer, error = %e, "TCP connect failed");
            let _ = net.send(closed).await;
            return;
        }
    };
    let Some(tls) = tls else {
        let limits = super::TcpLimits::default();
        run_connection(stream, Transport::Tcp, peer, conn, rx, net, limits).await;
        return;
    };
    let Some(connector) = tls.connector.clone() else {
        tracing::warn!(dest = %peer, "TLS connection wanted but no ca_file to verify the trunk with");
        let _ = net.send(closed).await;
        return;
    };
    let name = tls.name_for(peer);
    let limits = tls.limits;
    match tokio::time::timeout(limits.handshake_timeout, connector.connect(name, stream)).await {
        Ok(Ok(s)) => {
            let reading = limits.reading();
            run_connection(s, Transport::Tls, peer, conn, rx, net, reading).await;
        }
        Ok(Err(e)) => {
            tracing::warn!(dest = %peer, error = %e, "TLS handshake with the trunk failed");
            let _ = net.send(closed).await;
        }
        Err(_) => {
            tracing::warn!(dest = %peer, "TLS handshake with the trunk timed out");
            let _ = net.send(closed).await;
        }
    }
}

/// Receives UDP datagrams into the driver's input queue; a full queue drops
/// the datagram and counts it. Datagrams from sources outside `trunks` go
/// to their own queue (`outside`), which the driver reads only when the
/// trunks' is empty (when `trunks` is empty, everything is a trunk's).
pub(super) async fn udp_loop(
    sock: Arc<UdpSocket>,
    net: mpsc::Sender<NetInput>,
    outside: mpsc::Sender<NetInput>,
    trunks: Arc<Vec<ivr_sip::guard::IpNet>>,
    counters: Arc<Counters>,
) {
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
        let bytes = buf.get(..n).unwrap_or_default().to_vec();
        let from_trunk = trunks.is_empty() || trunks.iter().any(|t| t.contains(src.ip()));
        let (queue, dropped) = if from_trunk {
            (&net, &counters.dropped_datagrams)
        } else {
            (&outside, &counters.dropped_outside)
        };
        match queue.try_send(NetInput::Datagram { src, bytes }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%src, from_trunk, "SIP input queue full; datagram dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// Accepts TCP connections; each gets a write queue the driver learns of
/// before the first message read from it.
pub(super) async fn tcp_accept_loop(
    l: TcpListener,
    net: mpsc::Sender<NetInput>,
    limits: super::TcpLimits,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        match l.accept().await {
            Ok((stream, peer)) => {
                // At the limit a new connection is closed at once: the
                // descriptor is freed and the connections already open
                // (a trunk's) keep working.
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::debug!(%peer, "SIP TCP connection limit reached; closed");
                    drop(stream);
                    continue;
                };
                let (writer, rx) = mpsc::channel(TCP_WRITE_QUEUE);
                let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
                let opened = NetInput::Opened {
                    transport: Transport::Tcp,
                    peer,
                    conn,
                    writer,
                };
                if net.send(opened).await.is_err() {
                    return;
                }
                let net = net.clone();
                tokio::spawn(async move {
                    run_connection(stream, Transport::Tcp, peer, conn, rx, net, limits).await;
                    drop(slot);
                });
            }
            Err(e) => tracing::warn!(error = %e, "TCP accept failed"),
        }
    }
}

/// Accepts TLS connections: at most `max_connections` at once (more are
/// closed on accept), each handshaken within `handshake_timeout` on a task
/// of its own (a slow client holds up nobody), then read like TCP.
pub(super) async fn tls_accept_loop(
    l: TcpListener,
    tls: Arc<Tls>,
    net: mpsc::Sender<NetInput>,
    counters: Arc<Counters>,
) {
    let slots = Arc::new(Semaphore::new(
        tls.limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    loop {
        let (stream, peer) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "TLS accept failed");
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counters.tls_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "TLS connection limit reached; connection closed");
            continue;
        };
        let (tls, net, counters) = (tls.clone(), net.clone(), counters.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let limits = tls.limits;
            let hs = tokio::time::timeout(limits.handshake_timeout, tls.acceptor.accept(stream));
            let stream = match hs.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    counters.tls_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    counters.tls_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let (writer, rx) = mpsc::channel(TCP_WRITE_QUEUE);
            let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
            let opened = NetInput::Opened {
                transport: Transport::Tls,
                peer,
                conn,
                writer,
            };
            if net.send(opened).await.is_err() {
                return;
            }
            run_connection(
                stream,
                Transport::Tls,
                peer,
                conn,
                rx,
                net,
                limits.reading(),
            )
            .await;
        });
    }
}

/// Writes the connection's queue and frames what it reads
/// ([`StreamFramer`], bounded sizes); a framing error closes it, and so
/// does `idle` without a byte either way, or the driver dropping the queue.
/// Messages read wait for room in the driver's input queue (TCP flow
/// control pushes back on the peer).
async fn run_connection<S>(
    stream: S,
    transport: Transport,
    peer: SocketAddr,
    conn: u64,
    mut rx: mpsc::Receiver<Vec<u8>>,
    net: mpsc::Sender<NetInput>,
    limits: super::TcpLimits,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut framer = StreamFramer::new(DEFAULT_MAX_HEAD, DEFAULT_MAX_BODY);
    let mut buf = vec![0u8; 16 * 1024];
    let later = |t: tokio::time::Instant, d: Duration| {
        t.checked_add(d)
            .unwrap_or_else(|| t + Duration::from_secs(86_400 * 365))
    };
    let mut last_read = tokio::time::Instant::now();
    // When the message being read began (its first byte), if one is.
    let mut partial_since: Option<tokio::time::Instant> = None;
    'conn: loop {
        let deadline = match partial_since {
            Some(t) => later(t, limits.message_timeout),
            None => later(last_read, limits.idle_timeout),
        };
        tokio::select! {
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                last_read = tokio::time::Instant::now();
                framer.push(buf.get(..n).unwrap_or_default());
                loop {
                    match framer.next_message() {
                        Ok(Framed::Message(msg)) => {
                            partial_since = None;
                            let input = NetInput::Stream { transport, peer, msg };
                            if net.send(input).await.is_err() {
                                return; // the driver stopped
                            }
                        }
                        Ok(Framed::NeedMore) => {
                            if framer.buffered() == 0 {
                                partial_since = None;
                            } else if partial_since.is_none() {
                                partial_since = Some(tokio::time::Instant::now());
                            }
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "SIP stream framing error; closing");
                            break 'conn;
                        }
                    }
                }
            }
            m = rx.recv() => match m {
                Some(b) => {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%peer, ?transport, partial = partial_since.is_some(), "SIP stream connection timed out; closing");
                break;
            }
        }
    }
    let _ = wr.shutdown().await;
    let _ = net
        .send(NetInput::Closed {
            transport,
            peer,
            conn,
        })
        .await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ivr_sip::EndpointConfig;
    use tokio::sync::oneshot;

    use super::*;

    fn invite(n: u16) -> NetInput {
        let src: SocketAddr = format!("127.0.0.1:{}", 5100 + n).parse().unwrap();
        let bytes = format!(
            "INVITE sip:bot@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {src};branch=z9hG4bK-driver-{n}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:caller@127.0.0.1>;tag=t{n}\r\n\
             To: <sip:bot@127.0.0.1>\r\n\
             Call-ID: driver-{n}@test\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{src}>\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes();
        NetInput::Datagram { src, bytes }
    }

    fn source(e: Option<Event>) -> u16 {
        match e {
            Some(Event::IncomingCall { source, .. }) => source.port(),
            other => panic!("expected an incoming call, got {other:?}"),
        }
    }

    /// The application awaits a command while its event queue is full: the
    /// driver serves the command (no deadlock), holds the events in order,
    /// and takes no more network input until the application reads.
    #[tokio::test]
    async fn a_full_event_queue_stops_network_input_but_not_commands() {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let ep = Endpoint::new(EndpointConfig::new(sock.local_addr().unwrap()));
        let (net_tx, net_rx) = mpsc::channel(8);
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(1);
        let (events_tx, mut events) = mpsc::channel(1);
        let (_outside_tx, outside_rx) = mpsc::channel(1);
        let driver = Driver::new(
            ep,
            vec![(true, sock)],
            net_tx.clone(),
            Arc::new(Counters::default()),
            None,
        );
        let task = tokio::spawn(driver.run(net_rx, outside_rx, cmd_rx, events_tx));
        for n in 1..=3 {
            net_tx.send(invite(n)).await.unwrap();
        }
        // Wait until the driver holds one event in the queue and one in its
        // backlog: the third INVITE then stays unread.
        let calls = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let (tx, rx) = oneshot::channel();
                cmd_tx
                    .send(Box::new(move |ep: &mut Endpoint, _| {
                        let n = ep.call_count();
                        Box::new(move || {
                            let _ = tx.send(n);
                        })
                    }))
                    .await
                    .unwrap();
                let n = rx.await.unwrap();
                if n >= 2 {
                    return n;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("commands are served while the event queue is full");
        assert_eq!(calls, 2, "network input taken despite a backlog");
        assert_eq!(source(events.recv().await), 5101);
        assert_eq!(source(events.recv().await), 5102);
        assert_eq!(source(events.recv().await), 5103);
        task.abort();
    }
}
