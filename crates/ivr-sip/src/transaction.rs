//! Transactions (RFC 3261 sec. 17) with the RFC 6026 "Accepted" states.
//!
//! Each transaction is a state machine driven by inputs (a message, or
//! "time is now `t`") and polled for outputs ([`TxOutput`]). Timers A-K
//! (sec. 17.1.1.2, 17.1.2.2, 17.2.1, 17.2.2; table in sec. A) plus L and M
//! (RFC 6026 sec. 8) are deadlines in a [`TimerTable`] indexed by [`Timer`]:
//! nothing sleeps; the owner asks [`ClientTransaction::next_deadline`] and
//! calls `handle_timeout(now)` when it passes.
//!
//! Matching (sec. 17.1.3, 17.2.3): [`TxKey`] uses the branch when it has
//! the `z9hG4bK` cookie, and otherwise the RFC 2543 fallback of Call-ID,
//! From tag, CSeq number and top Via.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::msg::{Method, Request, Response};

/// Timer values (sec. 17.1.1.1): T1 RTT estimate, T2 maximum retransmit
/// interval for non-INVITE requests and INVITE responses, T4 maximum
/// duration a message remains in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// T1 (default 500 ms).
    pub t1: Duration,
    /// T2 (default 4 s).
    pub t2: Duration,
    /// T4 (default 5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// The transaction timers (RFC 3261 Table 4, RFC 6026 L and M).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// INVITE request retransmit (client, unreliable).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait for response retransmits after a non-2xx final (client INVITE).
    D,
    /// Non-INVITE request retransmit (client, unreliable).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmit (server, unreliable).
    G,
    /// Wait for ACK receipt (server INVITE).
    H,
    /// Wait for ACK retransmits (server INVITE).
    I,
    /// Wait for request retransmits (server non-INVITE).
    J,
    /// Wait for response retransmits (client non-INVITE).
    K,
    /// Wait in Accepted for INVITE retransmits (server, RFC 6026).
    L,
    /// Wait in Accepted for 2xx retransmits (client, RFC 6026).
    M,
}

const TIMER_COUNT: usize = 12;

impl Timer {
    fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines for each [`Timer`], `None` when not running.
#[derive(Debug, Clone, Default)]
pub struct TimerTable([Option<Instant>; TIMER_COUNT]);

impl TimerTable {
    /// Starts (or restarts) a timer.
    pub fn set(&mut self, t: Timer, at: Instant) {
        self.0[t.index()] = Some(at);
    }
    /// Stops a timer.
    pub fn stop(&mut self, t: Timer) {
        self.0[t.index()] = None;
    }
    /// The deadline of a timer.
    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t.index()]
    }
    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
    /// Removes and returns the timers due at `now`, earliest first.
    fn expired(&mut self, now: Instant) -> Vec<Timer> {
        use Timer::*;
        let mut due: Vec<(Instant, Timer)> = [A, B, D, E, F, G, H, I, J, K, L, M]
            .into_iter()
            .filter_map(|t| self.get(t).filter(|d| *d <= now).map(|d| (d, t)))
            .collect();
        due.sort_by_key(|(d, _)| *d);
        for (_, t) in &due {
            self.stop(*t);
        }
        due.into_iter().map(|(_, t)| t).collect()
    }
}

/// Identifies a transaction (sec. 17.1.3 for clients, 17.2.3 for servers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxKey {
    /// RFC 3261: branch, sent-by and method (ACK and CANCEL map as the RFC says).
    Branch {
        /// The branch parameter.
        branch: String,
        /// sent-by of the top Via (empty for client keys).
        sent_by: String,
        /// Method (INVITE for ACK).
        method: String,
    },
    /// RFC 2543 fallback: Call-ID, From tag, CSeq number, top Via, method.
    Rfc2543 {
        /// Call-ID.
        call_id: String,
        /// From tag.
        from_tag: String,
        /// CSeq number.
        cseq: u32,
        /// The top Via as text.
        via: String,
        /// Method (INVITE for ACK).
        method: String,
    },
}

impl TxKey {
    /// The server-transaction key of a request; ACK maps to its INVITE
    /// (sec. 17.2.3). CANCEL has its own transaction; see [`TxKey::cancel_target`].
    pub fn server(req: &Request) -> Option<TxKey> {
        let via = req.headers.top_via().ok()?;
        let method = match req.method {
            Method::Ack => "INVITE".to_string(),
            ref m => m.as_str().to_string(),
        };
        Self::build(req, &via, method)
    }

    /// The key of the INVITE server transaction a CANCEL refers to (sec. 9.2).
    pub fn cancel_target(req: &Request) -> Option<TxKey> {
        let via = req.headers.top_via().ok()?;
        Self::build(req, &via, "INVITE".into())
    }

    fn build(req: &Request, via: &crate::msg::Via, method: String) -> Option<TxKey> {
        if via.is_rfc3261_branch() {
            let sent_by = match via.port {
                Some(p) => format!("{}:{p}", via.host),
                None => via.host.to_string(),
            };
            Some(TxKey::Branch {
                branch: via.branch()?.to_string(),
                sent_by,
                method,
            })
        } else {
            let from = req.headers.from().ok()?;
            Some(TxKey::Rfc2543 {
                call_id: req.headers.call_id().ok()?.to_string(),
                from_tag: from.tag().unwrap_or("").to_string(),
                cseq: req.headers.cseq().ok()?.seq,
                via: via.to_string(),
                method,
            })
        }
    }

    /// The client-transaction key for a response (sec. 17.1.3): branch + CSeq method.
    pub fn client_for_response(resp: &Response) -> Option<TxKey> {
        let via = resp.headers.top_via().ok()?;
        let cseq = resp.headers.cseq().ok()?;
        Some(TxKey::Branch {
            branch: via.branch()?.to_string(),
            sent_by: String::new(),
            method: cseq.method.as_str().to_string(),
        })
    }

    /// The client-transaction key of a request we send.
    pub fn client_for_request(req: &Request) -> Option<TxKey> {
        let via = req.headers.top_via().ok()?;
        Some(TxKey::Branch {
            branch: via.branch()?.to_string(),
            sent_by: String::new(),
            method: req.method.as_str().to_string(),
        })
    }
}

/// What a transaction asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutput {
    /// Send these bytes to the transaction's peer.
    Transmit(Vec<u8>),
    /// A response for the transaction user (client transactions).
    Response(Response),
    /// The transaction timed out (Timer B or F: the TU treats it as 408;
    /// Timer H on a server: the ACK never came).
    Timeout,
    /// The transaction is finished and can be dropped.
    Terminated,
}

/// Client transaction states (sec. 17.1.1, 17.1.2; RFC 6026 Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, nothing back yet.
    Calling,
    /// Non-INVITE sent, nothing back yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A 2xx to INVITE arrived; absorbing retransmitted 2xx (RFC 6026).
    Accepted,
    /// A final response arrived; absorbing retransmissions.
    Completed,
    /// Done.
    Terminated,
}

/// A client transaction (INVITE or non-INVITE, chosen by the request method).
#[derive(Debug)]
pub struct ClientTransaction {
    request: Request,
    bytes: Vec<u8>,
    invite: bool,
    reliable: bool,
    cfg: TimerConfig,
    state: ClientState,
    timers: TimerTable,
    interval: Duration,
    ack: Option<Vec<u8>>,
    out: VecDeque<TxOutput>,
}

impl ClientTransaction {
    /// Starts a transaction: the request is transmitted at once and timers
    /// A/B (INVITE) or E/F (non-INVITE) start.
    pub fn new(request: Request, reliable: bool, cfg: TimerConfig, now: Instant) -> Self {
        let invite = request.method == Method::Invite;
        let bytes = request.to_bytes();
        let mut tx = ClientTransaction {
            request,
            bytes: bytes.clone(),
            invite,
            reliable,
            cfg,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            timers: TimerTable::default(),
            interval: cfg.t1,
            ack: None,
            out: VecDeque::new(),
        };
        tx.out.push_back(TxOutput::Transmit(bytes));
        let (retx, timeout) = if invite {
            (Timer::A, Timer::B)
        } else {
            (Timer::E, Timer::F)
        };
        if !reliable {
            tx.timers.set(retx, now + cfg.t1);
        }
        tx.timers.set(timeout, now + 64 * cfg.t1);
        tx
    }

    /// The request this transaction sends.
    pub fn request(&self) -> &Request {
        &self.request
    }
    /// Current state.
    pub fn state(&self) -> ClientState {
        self.state
    }
    /// The earliest timer deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }
    /// Next output.
    pub fn poll_output(&mut self) -> Option<TxOutput> {
        self.out.pop_front()
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.timers = TimerTable::default();
        self.out.push_back(TxOutput::Terminated);
    }

    /// ACK for a non-2xx final response (sec. 17.1.1.3): same branch, Request-URI,
    /// Call-ID, From, CSeq number; To from the response; Route copied.
    fn build_ack(&self, resp: &Response) -> Vec<u8> {
        use crate::msg::HeaderName as H;
        let mut ack = Request::new(Method::Ack, self.request.uri.clone());
        if let Some(v) = self.request.headers.get(&H::Via) {
            ack.headers.push(H::Via, v.to_string());
        }
        for name in [H::MaxForwards, H::From] {
            if let Some(v) = self.request.headers.get(&name) {
                ack.headers.push(name, v.to_string());
            }
        }
        if let Some(v) = resp.headers.get(&H::To) {
            ack.headers.push(H::To, v.to_string());
        }
        if let Some(v) = self.request.headers.get(&H::CallId) {
            ack.headers.push(H::CallId, v.to_string());
        }
        if let Ok(c) = self.request.headers.cseq() {
            ack.headers.push(H::CSeq, format!("{} ACK", c.seq));
        }
        for r in self.request.headers.get_all(&H::Route) {
            ack.headers.push(H::Route, r.to_string());
        }
        ack.headers.push(H::ContentLength, "0");
        ack.to_bytes()
    }

    /// A response matched to this transaction arrived.
    pub fn handle_response(&mut self, resp: Response, now: Instant) {
        let code = resp.status;
        match (self.invite, self.state) {
            (_, ClientState::Terminated) => {}
            (true, ClientState::Calling | ClientState::Proceeding) => {
                self.timers.stop(Timer::A);
                if code < 200 {
                    self.state = ClientState::Proceeding;
                    self.out.push_back(TxOutput::Response(resp));
                } else if code < 300 {
                    self.state = ClientState::Accepted;
                    self.timers.stop(Timer::B);
                    self.timers.set(Timer::M, now + 64 * self.cfg.t1);
                    self.out.push_back(TxOutput::Response(resp));
                } else {
                    self.state = ClientState::Completed;
                    self.timers.stop(Timer::B);
                    let ack = self.build_ack(&resp);
                    self.out.push_back(TxOutput::Transmit(ack.clone()));
                    self.ack = Some(ack);
                    self.out.push_back(TxOutput::Response(resp));
                    if self.reliable {
                        self.terminate();
                    } else {
                        self.timers.set(Timer::D, now + Duration::from_secs(32));
                    }
                }
            }
            // Retransmitted or forked 2xx: the TU re-sends its ACK (RFC 6026 sec. 7.2).
            (true, ClientState::Accepted) if (200..300).contains(&code) => {
                self.out.push_back(TxOutput::Response(resp));
            }
            (true, ClientState::Completed) if code >= 300 => {
                if let Some(ack) = &self.ack {
                    self.out.push_back(TxOutput::Transmit(ack.clone()));
                }
            }
            (false, ClientState::Trying | ClientState::Proceeding) => {
                if code < 200 {
                    self.state = ClientState::Proceeding;
                    self.out.push_back(TxOutput::Response(resp));
                } else {
                    self.state = ClientState::Completed;
                    self.timers.stop(Timer::E);
                    self.timers.stop(Timer::F);
                    self.out.push_back(TxOutput::Response(resp));
                    if self.reliable {
                        self.terminate();
                    } else {
                        self.timers.set(Timer::K, now + self.cfg.t4);
                    }
                }
            }
            _ => {}
        }
    }

    /// Time has advanced to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in self.timers.expired(now) {
            match t {
                Timer::A => {
                    self.out.push_back(TxOutput::Transmit(self.bytes.clone()));
                    self.interval *= 2;
                    self.timers.set(Timer::A, now + self.interval);
                }
                Timer::E => {
                    self.out.push_back(TxOutput::Transmit(self.bytes.clone()));
                    self.interval = if self.state == ClientState::Proceeding {
                        self.cfg.t2
                    } else {
                        (self.interval * 2).min(self.cfg.t2)
                    };
                    self.timers.set(Timer::E, now + self.interval);
                }
                Timer::B | Timer::F => {
                    self.out.push_back(TxOutput::Timeout);
                    self.terminate();
                }
                Timer::D | Timer::K | Timer::M => self.terminate(),
                _ => {}
            }
        }
    }
}

/// Server transaction states (sec. 17.2.1, 17.2.2; RFC 6026 Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE received, no response yet.
    Trying,
    /// A provisional response was sent (INVITE starts here).
    Proceeding,
    /// A 2xx to INVITE was sent; absorbing INVITE retransmissions (RFC 6026).
    Accepted,
    /// A final response was sent; retransmitting it on request retransmits.
    Completed,
    /// ACK received for a non-2xx final (INVITE only).
    Confirmed,
    /// Done.
    Terminated,
}

/// A server transaction.
#[derive(Debug)]
pub struct ServerTransaction {
    invite: bool,
    reliable: bool,
    cfg: TimerConfig,
    state: ServerState,
    timers: TimerTable,
    interval: Duration,
    last: Option<Vec<u8>>,
    out: VecDeque<TxOutput>,
}

impl ServerTransaction {
    /// A transaction for a newly received request.
    pub fn new(req: &Request, reliable: bool, cfg: TimerConfig) -> Self {
        let invite = req.method == Method::Invite;
        ServerTransaction {
            invite,
            reliable,
            cfg,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            timers: TimerTable::default(),
            interval: cfg.t1,
            last: None,
            out: VecDeque::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerState {
        self.state
    }
    /// The earliest timer deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }
    /// Next output.
    pub fn poll_output(&mut self) -> Option<TxOutput> {
        self.out.pop_front()
    }
    /// Whether a final response has been sent.
    pub fn is_final(&self) -> bool {
        !matches!(self.state, ServerState::Trying | ServerState::Proceeding)
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.timers = TimerTable::default();
        self.out.push_back(TxOutput::Terminated);
    }

    /// The TU sends a response (sec. 17.2.1, 17.2.2).
    pub fn send_response(&mut self, resp: &Response, now: Instant) {
        if self.is_final() {
            return;
        }
        let bytes = resp.to_bytes();
        self.out.push_back(TxOutput::Transmit(bytes.clone()));
        self.last = Some(bytes);
        let code = resp.status;
        if code < 200 {
            self.state = ServerState::Proceeding;
            return;
        }
        if self.invite {
            if code < 300 {
                // RFC 6026: the TU retransmits the 2xx; we absorb INVITE retransmits.
                self.state = ServerState::Accepted;
                self.timers.set(Timer::L, now + 64 * self.cfg.t1);
            } else {
                self.state = ServerState::Completed;
                if !self.reliable {
                    self.timers.set(Timer::G, now + self.cfg.t1);
                }
                self.timers.set(Timer::H, now + 64 * self.cfg.t1);
            }
        } else {
            self.state = ServerState::Completed;
            if self.reliable {
                self.terminate();
            } else {
                self.timers.set(Timer::J, now + 64 * self.cfg.t1);
            }
        }
    }

    /// A retransmission of the request arrived: re-send the last response (absorb).
    pub fn handle_retransmission(&mut self) {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => {
                if let Some(b) = &self.last {
                    self.out.push_back(TxOutput::Transmit(b.clone()));
                }
            }
            _ => {}
        }
    }

    /// An ACK matched this INVITE transaction (non-2xx final, sec. 17.2.1).
    pub fn handle_ack(&mut self, now: Instant) {
        if self.state == ServerState::Completed && self.invite {
            self.state = ServerState::Confirmed;
            self.timers.stop(Timer::G);
            self.timers.stop(Timer::H);
            if self.reliable {
                self.terminate();
            } else {
                self.timers.set(Timer::I, now + self.cfg.t4);
            }
        }
    }

    /// Time has advanced to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in self.timers.expired(now) {
            match t {
                Timer::G => {
                    if let Some(b) = &self.last {
                        self.out.push_back(TxOutput::Transmit(b.clone()));
                    }
                    self.interval = (self.interval * 2).min(self.cfg.t2);
                    self.timers.set(Timer::G, now + self.interval);
                }
                Timer::H => {
                    self.out.push_back(TxOutput::Timeout);
                    self.terminate();
                }
                Timer::I | Timer::J | Timer::L => self.terminate(),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{HeaderName as H, Uri};

    fn req(method: Method) -> Request {
        let mut r = Request::new(method.clone(), Uri::parse("sip:a@192.0.2.1").unwrap());
        r.headers
            .push(H::Via, "SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKabc");
        r.headers.push(H::From, "<sip:b@192.0.2.2>;tag=f");
        r.headers.push(H::To, "<sip:a@192.0.2.1>");
        r.headers.push(H::CallId, "c1");
        r.headers.push(H::CSeq, format!("1 {method}"));
        r.headers.push(H::ContentLength, "0");
        r
    }

    fn resp(r: &Request, code: u16) -> Response {
        crate::policy::make_response(r, code, Some("t"))
    }

    fn drain<F: FnMut() -> Option<TxOutput>>(f: F) -> Vec<TxOutput> {
        std::iter::from_fn(f).collect()
    }

    #[test]
    fn invite_client_retransmits_with_doubling_then_times_out_at_64_t1() {
        let t0 = Instant::now();
        let cfg = TimerConfig::default();
        let mut tx = ClientTransaction::new(req(Method::Invite), false, cfg, t0);
        assert_eq!(drain(|| tx.poll_output()).len(), 1);
        let mut sends = vec![];
        while let Some(d) = tx.next_deadline() {
            let now = d;
            tx.handle_timeout(now);
            for o in drain(|| tx.poll_output()) {
                match o {
                    TxOutput::Transmit(_) => sends.push(now - t0),
                    TxOutput::Timeout => assert_eq!(now - t0, 64 * cfg.t1),
                    _ => {}
                }
            }
        }
        let ms: Vec<u128> = sends.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(tx.state(), ClientState::Terminated);
    }

    #[test]
    fn non_invite_client_caps_interval_at_t2() {
        let t0 = Instant::now();
        let mut tx =
            ClientTransaction::new(req(Method::Options), false, TimerConfig::default(), t0);
        drain(|| tx.poll_output());
        let mut sends = vec![];
        let mut timed_out = false;
        while let Some(d) = tx.next_deadline() {
            tx.handle_timeout(d);
            for o in drain(|| tx.poll_output()) {
                match o {
                    TxOutput::Transmit(_) => sends.push((d - t0).as_millis()),
                    TxOutput::Timeout => timed_out = true,
                    _ => {}
                }
            }
        }
        assert!(timed_out);
        assert_eq!(&sends[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
    }

    #[test]
    fn invite_client_acks_non_2xx_and_absorbs_retransmits() {
        let t0 = Instant::now();
        let r = req(Method::Invite);
        let mut tx = ClientTransaction::new(r.clone(), false, TimerConfig::default(), t0);
        drain(|| tx.poll_output());
        tx.handle_response(resp(&r, 486), t0);
        let out = drain(|| tx.poll_output());
        assert!(matches!(&out[0], TxOutput::Transmit(b) if b.starts_with(b"ACK ")));
        assert!(matches!(&out[1], TxOutput::Response(r) if r.status == 486));
        tx.handle_response(resp(&r, 486), t0);
        let out = drain(|| tx.poll_output());
        assert_eq!(
            out.len(),
            1,
            "retransmitted 486 is ACKed again, not passed up"
        );
    }

    #[test]
    fn invite_server_retransmits_final_until_ack_or_timer_h() {
        let t0 = Instant::now();
        let r = req(Method::Invite);
        let mut tx = ServerTransaction::new(&r, false, TimerConfig::default());
        tx.send_response(&resp(&r, 100), t0);
        tx.handle_retransmission();
        assert_eq!(
            drain(|| tx.poll_output()).len(),
            2,
            "100 re-sent on INVITE retransmit"
        );
        tx.send_response(&resp(&r, 486), t0);
        drain(|| tx.poll_output());
        let g1 = tx.next_deadline().unwrap();
        assert_eq!(g1 - t0, Duration::from_millis(500));
        tx.handle_timeout(g1);
        assert_eq!(drain(|| tx.poll_output()).len(), 1);
        tx.handle_ack(g1);
        assert_eq!(tx.state(), ServerState::Confirmed);
        tx.handle_timeout(g1 + Duration::from_secs(5));
        assert_eq!(drain(|| tx.poll_output()), vec![TxOutput::Terminated]);
    }

    #[test]
    fn keys_match_ack_to_invite_and_fall_back_for_rfc2543() {
        let inv = req(Method::Invite);
        let mut ack = req(Method::Ack);
        ack.headers.set(H::CSeq, "1 ACK");
        assert_eq!(TxKey::server(&inv), TxKey::server(&ack));
        let mut old = req(Method::Invite);
        old.headers.set(H::Via, "SIP/2.0/UDP 192.0.2.2");
        assert!(matches!(TxKey::server(&old), Some(TxKey::Rfc2543 { .. })));
    }
}
