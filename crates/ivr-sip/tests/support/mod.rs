//! Simulated time and a seeded lossy network for endpoint scenarios.
//!
//! Nodes are either [`Endpoint`]s or scripted peers (the test reads what
//! arrives at a scripted address and writes replies by hand). Nothing
//! sleeps: time jumps to the next delivery or timer.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test
#![allow(dead_code, unreachable_pub)] // reason: test support module; scenario files use different subsets

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_sip::msg::Message;
use ivr_sip::{Endpoint, EndpointConfig, Event};

/// One datagram on the simulated wire.
#[derive(Debug, Clone)]
pub struct Packet {
    pub at: Instant,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

impl Packet {
    pub fn first_line(&self) -> String {
        String::from_utf8_lossy(&self.bytes)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }
    pub fn msg(&self) -> Message {
        Message::parse_datagram(&self.bytes).unwrap()
    }
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub eps: BTreeMap<SocketAddr, Endpoint>,
    /// Every packet sent, in order (including dropped ones).
    pub wire: Vec<Packet>,
    /// Packets delivered to scripted (non-endpoint) addresses, not yet read.
    pub scripted_inbox: Vec<Packet>,
    pub events: Vec<(Duration, SocketAddr, Event)>,
    in_flight: Vec<Packet>,
    pub latency: Duration,
    pub loss: f64,
    rng: u64,
    /// Return true to drop a packet (deterministic faults).
    pub drop_if: Box<dyn FnMut(&Packet) -> bool>,
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn config(a: SocketAddr, seed: u64) -> EndpointConfig {
    let mut c = EndpointConfig::new(a);
    c.ids = ivr_sip::ids::IdSource::Seeded(seed);
    c
}

impl Sim {
    pub fn new(seed: u64) -> Sim {
        let t0 = Instant::now();
        Sim {
            t0,
            now: t0,
            eps: BTreeMap::new(),
            wire: Vec::new(),
            scripted_inbox: Vec::new(),
            events: Vec::new(),
            in_flight: Vec::new(),
            latency: Duration::from_millis(20),
            loss: 0.0,
            rng: seed | 1,
            drop_if: Box::new(|_| false),
        }
    }

    pub fn add(&mut self, cfg: EndpointConfig) -> SocketAddr {
        let a = cfg.advertised;
        self.eps.insert(a, Endpoint::new(cfg));
        a
    }

    pub fn ep(&mut self, a: SocketAddr) -> &mut Endpoint {
        self.eps.get_mut(&a).unwrap()
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn rand(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends a datagram from a scripted address.
    pub fn inject(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        let p = Packet {
            at: self.now,
            from,
            to,
            bytes,
        };
        self.wire.push(p.clone());
        self.in_flight.push(Packet {
            at: self.now + self.latency,
            ..p
        });
    }

    fn collect(&mut self) {
        let addrs: Vec<SocketAddr> = self.eps.keys().copied().collect();
        for a in addrs {
            loop {
                let ep = self.eps.get_mut(&a).unwrap();
                let Some(t) = ep.poll_transmit() else { break };
                let p = Packet {
                    at: self.now,
                    from: a,
                    to: t.dest,
                    bytes: t.bytes,
                };
                self.wire.push(p.clone());
                let dropped = (self.drop_if)(&p) || (self.loss > 0.0 && self.rand() < self.loss);
                if !dropped {
                    self.in_flight.push(Packet {
                        at: self.now + self.latency,
                        ..p
                    });
                }
            }
            loop {
                let ep = self.eps.get_mut(&a).unwrap();
                let Some(e) = ep.poll_event() else { break };
                let el = self.now - self.t0;
                self.events.push((el, a, e));
            }
        }
    }

    /// Advances to the next delivery or timer (not beyond `limit`); false if idle.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.collect();
        let next_pkt = self.in_flight.iter().map(|p| p.at).min();
        let next_timer = self.eps.values().filter_map(|e| e.poll_timeout()).min();
        let Some(next) = [next_pkt, next_timer].into_iter().flatten().min() else {
            return false;
        };
        if next > limit {
            self.now = limit;
            return false;
        }
        self.now = self.now.max(next);
        let now = self.now;
        let (due, rest): (Vec<Packet>, Vec<Packet>) =
            self.in_flight.drain(..).partition(|p| p.at <= now);
        self.in_flight = rest;
        for p in due {
            if let Some(ep) = self.eps.get_mut(&p.to) {
                ep.handle_datagram(p.from, &p.bytes, now);
            } else {
                self.scripted_inbox.push(p);
            }
        }
        for ep in self.eps.values_mut() {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
        }
        self.collect();
        true
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        while self.step(limit) {}
        self.now = self.now.max(limit);
    }

    /// Runs until `pred` holds (checked after each step) or `d` passes.
    pub fn run_until(&mut self, d: Duration, mut pred: impl FnMut(&Sim) -> bool) -> bool {
        let limit = self.now + d;
        loop {
            if pred(self) {
                return true;
            }
            if !self.step(limit) {
                return pred(self);
            }
        }
    }

    /// Takes the events seen so far.
    pub fn take_events(&mut self) -> Vec<(Duration, SocketAddr, Event)> {
        self.collect();
        std::mem::take(&mut self.events)
    }

    /// Packets on the wire whose first line starts with `prefix`, sent from `from`.
    pub fn sent(&self, from: SocketAddr, prefix: &str) -> Vec<&Packet> {
        self.wire
            .iter()
            .filter(|p| p.from == from && p.first_line().starts_with(prefix))
            .collect()
    }
}

/// A minimal SDP body (the SDP module is not part of these scenarios).
pub fn sdp(port: u16, dir: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na={dir}\r\n"
    )
    .into_bytes()
}
