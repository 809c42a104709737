//! RTP packets, receive statistics and symmetric-RTP latching.
//!
//! - Packet format: RFC 3550 sec. 5.1, parsed and built with `rtp-rs`.
//! - Sequence number tracking and extended sequence numbers: RFC 3550 sec. A.1.
//! - Interarrival jitter: RFC 3550 sec. 6.4.1 and A.8.
//! - Loss for receiver reports (fraction lost, cumulative): RFC 3550 sec. 6.4.1, A.3.
//! - Latching ("symmetric RTP", RFC 4961 sec. 3; the de-facto comedia rule of
//!   RFC 4145 sec. 4 applied to RTP): the far end behind NAT or an SBC may send
//!   from another address than its SDP says; we answer to the source we
//!   actually see.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

use crate::MediaError;

/// A parsed RTP packet borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit (start of a talkspurt for audio, start of an event for RFC 4733).
    pub marker: bool,
    /// 16-bit sequence number.
    pub sequence: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload, without header, extension and padding.
    pub payload: &'a [u8],
}

/// Parses an RTP packet (RFC 3550 sec. 5.1). Never panics on any input.
pub fn parse_rtp(bytes: &[u8]) -> Result<RtpPacket<'_>, MediaError> {
    use rtp_rs::RtpReaderError as E;
    let r = RtpReader::new(bytes).map_err(|e| {
        MediaError::MalformedRtp(match e {
            E::BufferTooShort(_) => "shorter than the 12-byte header",
            E::UnsupportedVersion(_) => "version is not 2",
            E::HeadersTruncated { .. } => "header truncated",
            E::PaddingLengthInvalid(_) => "invalid padding length",
        })
    })?;
    // RTCP multiplexed on the RTP port (RFC 5761 sec. 4): PT 72-76 with marker are RTCP.
    let pt = r.payload_type();
    if (72..=76).contains(&pt) {
        return Err(MediaError::MalformedRtp("RTCP packet on the RTP port"));
    }
    Ok(RtpPacket {
        payload_type: pt,
        marker: r.mark(),
        sequence: u16::from(r.sequence_number()),
        timestamp: r.timestamp(),
        ssrc: r.ssrc(),
        payload: r.payload(),
    })
}

/// Writes an RTP packet into `out` (no allocation); returns its length.
pub fn build_rtp(
    out: &mut [u8],
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: &[u8],
) -> Result<usize, MediaError> {
    RtpPacketBuilder::new()
        .payload_type(pt)
        .marked(marker)
        .sequence(Seq::from(seq))
        .timestamp(ts)
        .ssrc(ssrc)
        .payload(payload)
        .build_into(out)
        .map_err(|_| MediaError::PayloadTooLarge(payload.len(), out.len().saturating_sub(12)))
}

const MAX_DROPOUT: u32 = 3000;
const MAX_MISORDER: u32 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What [`SourceStats::update`] decided about a packet's sequence number (RFC 3550 A.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// In sequence or a tolerable gap/misorder: use the packet; carries the extended sequence number.
    Accept(u64),
    /// A big jump, not yet confirmed by a following packet: drop it.
    Probation,
    /// The source restarted its sequence (two consecutive packets after a big jump):
    /// statistics were reset; carries the new extended sequence number.
    Restarted(u64),
}

/// Per-source receive statistics: RFC 3550 A.1 sequence tracking, A.3 loss, A.8 jitter.
#[derive(Debug, Clone)]
pub struct SourceStats {
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: Option<i64>,
    jitter: f64,
    clock_rate: u32,
    epoch: Instant,
}

impl SourceStats {
    /// Starts tracking a source with its first packet's sequence number.
    pub fn new(seq: u16, clock_rate: u32, epoch: Instant) -> Self {
        let mut s = SourceStats {
            max_seq: seq,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
            clock_rate: clock_rate.max(1),
            epoch,
        };
        s.init_seq(seq);
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// The extended highest sequence number received (cycles + max_seq).
    pub fn extended_max(&self) -> u64 {
        u64::from(self.cycles) + u64::from(self.max_seq)
    }

    fn ext_of(&self, seq: u16) -> u64 {
        // Place seq in the cycle closest to max_seq (handles reordering across a wrap).
        let max = self.extended_max() as i64;
        let delta = i64::from(seq.wrapping_sub(self.max_seq) as i16);
        (max + delta).max(0) as u64
    }

    /// Registers one packet (RFC 3550 A.1 `update_seq` plus A.8 jitter).
    pub fn update(&mut self, seq: u16, rtp_ts: u32, arrival: Instant) -> SeqVerdict {
        let udelta = u32::from(seq.wrapping_sub(self.max_seq));
        let verdict;
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
            verdict = SeqVerdict::Accept(self.extended_max());
        } else if udelta <= RTP_SEQ_MOD - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the source restarted.
                self.init_seq(seq);
                self.transit = None;
                verdict = SeqVerdict::Restarted(self.extended_max());
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqVerdict::Probation;
            }
        } else {
            // Duplicate or reordered packet.
            verdict = SeqVerdict::Accept(self.ext_of(seq));
        }
        self.received = self.received.wrapping_add(1);
        self.update_jitter(rtp_ts, arrival);
        verdict
    }

    fn update_jitter(&mut self, rtp_ts: u32, arrival: Instant) {
        // A.8: transit = arrival (in RTP units) - timestamp; J += (|D| - J) / 16.
        let arr = arrival.saturating_duration_since(self.epoch).as_nanos() as i128
            * i128::from(self.clock_rate)
            / 1_000_000_000;
        let transit = (arr as i64).wrapping_sub(i64::from(rtp_ts));
        if let Some(prev) = self.transit {
            // Timestamps wrap at 2^32: take the difference modulo 2^32 as signed.
            let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
            self.jitter += (f64::from(d) - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// Interarrival jitter in RTP timestamp units (RFC 3550 sec. 6.4.1).
    pub fn jitter_units(&self) -> u32 {
        self.jitter as u32
    }

    /// Interarrival jitter as a duration.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64(self.jitter / f64::from(self.clock_rate))
    }

    /// Packets expected so far (A.3).
    pub fn expected(&self) -> u64 {
        (self.extended_max() + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Packets received so far (duplicates included, as in A.3).
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Cumulative packets lost (A.3), clamped to the 24-bit signed field.
    pub fn cumulative_lost(&self) -> i32 {
        let lost = self.expected() as i64 - i64::from(self.received);
        lost.clamp(-0x80_0000, 0x7F_FFFF) as i32
    }

    /// Fraction lost since the previous call (A.3), in 1/256 units; advances the interval.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected() as u32;
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - i64::from(received_interval);
        if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        }
    }
}

/// Which far-end addresses a session takes media from (issue 14: a call's
/// media must not be taken over by whoever sends first or sends later).
///
/// Off (the default): RTP only from the address and port the SDP negotiated,
/// RTCP only from the negotiated RTCP address. On: symmetric RTP for a far
/// end behind NAT (RFC 4961 sec. 3; the comedia rule of RFC 4145 sec. 4
/// applied to RTP): the first packet from the negotiated IP, or from one of
/// the trunk's own networks ([`LatchPolicy::trunk_nets`], for a far end whose
/// SDP names its private address), latches its address, once; nothing else
/// is ever latched while the call is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatchPolicy {
    /// Latch once to the first source on the negotiated IP (any port), or
    /// in `trunk_nets`.
    pub nat: bool,
    /// The trunk's source networks (address, prefix length) a latch may
    /// also take; at most [`LatchPolicy::MAX_NETS`] (fixed size: the policy
    /// is copied into every session without allocating).
    pub trunk_nets: [Option<(IpAddr, u8)>; LatchPolicy::MAX_NETS],
}

impl LatchPolicy {
    /// Trunk networks a policy holds at most.
    pub const MAX_NETS: usize = 8;

    /// Whether `ip` lies in one of the trunk networks.
    pub fn in_trunk(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trunk_nets
            .iter()
            .flatten()
            .any(|&(net, prefix)| match (net.to_canonical(), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let m = u32::MAX
                        .checked_shl(32 - u32::from(prefix.min(32)))
                        .unwrap_or(0);
                    u32::from(n) & m == u32::from(a) & m
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let m = u128::MAX
                        .checked_shl(128 - u32::from(prefix.min(128)))
                        .unwrap_or(0);
                    u128::from(n) & m == u128::from(a) & m
                }
                _ => false,
            })
    }
}

/// What the latch decided about an incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// From the accepted source, same stream.
    Same,
    /// The first packet of the call (or after a re-INVITE): receive state
    /// (sequence, jitter buffer) must start.
    Latched,
    /// Same address, new SSRC (the far end restarted its stream, e.g. after a transfer):
    /// receive state must restart.
    NewSsrc,
    /// From an address the SDP did not negotiate: drop it.
    Foreign,
}

/// Whether two addresses are the same host and port (an IPv4-mapped IPv6
/// address is its IPv4 address).
fn same_addr(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

/// The one far-end address packets of one kind (RTP or RTCP) are taken from
/// and sent to: the negotiated address, or with [`LatchPolicy::nat`] the
/// first source on the negotiated IP, fixed from then on.
#[derive(Debug, Clone, Copy)]
pub struct AddressGate {
    negotiated: SocketAddr,
    latched: Option<SocketAddr>,
    nat: bool,
    policy: LatchPolicy,
}

impl AddressGate {
    /// Accepts `negotiated` (or, with `policy.nat`, the first port on its IP).
    pub fn new(negotiated: SocketAddr, policy: LatchPolicy) -> Self {
        AddressGate {
            negotiated,
            latched: None,
            nat: policy.nat,
            policy,
        }
    }

    /// Whether a packet from `from` would be taken (changes nothing).
    pub fn accepts(&self, from: SocketAddr) -> bool {
        match self.latched {
            Some(a) => same_addr(a, from),
            None => {
                same_addr(self.negotiated, from)
                    || (self.nat
                        && (from.ip().to_canonical() == self.negotiated.ip().to_canonical()
                            || self.policy.in_trunk(from.ip())))
            }
        }
    }

    /// Takes a packet from `from` if it is acceptable, latching the first one.
    pub fn admit(&mut self, from: SocketAddr) -> bool {
        let ok = self.accepts(from);
        if ok && self.latched.is_none() {
            self.latched = Some(from);
        }
        ok
    }

    /// Where to send: the latched source, else the negotiated address.
    pub fn send_to(&self) -> SocketAddr {
        self.latched.unwrap_or(self.negotiated)
    }

    /// A new negotiated address (re-INVITE): the latch starts over.
    pub fn reset(&mut self, negotiated: SocketAddr) {
        self.negotiated = negotiated;
        self.latched = None;
    }
}

/// Which RTP source is the caller's: an [`AddressGate`] plus the stream's SSRC.
///
/// Rules: (1) only the negotiated address (or with [`LatchPolicy::nat`] the
/// first port on the negotiated IP) is accepted, and RTP is sent there; (2)
/// the first valid packet fixes the source and its SSRC; (3) a new SSRC from
/// that address is accepted at once; (4) any other address is
/// [`LatchVerdict::Foreign`], however long the source has been silent; (5)
/// [`Latch::reset`] (re-INVITE with new SDP) starts over at the new address.
#[derive(Debug, Clone)]
pub struct Latch {
    gate: AddressGate,
    ssrc: Option<u32>,
}

impl Latch {
    /// Starts unlatched, sending to the address from the SDP.
    pub fn new(sdp_addr: SocketAddr, policy: LatchPolicy) -> Self {
        Latch {
            gate: AddressGate::new(sdp_addr, policy),
            ssrc: None,
        }
    }

    /// Forgets the latch and accepts and sends to a new SDP address (re-INVITE).
    pub fn reset(&mut self, sdp_addr: SocketAddr) {
        self.gate.reset(sdp_addr);
        self.ssrc = None;
    }

    /// Where outgoing RTP goes: the latched source, else the SDP address.
    pub fn send_to(&self) -> SocketAddr {
        self.gate.send_to()
    }

    /// Whether a packet from `from` would be accepted (changes nothing).
    pub fn accepts(&self, from: SocketAddr) -> bool {
        self.gate.accepts(from)
    }

    /// The latched source, if any.
    pub fn source(&self) -> Option<(SocketAddr, u32)> {
        self.ssrc.map(|s| (self.gate.send_to(), s))
    }

    /// Decides about a valid packet from `from` with `ssrc`.
    pub fn check(&mut self, from: SocketAddr, ssrc: u32) -> LatchVerdict {
        if !self.gate.admit(from) {
            return LatchVerdict::Foreign;
        }
        let verdict = match self.ssrc {
            None => LatchVerdict::Latched,
            Some(s) if s == ssrc => LatchVerdict::Same,
            Some(_) => LatchVerdict::NewSsrc,
        };
        self.ssrc = Some(ssrc);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn build_then_parse_round_trips_header_fields() {
        let mut buf = [0u8; 200];
        let n = build_rtp(&mut buf, 8, true, 65535, 0xDEADBEEF, 0x1234, &[1, 2, 3]).unwrap();
        let p = parse_rtp(&buf[..n]).unwrap();
        assert_eq!(
            (
                p.payload_type,
                p.marker,
                p.sequence,
                p.timestamp,
                p.ssrc,
                p.payload
            ),
            (8, true, 65535, 0xDEADBEEF, 0x1234, &[1u8, 2, 3][..])
        );
        assert!(parse_rtp(&buf[..5]).is_err());
        let mut v1 = buf;
        v1[0] = 0x40;
        assert!(parse_rtp(&v1[..n]).is_err());
    }

    #[test]
    fn extended_sequence_survives_wrap_and_reordering() {
        let t0 = Instant::now();
        let mut s = SourceStats::new(65534, 8000, t0);
        assert_eq!(s.update(65534, 0, t0), SeqVerdict::Accept(65534));
        assert_eq!(s.update(65535, 160, t0), SeqVerdict::Accept(65535));
        assert_eq!(s.update(1, 480, t0), SeqVerdict::Accept(65537));
        // 0 arrives late, after the wrap: placed before 1, not a new cycle.
        assert_eq!(s.update(0, 320, t0), SeqVerdict::Accept(65536));
        assert_eq!(s.cumulative_lost(), 0);
    }

    #[test]
    fn loss_fraction_and_cumulative_follow_rfc3550_a3() {
        let t0 = Instant::now();
        let mut s = SourceStats::new(100, 8000, t0);
        for seq in 100..200u16 {
            if seq % 10 != 3 {
                s.update(seq, u32::from(seq) * 160, t0);
            }
        }
        assert_eq!(s.expected(), 100);
        assert_eq!(s.cumulative_lost(), 10);
        // 10 of 100 lost -> 25/256.
        assert_eq!(s.take_fraction_lost(), 25);
        assert_eq!(s.take_fraction_lost(), 0);
    }

    #[test]
    fn restart_needs_two_sequential_packets_after_a_jump() {
        let t0 = Instant::now();
        let mut s = SourceStats::new(10, 8000, t0);
        s.update(10, 0, t0);
        assert_eq!(s.update(30000, 0, t0), SeqVerdict::Probation);
        assert_eq!(s.update(30001, 0, t0), SeqVerdict::Restarted(30001));
        assert_eq!(s.update(30002, 160, t0), SeqVerdict::Accept(30002));
    }

    #[test]
    fn jitter_is_zero_for_perfect_timing_and_tracks_variation() {
        let t0 = Instant::now();
        let mut s = SourceStats::new(0, 8000, t0);
        for i in 0..50u32 {
            s.update(
                i as u16,
                i * 160,
                t0 + Duration::from_millis(u64::from(i) * 20),
            );
        }
        assert_eq!(s.jitter_units(), 0);
        for i in 50..400u32 {
            let wobble = if i % 2 == 0 { 0 } else { 10 };
            s.update(
                i as u16,
                i * 160,
                t0 + Duration::from_millis(u64::from(i) * 20 + wobble),
            );
        }
        // Alternating 10 ms offsets: |D| = 80 units each packet, J converges to 80.
        assert!(
            (75..=80).contains(&s.jitter_units()),
            "{}",
            s.jitter_units()
        );
    }

    #[test]
    fn strict_latch_takes_only_the_negotiated_address_and_never_moves() {
        let mut l = Latch::new(addr(4000), LatchPolicy::default());
        assert_eq!(l.send_to(), addr(4000));
        assert_eq!(l.check(addr(5000), 1), LatchVerdict::Foreign);
        assert_eq!(l.check(addr(4000), 1), LatchVerdict::Latched);
        assert_eq!(l.check(addr(4000), 1), LatchVerdict::Same);
        assert_eq!(l.check(addr(6000), 9), LatchVerdict::Foreign);
        assert_eq!(l.check(addr(4000), 2), LatchVerdict::NewSsrc);
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
        assert_eq!(l.check(mapped, 2), LatchVerdict::Same);
        l.reset(addr(7000));
        assert_eq!(l.send_to(), addr(7000));
        assert_eq!(l.check(addr(4000), 2), LatchVerdict::Foreign);
        assert_eq!(l.check(addr(7000), 2), LatchVerdict::Latched);
    }

    #[test]
    fn nat_latch_takes_the_first_port_on_the_negotiated_ip_once() {
        let mut l = Latch::new(
            addr(4000),
            LatchPolicy {
                nat: true,
                ..Default::default()
            },
        );
        let other_host = SocketAddr::from(([127, 0, 0, 2], 4000));
        assert_eq!(l.check(other_host, 1), LatchVerdict::Foreign);
        assert_eq!(l.check(addr(5000), 1), LatchVerdict::Latched);
        assert_eq!(l.send_to(), addr(5000));
        assert_eq!(l.check(addr(4000), 1), LatchVerdict::Foreign);
        assert_eq!(l.check(addr(5002), 1), LatchVerdict::Foreign);
        assert_eq!(l.send_to(), addr(5000));
    }

    #[test]
    fn nat_latch_takes_a_source_in_the_trunks_networks_but_nobody_else_and_only_once() {
        // The SDP names a private address; the trunk's media comes from its
        // public network 198.51.100.0/28.
        let private = SocketAddr::from(([10, 1, 2, 3], 4000));
        let mut policy = LatchPolicy {
            nat: true,
            ..Default::default()
        };
        policy.trunk_nets[0] = Some(("198.51.100.0".parse().unwrap(), 28));
        let mut l = Latch::new(private, policy);
        let stranger = SocketAddr::from(([203, 0, 113, 9], 4000));
        assert_eq!(l.check(stranger, 1), LatchVerdict::Foreign);
        let trunk = SocketAddr::from(([198, 51, 100, 7], 31_000));
        assert_eq!(l.check(trunk, 1), LatchVerdict::Latched);
        assert_eq!(l.send_to(), trunk);
        // Another address of the trunk's own network cannot move it.
        let trunk2 = SocketAddr::from(([198, 51, 100, 8], 31_000));
        assert_eq!(l.check(trunk2, 1), LatchVerdict::Foreign);
        assert_eq!(l.send_to(), trunk);
    }
}
