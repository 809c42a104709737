//! Offer/answer (RFC 3264) for one audio stream with G.711 A-law/µ-law,
//! G.722 and RFC 4733 telephone-event.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::config::{CodecPreference, SdpConfig};
use super::crypto::{self, Crypto, LocalSrtp, SrtpParams, SrtpSuite};
use super::dtmf::EventSet;
use super::parse::{
    AddrType, Address, Attribute, Connection, Direction, Fmtp, Media, MediaKind, Origin, RtpMap,
    SessionDescription, Timing,
};
use super::SdpError;

/// An audio codec we can decode and encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 A-law (static payload type 8), the European default.
    Pcma,
    /// G.711 µ-law (static payload type 0).
    Pcmu,
    /// G.722 wideband (static payload type 9). Samples at 16 kHz but its RTP
    /// clock rate is 8000 (RFC 3551 sec. 4.5.2).
    G722,
}

impl Codec {
    /// All codecs, in the default preference order.
    pub const ALL: [Codec; 3] = [Codec::Pcma, Codec::Pcmu, Codec::G722];

    /// The `a=rtpmap` encoding name.
    #[must_use]
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcma => "PCMA",
            Codec::Pcmu => "PCMU",
            Codec::G722 => "G722",
        }
    }

    /// The static payload type of RFC 3551 table 4.
    #[must_use]
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcma => 8,
            Codec::Pcmu => 0,
            Codec::G722 => 9,
        }
    }

    /// The RTP timestamp clock rate: 8000 for all three (G.722's quirk).
    #[must_use]
    pub fn rtp_clock_rate(self) -> u32 {
        8000
    }

    /// The audio sample rate: 16000 for G.722, 8000 for G.711.
    #[must_use]
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::G722 => 16000,
            Codec::Pcma | Codec::Pcmu => 8000,
        }
    }

    /// Whether payload type `pt`, described by `rtpmap` (if any), is this
    /// codec. Without an rtpmap only the static number counts; with one, the
    /// name (any case) and clock rate must match. G.722 declared with the
    /// (wrong, but common) clock rate 16000 is accepted too.
    #[must_use]
    pub fn matches(self, pt: u8, rtpmap: Option<&RtpMap>) -> bool {
        match rtpmap {
            None => pt == self.static_payload_type(),
            Some(m) => {
                m.encoding.eq_ignore_ascii_case(self.encoding_name())
                    && (m.clock_rate == self.rtp_clock_rate()
                        || (self == Codec::G722 && m.clock_rate == 16000))
                    && m.params.as_deref().is_none_or(|p| p.trim() == "1")
            }
        }
    }

    fn parse_name(s: &str) -> Option<Self> {
        Codec::ALL
            .into_iter()
            .find(|c| s.eq_ignore_ascii_case(c.encoding_name()))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

impl Serialize for Codec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.encoding_name())
    }
}

impl<'de> Deserialize<'de> for Codec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Codec::parse_name(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown codec {s:?}; supported codecs are PCMA, PCMU, G722"
            ))
        })
    }
}

/// Our side of the media session: where we receive RTP and how we identify
/// the session in `o=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address we receive RTP on (put in `c=` and `o=`).
    pub address: IpAddr,
    /// Port we receive RTP on (even; RTCP on the next one).
    pub rtp_port: u16,
    /// What we want: `SendRecv` normally, `SendOnly` to put the peer on hold,
    /// `Inactive` to stop media both ways.
    pub direction: Direction,
    /// `o=` session id, chosen once per call (e.g. from the clock or a random
    /// number; the caller decides, this module reads neither).
    pub session_id: u64,
    /// `o=` session version of the first description; [`LocalSession`]
    /// increments it on change.
    pub session_version: u64,
    /// SRTP (SDES, RFC 4568): `None` for plain RTP only; else whether it
    /// is required, and our keys for this call.
    pub srtp: Option<LocalSrtp>,
}

impl LocalMedia {
    /// Receive on `address:rtp_port`, send and receive, session version 1.
    #[must_use]
    pub fn new(address: IpAddr, rtp_port: u16, session_id: u64) -> Self {
        LocalMedia {
            address,
            rtp_port,
            direction: Direction::SendRecv,
            session_id,
            session_version: 1,
            srtp: None,
        }
    }
}

/// The telephone-event (RFC 4733) stream agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Payload type we send events with (the peer's number).
    pub payload_type: u8,
    /// Payload type the peer sends events to us with (the number in our own
    /// description; equal to `payload_type` when we answered).
    pub recv_payload_type: u8,
    /// Its clock rate (equal to the audio codec's RTP clock rate).
    pub clock_rate: u32,
    /// Events both sides support (at most 0-16: DTMF digits and flash).
    pub events: EventSet,
}

/// What the media layer needs from a finished offer/answer exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the negotiated `m=` line in the descriptions.
    pub media_index: usize,
    /// Where to send RTP. Unspecified (`0.0.0.0`) when the peer is on
    /// RFC 2543-style hold; then [`Negotiated::direction`] does not send.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: `a=rtcp` (RFC 3605) or the RTP port + 1.
    pub remote_rtcp: SocketAddr,
    /// The codec.
    pub codec: Codec,
    /// Payload type we send with: the number in the peer's description
    /// (RFC 3264 sec. 5.1: each side receives with the numbers it listed).
    pub payload_type: u8,
    /// Payload type we receive with: the number in our description. Equal to
    /// `payload_type` when we answered (we keep the offerer's numbers); may
    /// differ when we offered and the answerer renumbered.
    pub recv_payload_type: u8,
    /// RTP clock rate of the codec as declared (8000 for G.722, see [`Codec`]).
    pub clock_rate: u32,
    /// DTMF events, if both sides do RFC 4733.
    pub telephone_event: Option<TelephoneEvent>,
    /// Packet length to send with, in ms: the peer's `a=ptime` (what it wants
    /// to receive) rounded down to a multiple of 10 in 10..=60 and capped by its
    /// `a=maxptime`; our configured ptime if it gave none.
    pub ptime_ms: u32,
    /// Direction from OUR point of view: whether we send and/or receive.
    pub direction: Direction,
    /// The peer has put us on hold (it does not want to receive: `sendonly`,
    /// `inactive` or `c=0.0.0.0`).
    pub remote_hold: bool,
    /// SRTP suite and keys, when the stream is encrypted.
    pub srtp: Option<SrtpParams>,
}

/// One codec picked from a media description.
struct Pick {
    codec: Codec,
    pt: u8,
    clock_rate: u32,
    rtpmap: RtpMap,
    te: Option<TelephoneEvent>,
}

/// The events we handle: DTMF 0-9, *, #, A-D (0-15) and flash (16).
fn our_events() -> EventSet {
    EventSet::range(0, 16)
}

/// Codecs of `m` we support, in `m`'s order: (payload type, codec, rtpmap).
/// `fallback` supplies rtpmaps the description omitted (an answer may leave
/// out the rtpmap of a dynamic type it copied from our offer).
fn supported<'a>(
    m: &'a Media,
    fallback: Option<&'a Media>,
    codecs: &'a [Codec],
) -> impl Iterator<Item = (u8, Codec, Option<&'a RtpMap>)> + 'a {
    m.payload_types().filter_map(move |pt| {
        let map = m.rtpmap(pt).or_else(|| fallback.and_then(|f| f.rtpmap(pt)));
        codecs
            .iter()
            .find(|c| c.matches(pt, map))
            .map(|c| (pt, *c, map))
    })
}

fn telephone_event_in(
    m: &Media,
    fallback: Option<&Media>,
    clock_rate: u32,
) -> Option<TelephoneEvent> {
    m.payload_types().find_map(|pt| {
        let map = m
            .rtpmap(pt)
            .or_else(|| fallback.and_then(|f| f.rtpmap(pt)))?;
        if !map.encoding.eq_ignore_ascii_case("telephone-event") || map.clock_rate != clock_rate {
            return None;
        }
        let theirs = m
            .fmtp(pt)
            .or_else(|| fallback.and_then(|f| f.fmtp(pt)))
            .and_then(|f| EventSet::parse(&f.params))
            .unwrap_or_else(EventSet::default_dtmf);
        let events = theirs.intersect(&our_events());
        (!events.is_empty()).then_some(TelephoneEvent {
            payload_type: pt,
            recv_payload_type: pt,
            clock_rate,
            events,
        })
    })
}

fn pick(m: &Media, cfg: &SdpConfig, keep: Option<Codec>) -> Result<Pick, SdpError> {
    let offered: Vec<(u8, Codec, Option<&RtpMap>)> = supported(m, None, &cfg.codecs).collect();
    let chosen = keep
        .and_then(|k| offered.iter().find(|(_, c, _)| *c == k))
        .or_else(|| match cfg.preference {
            CodecPreference::Theirs => offered.first(),
            CodecPreference::Ours => cfg
                .codecs
                .iter()
                .find_map(|want| offered.iter().find(|(_, c, _)| c == want)),
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let (pt, codec, map) = *chosen;
    let rtpmap = map.cloned().unwrap_or_else(|| RtpMap {
        payload_type: pt,
        encoding: codec.encoding_name().to_owned(),
        clock_rate: codec.rtp_clock_rate(),
        params: None,
    });
    let clock_rate = rtpmap.clock_rate;
    let te = if cfg.telephone_event {
        telephone_event_in(m, None, clock_rate)
    } else {
        None
    };
    Ok(Pick {
        codec,
        pt,
        clock_rate,
        rtpmap,
        te,
    })
}

/// The packet length to send with: see [`Negotiated::ptime_ms`].
fn send_ptime(sd: &SessionDescription, m: &Media, ours: u32) -> u32 {
    let session_ptime = sd.attributes.iter().find_map(|a| match a {
        Attribute::Ptime(p) => Some(*p),
        _ => None,
    });
    let mut p = m.ptime().or(session_ptime).unwrap_or(ours);
    if let Some(max) = m.maxptime() {
        p = p.min(max);
    }
    (p / 10 * 10).clamp(10, 60)
}

/// Remote address and hold state of a media description.
fn remote_addrs(sd: &SessionDescription, m: &Media) -> Result<(SocketAddr, SocketAddr), SdpError> {
    let conn = sd.media_connection(m).ok_or(SdpError::MissingConnection)?;
    let ip = conn.address.ip().ok_or(SdpError::UnresolvedHost)?;
    let rtp = SocketAddr::new(ip, m.port);
    let rtcp = match m.rtcp() {
        Some(r) => {
            let rip = match &r.address {
                Some((_, Address::Ip(a))) => *a,
                Some((_, Address::Host(_))) => return Err(SdpError::UnresolvedHost),
                None => ip,
            };
            SocketAddr::new(rip, r.port)
        }
        None => SocketAddr::new(ip, m.port.saturating_add(1)),
    };
    Ok((rtp, rtcp))
}

/// The direction a description asks for, with `c=0.0.0.0` read as "does not
/// receive" (RFC 3264 sec. 8.4).
fn effective_direction(sd: &SessionDescription, m: &Media) -> Direction {
    let d = sd.media_direction(m);
    if sd
        .media_connection(m)
        .is_some_and(Connection::is_unspecified)
    {
        Direction::from_flags(d.sends(), false)
    } else {
        d
    }
}

fn skeleton(local: &LocalMedia) -> SessionDescription {
    SessionDescription {
        origin: Origin {
            username: "-".to_owned(),
            session_id: local.session_id.to_string(),
            session_version: local.session_version,
            addr_type: AddrType::of(local.address),
            address: Address::Ip(local.address),
        },
        session_name: "-".to_owned(),
        info: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection::unicast(local.address)),
        bandwidths: Vec::new(),
        timings: vec![Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }],
        time_zones: None,
        key: None,
        attributes: Vec::new(),
        other_lines: Vec::new(),
        media: Vec::new(),
    }
}

fn telephone_event_attrs(m: &mut Media, te: &TelephoneEvent) {
    m.formats.push(te.payload_type.to_string());
    m.attributes.push(Attribute::RtpMap(RtpMap {
        payload_type: te.payload_type,
        encoding: "telephone-event".to_owned(),
        clock_rate: te.clock_rate,
        params: None,
    }));
    m.attributes.push(Attribute::Fmtp(Fmtp {
        format: te.payload_type.to_string(),
        params: te.events.to_string(),
    }));
}

/// Answer a remote offer (RFC 3264 sec. 6).
///
/// The first acceptable `m=audio` (plain RTP profile, non-zero port, a codec
/// in common) is accepted with one codec: the first of `cfg.codecs` it offers
/// (or its first one we support, with [`CodecPreference::Theirs`]), under the
/// offer's payload type number, plus `telephone-event` if offered at the same
/// clock rate. Every other `m=` line is rejected with port 0. The answer's
/// direction is the offer's reversed, limited by `local.direction`.
///
/// # Errors
/// [`SdpError::NoCommonCodec`] / [`SdpError::NoAudio`] (send 488),
/// [`SdpError::MissingConnection`], [`SdpError::UnresolvedHost`].
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
    cfg: &SdpConfig,
) -> Result<(SessionDescription, Negotiated), SdpError> {
    answer_inner(offer, local, cfg, None)
}

/// Answer a re-offer in an existing session (RFC 3264 sec. 8): as [`answer`],
/// but keep the codec in use if the new offer still lists it, so a re-INVITE
/// (hold, resume, session refresh) does not switch codecs mid-call.
///
/// # Errors
/// As [`answer`].
pub fn answer_reoffer(
    offer: &SessionDescription,
    local: &LocalMedia,
    cfg: &SdpConfig,
    current: &Negotiated,
) -> Result<(SessionDescription, Negotiated), SdpError> {
    answer_inner(offer, local, cfg, Some(current.codec))
}

fn answer_inner(
    offer: &SessionDescription,
    local: &LocalMedia,
    cfg: &SdpConfig,
    keep: Option<Codec>,
) -> Result<(SessionDescription, Negotiated), SdpError> {
    let mut chosen: Option<(usize, Pick, Option<Crypto>)> = None;
    let mut saw_audio = false;
    let mut refused_for_srtp = None;
    for (i, m) in offer.media.iter().enumerate() {
        let secure = m.is_secure_rtp();
        if m.kind != MediaKind::Audio || m.port == 0 || !(m.is_plain_rtp() || secure) {
            continue;
        }
        let srtp = match srtp_choice(m, secure, local.srtp.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                refused_for_srtp.get_or_insert(e);
                continue;
            }
        };
        saw_audio = true;
        if let Ok(p) = pick(m, cfg, keep) {
            chosen = Some((i, p, srtp));
            break;
        }
    }
    let Some((index, p, theirs_crypto)) = chosen else {
        return Err(match (saw_audio, refused_for_srtp) {
            (true, _) => SdpError::NoCommonCodec,
            (false, Some(e)) => e,
            (false, None) => SdpError::NoAudio,
        });
    };
    let om = &offer.media[index];
    let (remote_rtp, remote_rtcp) = remote_addrs(offer, om)?;
    let theirs = effective_direction(offer, om);
    let direction = theirs.reversed().intersect(local.direction);

    let mut sd = skeleton(local);
    for (i, m) in offer.media.iter().enumerate() {
        if i != index {
            // Rejected: port 0, formats copied (RFC 3264 sec. 6).
            let mut r = Media::new(m.kind.clone(), 0, &m.proto, m.formats.clone());
            if r.formats.is_empty() {
                r.formats.push("0".to_owned());
            }
            sd.media.push(r);
            continue;
        }
        let mut a = Media::new(
            MediaKind::Audio,
            local.rtp_port,
            &m.proto,
            vec![p.pt.to_string()],
        );
        a.attributes.push(Attribute::RtpMap(p.rtpmap.clone()));
        if let Some(te) = &p.te {
            telephone_event_attrs(&mut a, te);
        }
        a.attributes.push(Attribute::Ptime(cfg.ptime_ms));
        a.attributes.push(Attribute::Direction(direction));
        if let (Some(c), Some(l)) = (&theirs_crypto, &local.srtp) {
            let ours = Crypto {
                tag: c.tag,
                suite: c.suite,
                key: l.keys.key_for(c.suite),
            };
            a.attributes.push(ours.attribute());
        }
        sd.media.push(a);
    }
    let srtp = match (theirs_crypto, &local.srtp) {
        (Some(c), Some(l)) => Some(SrtpParams {
            suite: c.suite,
            local: l.keys.key_for(c.suite),
            remote: c.key,
        }),
        _ => None,
    };
    let neg = Negotiated {
        media_index: index,
        remote_rtp,
        remote_rtcp,
        codec: p.codec,
        payload_type: p.pt,
        recv_payload_type: p.pt,
        clock_rate: p.clock_rate,
        telephone_event: p.te,
        ptime_ms: send_ptime(offer, om, cfg.ptime_ms),
        direction,
        remote_hold: !theirs.receives(),
        srtp,
    };
    Ok((sd, neg))
}

/// Build our offer (RFC 3264 sec. 5): one `m=audio` with every configured
/// codec in preference order under its static payload type, plus
/// `telephone-event` with events 0-16 if enabled.
///
/// Used for the 200 OK to an INVITE without SDP (the answer comes in the ACK)
/// and for outbound callback calls; read the answer with [`accept_answer`].
#[must_use]
pub fn offer(local: &LocalMedia, cfg: &SdpConfig) -> SessionDescription {
    let mut sd = skeleton(local);
    let required = local.srtp.as_ref().filter(|l| l.required);
    let proto = if required.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let mut m = Media::new(MediaKind::Audio, local.rtp_port, proto, Vec::new());
    for c in &cfg.codecs {
        m.formats.push(c.static_payload_type().to_string());
        m.attributes.push(Attribute::RtpMap(RtpMap {
            payload_type: c.static_payload_type(),
            encoding: c.encoding_name().to_owned(),
            clock_rate: c.rtp_clock_rate(),
            params: None,
        }));
    }
    if cfg.telephone_event {
        telephone_event_attrs(
            &mut m,
            &TelephoneEvent {
                payload_type: cfg.telephone_event_payload_type,
                recv_payload_type: cfg.telephone_event_payload_type,
                clock_rate: 8000,
                events: our_events(),
            },
        );
    }
    m.attributes.push(Attribute::Ptime(cfg.ptime_ms));
    m.attributes.push(Attribute::Direction(local.direction));
    if let Some(l) = required {
        for (tag, suite) in (1..).zip(SrtpSuite::ALL) {
            let c = Crypto {
                tag,
                suite,
                key: l.keys.key_for(suite),
            };
            m.attributes.push(c.attribute());
        }
    }
    sd.media.push(m);
    sd
}

/// Which of the offer's `a=crypto` lines we take for `m` (RFC 4568 sec.
/// 7.1.1: the first we support), or why `m` cannot be accepted.
fn srtp_choice(
    m: &Media,
    secure: bool,
    local: Option<&LocalSrtp>,
) -> Result<Option<Crypto>, SdpError> {
    let Some(local) = local else {
        // SRTP off: plain RTP/AVP only (an `a=crypto` on it is ignored).
        return if secure {
            Err(SdpError::NoCommonCrypto)
        } else {
            Ok(None)
        };
    };
    match crypto::cryptos(m).next() {
        Some(c) => Ok(Some(c)),
        None if secure || local.required => Err(if secure {
            SdpError::NoCommonCrypto
        } else {
            SdpError::SrtpRequired
        }),
        None => Ok(None),
    }
}

/// Read the answer to our offer (RFC 3264 sec. 7).
///
/// The answer must have as many `m=` lines as the offer; our audio stream must
/// be accepted (non-zero port) with a codec we offered. The first such codec in
/// the answer is used, under the answer's payload type number.
///
/// # Errors
/// [`SdpError::MediaCountMismatch`], [`SdpError::AnswerRejected`],
/// [`SdpError::NoCommonCodec`], [`SdpError::MissingConnection`],
/// [`SdpError::UnresolvedHost`].
pub fn accept_answer(
    our_offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, SdpError> {
    if our_offer.media.len() != answer.media.len() {
        return Err(SdpError::MediaCountMismatch {
            offer: our_offer.media.len(),
            answer: answer.media.len(),
        });
    }
    let index = our_offer
        .media
        .iter()
        .position(|m| {
            m.kind == MediaKind::Audio && m.port != 0 && (m.is_plain_rtp() || m.is_secure_rtp())
        })
        .ok_or(SdpError::NoAudio)?;
    let (om, am) = (&our_offer.media[index], &answer.media[index]);
    if am.port == 0 {
        return Err(SdpError::AnswerRejected);
    }
    // SRTP: the answer picks one of our lines by tag and suite and gives its key.
    let srtp = if om.is_secure_rtp() {
        let ours: Vec<Crypto> = crypto::cryptos(om).collect();
        let (mine, theirs) = crypto::cryptos(am)
            .find_map(|a| {
                ours.iter()
                    .find(|o| o.tag == a.tag && o.suite == a.suite)
                    .map(|o| (o.key.clone(), a))
            })
            .ok_or(SdpError::NoCommonCrypto)?;
        Some(SrtpParams {
            suite: theirs.suite,
            local: mine,
            remote: theirs.key,
        })
    } else {
        None
    };
    // Codecs we offered, in our offer's order.
    let ours: Vec<Codec> = supported(om, None, &Codec::ALL)
        .map(|(_, c, _)| c)
        .collect();
    let (pt, codec, map) = supported(am, Some(om), &ours)
        .next()
        .ok_or(SdpError::NoCommonCodec)?;
    let clock_rate = map.map_or(codec.rtp_clock_rate(), |m| m.clock_rate);
    let offered_te = om.payload_types().any(|p| {
        om.rtpmap(p)
            .is_some_and(|m| m.encoding.eq_ignore_ascii_case("telephone-event"))
    });
    let telephone_event = if offered_te {
        telephone_event_in(am, Some(om), clock_rate).map(|mut te| {
            if let Some(ours) = telephone_event_in(om, None, clock_rate) {
                te.recv_payload_type = ours.payload_type;
            }
            te
        })
    } else {
        None
    };
    let recv_payload_type = supported(om, None, &[codec])
        .next()
        .map_or(pt, |(p, _, _)| p);
    let (remote_rtp, remote_rtcp) = remote_addrs(answer, am)?;
    let theirs = effective_direction(answer, am);
    let direction = our_offer.media_direction(om).intersect(theirs.reversed());
    let our_ptime = om.ptime().unwrap_or(20);
    Ok(Negotiated {
        media_index: index,
        remote_rtp,
        remote_rtcp,
        codec,
        payload_type: pt,
        recv_payload_type,
        clock_rate,
        telephone_event,
        ptime_ms: send_ptime(answer, am, our_ptime),
        direction,
        remote_hold: !theirs.receives(),
        srtp,
    })
}

/// Our side's `o=` line across a dialog (RFC 3264 sec. 8): the session id
/// stays, the version increases by one each time what we send changes, and
/// stays when we send the same description again.
#[derive(Debug, Clone, Default)]
pub struct LocalSession {
    last: Option<SessionDescription>,
}

impl LocalSession {
    /// No description sent yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Fix up `sd`'s `o=` line against the last description we sent and
    /// remember it as sent. The first description is kept as it is.
    #[must_use]
    pub fn stamp(&mut self, mut sd: SessionDescription) -> SessionDescription {
        if let Some(prev) = &self.last {
            sd.origin.username.clone_from(&prev.origin.username);
            sd.origin.session_id.clone_from(&prev.origin.session_id);
            sd.origin.session_version = if prev.differs_from(&sd) {
                prev.origin.session_version.wrapping_add(1)
            } else {
                prev.origin.session_version
            };
        }
        self.last = Some(sd.clone());
        sd
    }

    /// The last description stamped, if any.
    #[must_use]
    pub fn last(&self) -> Option<&SessionDescription> {
        self.last.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalMedia {
        LocalMedia::new("192.0.2.10".parse().unwrap(), 30000, 42)
    }

    fn sdp(media: &str) -> SessionDescription {
        SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n{media}"
        ))
        .unwrap()
    }

    #[test]
    fn our_order_picks_pcma_over_their_first_pcmu() {
        let o = sdp("m=audio 5000 RTP/AVP 0 8\r\n");
        let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
        assert_eq!(a.media[0].formats, vec!["8"]);
        assert_eq!(n.remote_rtp, "198.51.100.1:5000".parse().unwrap());
        assert_eq!(n.remote_rtcp, "198.51.100.1:5001".parse().unwrap());
    }

    #[test]
    fn their_order_when_configured() {
        let o = sdp("m=audio 5000 RTP/AVP 0 8\r\n");
        let cfg = SdpConfig {
            preference: CodecPreference::Theirs,
            ..SdpConfig::default()
        };
        let (_, n) = answer(&o, &local(), &cfg).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
    }

    #[test]
    fn reoffer_keeps_current_codec() {
        let o = sdp("m=audio 5000 RTP/AVP 0 8\r\n");
        let (_, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
        let current = Negotiated {
            codec: Codec::Pcmu,
            ..n
        };
        let (_, n2) = answer_reoffer(&o, &local(), &SdpConfig::default(), &current).unwrap();
        assert_eq!(n2.codec, Codec::Pcmu);
    }

    fn srtp_local(required: bool) -> LocalMedia {
        let mut l = local();
        l.srtp = Some(LocalSrtp {
            required,
            keys: crypto::SrtpKeyMaterial::new([9; crypto::SrtpKeyMaterial::LEN]),
        });
        l
    }

    const KEY: &str = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    #[test]
    fn savp_offer_is_answered_with_our_key_under_their_tag_and_suite() {
        let o = sdp(&format!(
            "m=audio 5000 RTP/SAVP 8\r\na=crypto:1 F8_128_HMAC_SHA1_80 {KEY}\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 {KEY}\r\n"
        ));
        let (a, n) = answer(&o, &srtp_local(true), &SdpConfig::default()).unwrap();
        let srtp = n.srtp.expect("SRTP negotiated");
        assert_eq!(srtp.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(srtp.remote.key()[0], b'=');
        assert_eq!(srtp.local.key(), &[9; 16]);
        let text = a.to_string();
        assert!(text.contains("m=audio 30000 RTP/SAVP 8"), "{text}");
        let line = text.lines().find(|l| l.starts_with("a=crypto:")).unwrap();
        assert!(
            line.starts_with("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{line}"
        );
        assert!(!line.contains(&KEY[7..]), "our key, not theirs: {line}");
    }

    #[test]
    fn plain_offer_is_refused_with_488_when_srtp_is_required() {
        let o = sdp("m=audio 5000 RTP/AVP 8\r\n");
        let e = answer(&o, &srtp_local(true), &SdpConfig::default()).unwrap_err();
        assert_eq!((e.clone(), e.sip_status()), (SdpError::SrtpRequired, 488));
        // Optional: plain RTP is fine.
        let (_, n) = answer(&o, &srtp_local(false), &SdpConfig::default()).unwrap();
        assert_eq!(n.srtp, None);
    }

    #[test]
    fn savp_offer_is_refused_when_srtp_is_off_or_no_suite_matches() {
        let o = sdp(&format!(
            "m=audio 5000 RTP/SAVP 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 {KEY}\r\n"
        ));
        let e = answer(&o, &local(), &SdpConfig::default()).unwrap_err();
        assert_eq!((e.clone(), e.sip_status()), (SdpError::NoCommonCrypto, 488));
        let o = sdp(&format!(
            "m=audio 5000 RTP/SAVP 8\r\na=crypto:1 F8_128_HMAC_SHA1_80 {KEY}\r\n"
        ));
        let e = answer(&o, &srtp_local(false), &SdpConfig::default()).unwrap_err();
        assert_eq!(e, SdpError::NoCommonCrypto);
    }

    #[test]
    fn best_effort_crypto_on_avp_is_taken_when_srtp_is_allowed_and_ignored_when_off() {
        let o = sdp(&format!(
            "m=audio 5000 RTP/AVP 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 {KEY}\r\n"
        ));
        let (a, n) = answer(&o, &srtp_local(false), &SdpConfig::default()).unwrap();
        assert!(n.srtp.is_some());
        assert!(a.to_string().contains("RTP/AVP 8"));
        let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
        assert_eq!(n.srtp, None);
        assert!(!a.to_string().contains("a=crypto"));
    }

    #[test]
    fn our_required_offer_is_savp_and_the_answer_gives_both_keys() {
        let l = srtp_local(true);
        let our = offer(&l, &SdpConfig::default());
        let text = our.to_string();
        assert!(text.contains("RTP/SAVP"), "{text}");
        assert_eq!(text.matches("a=crypto:").count(), 3, "{text}");
        let ans = sdp(&format!(
            "m=audio 5000 RTP/SAVP 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 {KEY}\r\n"
        ));
        let n = accept_answer(&our, &ans).unwrap();
        let srtp = n.srtp.unwrap();
        assert_eq!(srtp.local.key(), &[9; 16]);
        assert_eq!(srtp.remote.key()[0], b'=');
        let bad = sdp("m=audio 5000 RTP/SAVP 8\r\n");
        assert_eq!(accept_answer(&our, &bad), Err(SdpError::NoCommonCrypto));
        // Optional: our offers stay plain.
        assert!(!offer(&srtp_local(false), &SdpConfig::default())
            .to_string()
            .contains("SAVP"));
    }

    #[test]
    fn stamp_bumps_version_only_on_change() {
        let mut s = LocalSession::new();
        let first = s.stamp(offer(&local(), &SdpConfig::default()));
        assert_eq!(first.origin.session_version, 1);
        let same = s.stamp(offer(&local(), &SdpConfig::default()));
        assert_eq!(same.origin.session_version, 1);
        let mut hold = local();
        hold.direction = Direction::SendOnly;
        hold.session_id = 999; // ignored: the id is fixed for the session
        let changed = s.stamp(offer(&hold, &SdpConfig::default()));
        assert_eq!(changed.origin.session_version, 2);
        assert_eq!(changed.origin.session_id, "42");
    }
}
