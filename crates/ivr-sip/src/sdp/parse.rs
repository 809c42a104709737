//! The SDP data model, parser and printer (RFC 8866 sec. 5 and 6).

use std::fmt;
use std::net::IpAddr;

use super::SdpError;

/// Largest SDP body we parse, in bytes. A voice offer is well under 2 KiB;
/// baresip with every codec enabled stays under 4 KiB.
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// A parsed SDP session description (RFC 8866 sec. 5).
///
/// Fields we do not interpret (`i=`, `u=`, `e=`, `p=`, `z=`, `k=`, `r=`,
/// unknown line types, unknown attributes) are kept so printing gives them
/// back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`: originator and session identifier (sec. 5.2).
    pub origin: Origin,
    /// `s=`: session name (sec. 5.3); `"-"` when the peer sent none.
    pub session_name: String,
    /// `i=`: session information (sec. 5.4).
    pub info: Option<String>,
    /// `u=`: URI (sec. 5.5).
    pub uri: Option<String>,
    /// `e=` lines (sec. 5.6).
    pub emails: Vec<String>,
    /// `p=` lines (sec. 5.6).
    pub phones: Vec<String>,
    /// Session-level `c=` (sec. 5.7), the default for media without their own.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines (sec. 5.8).
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines (sec. 5.9, 5.10). Usually one `t=0 0`;
    /// parsing supplies that when the peer sent none.
    pub timings: Vec<Timing>,
    /// `z=` (sec. 5.11), raw.
    pub time_zones: Option<String>,
    /// `k=` (obsolete, sec. 5.12), raw.
    pub key: Option<String>,
    /// Session-level attributes (sec. 5.13), in order.
    pub attributes: Vec<Attribute>,
    /// Session-level lines of unknown type, or duplicates of single lines,
    /// kept raw as (type, value) and printed after the attributes.
    pub other_lines: Vec<(char, String)>,
    /// The media descriptions (`m=` sections, sec. 5.14), in order.
    pub media: Vec<Media>,
}

/// The `o=` line (RFC 8866 sec. 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name, `-` if none.
    pub username: String,
    /// Session id. Numeric by the RFC; kept as text because some peers send
    /// numbers wider than 64 bits.
    pub session_id: String,
    /// Session version; it increases when the description changes (RFC 3264 sec. 8).
    pub session_version: u64,
    /// Address type of [`Origin::address`].
    pub addr_type: AddrType,
    /// Unicast address of the originating machine (only identifies the session).
    pub address: Address,
}

/// Network address type (`IP4`/`IP6`, RFC 8866 sec. 5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    /// `IP4`
    Ip4,
    /// `IP6`
    Ip6,
}

impl AddrType {
    /// The address type of an IP address.
    #[must_use]
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("IP4") {
            Some(AddrType::Ip4)
        } else if s.eq_ignore_ascii_case("IP6") {
            Some(AddrType::Ip6)
        } else {
            None
        }
    }
}

impl fmt::Display for AddrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        })
    }
}

/// An address in `o=`, `c=` or `a=rtcp`: an IP literal or a host name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A fully qualified domain name (allowed by RFC 8866, rare in practice).
    Host(String),
}

impl Address {
    fn parse(s: &str) -> Self {
        // Tolerate IPv6 literals in brackets, which some peers write.
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Address::Ip(ip),
            Err(_) => Address::Host(s.to_owned()),
        }
    }

    /// The IP address, if this is an IP literal.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ip(ip) => Some(*ip),
            Address::Host(_) => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => write!(f, "{ip}"),
            Address::Host(h) => f.write_str(h),
        }
    }
}

/// A `c=` line (RFC 8866 sec. 5.7). The network type is always `IN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6`.
    pub addr_type: AddrType,
    /// The connection address.
    pub address: Address,
    /// IPv4 multicast TTL (`/ttl`).
    pub ttl: Option<u8>,
    /// Number of multicast addresses (`/n`).
    pub count: Option<u32>,
}

impl Connection {
    /// A plain unicast connection line for `ip`.
    #[must_use]
    pub fn unicast(ip: IpAddr) -> Self {
        Connection {
            addr_type: AddrType::of(ip),
            address: Address::Ip(ip),
            ttl: None,
            count: None,
        }
    }

    /// True for `c=IN IP4 0.0.0.0` (or `::`), the RFC 2543 way to put a call on
    /// hold (RFC 3264 sec. 8.4).
    #[must_use]
    pub fn is_unspecified(&self) -> bool {
        matches!(self.address, Address::Ip(ip) if ip.is_unspecified())
    }

    fn parse(v: &str, line: usize) -> Result<Self, SdpError> {
        let bad = SdpError::BadConnection { line };
        let mut it = v.split_ascii_whitespace();
        let (Some(net), Some(at), Some(addr), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad);
        };
        if !net.eq_ignore_ascii_case("IN") {
            return Err(bad);
        }
        let addr_type = AddrType::parse(at).ok_or(bad.clone())?;
        let (host, suffix) = match addr.split_once('/') {
            Some((h, s)) => (h, Some(s)),
            None => (addr, None),
        };
        if host.is_empty() {
            return Err(bad);
        }
        let address = Address::parse(host);
        if let Address::Ip(ip) = address {
            if AddrType::of(ip) != addr_type {
                return Err(bad);
            }
        }
        let (mut ttl, mut count) = (None, None);
        if let Some(s) = suffix {
            let mut parts = s.split('/');
            let first = parts.next().unwrap_or("");
            let second = parts.next();
            if parts.next().is_some() {
                return Err(bad);
            }
            match addr_type {
                AddrType::Ip4 => {
                    ttl = Some(first.parse::<u8>().map_err(|_| bad.clone())?);
                    if let Some(n) = second {
                        count = Some(n.parse::<u32>().map_err(|_| bad.clone())?);
                    }
                }
                AddrType::Ip6 => {
                    if second.is_some() {
                        return Err(bad);
                    }
                    count = Some(first.parse::<u32>().map_err(|_| bad.clone())?);
                }
            }
        }
        Ok(Connection {
            addr_type,
            address,
            ttl,
            count,
        })
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.addr_type, self.address)?;
        if let Some(ttl) = self.ttl {
            write!(f, "/{ttl}")?;
        }
        if let Some(n) = self.count {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

/// A `b=<bwtype>:<bandwidth>` line (RFC 8866 sec. 5.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `CT`, `AS`, `TIAS`, `RS`, `RR`, ...
    pub kind: String,
    /// The value (kbit/s for `CT`/`AS`, bit/s for `TIAS`).
    pub value: u64,
}

impl Bandwidth {
    fn parse(v: &str) -> Option<Self> {
        let (kind, value) = v.split_once(':')?;
        if kind.is_empty() || kind.contains(char::is_whitespace) {
            return None;
        }
        Some(Bandwidth {
            kind: kind.to_owned(),
            value: value.trim().parse().ok()?,
        })
    }
}

/// A `t=` line with its `r=` lines (RFC 8866 sec. 5.9, 5.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds), 0 for unbounded.
    pub start: u64,
    /// Stop time (NTP seconds), 0 for unbounded.
    pub stop: u64,
    /// `r=` lines, raw.
    pub repeats: Vec<String>,
}

/// Media direction (RFC 8866 sec. 6.7, RFC 3264 sec. 5.1), always from the
/// point of view of the party whose description carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Send and receive (the default when no attribute is present).
    #[default]
    SendRecv,
    /// Only send (the other side is on hold, or hears music on hold).
    SendOnly,
    /// Only receive.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// Build from the two capabilities.
    #[must_use]
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether this party sends media.
    #[must_use]
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this party receives media.
    #[must_use]
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other party: `sendonly` becomes
    /// `recvonly` and the other way round.
    #[must_use]
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// Both constraints at once: send only if both allow sending, and so on.
    #[must_use]
    pub fn intersect(self, other: Direction) -> Self {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The attribute name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.as_str()))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`
/// (RFC 8866 sec. 6.6).
///
/// Note G.722: its RTP clock rate is 8000 although it samples at 16 kHz, for
/// historical reasons (RFC 3551 sec. 4.5.2), so `a=rtpmap:9 G722/8000` is right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Encoding name as sent (compare case-insensitively).
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters (channel count for audio), raw.
    pub params: Option<String>,
}

impl RtpMap {
    fn parse(v: &str) -> Option<Self> {
        let (pt, rest) = v.split_once(|c: char| c.is_ascii_whitespace())?;
        let payload_type: u8 = pt.parse().ok().filter(|p| *p <= 127)?;
        let rest = rest.trim();
        let mut parts = rest.splitn(3, '/');
        let encoding = parts.next()?.trim();
        if encoding.is_empty() || encoding.contains(char::is_whitespace) {
            return None;
        }
        let clock_rate: u32 = parts.next()?.trim().parse().ok().filter(|r| *r > 0)?;
        let params = match parts.next() {
            Some(p) if p.trim().is_empty() || p.contains(char::is_whitespace) => return None,
            Some(p) => Some(p.to_owned()),
            None => None,
        };
        Some(RtpMap {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            params,
        })
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(p) = &self.params {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

/// `a=fmtp:<format> <format specific parameters>` (RFC 8866 sec. 6.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// The format (payload type number for RTP), as sent.
    pub format: String,
    /// The parameters, raw (for telephone-event, the event list, e.g. `0-16`).
    pub params: String,
}

impl Fmtp {
    /// The format as an RTP payload type.
    #[must_use]
    pub fn payload_type(&self) -> Option<u8> {
        self.format.parse().ok().filter(|p| *p <= 127)
    }

    fn parse(v: &str) -> Option<Self> {
        let (format, params) = match v.split_once(|c: char| c.is_ascii_whitespace()) {
            Some((f, p)) => (f, p.trim()),
            None => (v, ""),
        };
        if format.is_empty() {
            return None;
        }
        Some(Fmtp {
            format: format.to_owned(),
            params: params.to_owned(),
        })
    }
}

/// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttr {
    /// RTCP port.
    pub port: u16,
    /// RTCP address, if different from the media connection address.
    pub address: Option<(AddrType, Address)>,
}

impl RtcpAttr {
    fn parse(v: &str) -> Option<Self> {
        let mut it = v.split_ascii_whitespace();
        let port = it.next()?.parse().ok()?;
        let address = match (it.next(), it.next(), it.next(), it.next()) {
            (None, ..) => None,
            (Some(net), Some(at), Some(addr), None) if net.eq_ignore_ascii_case("IN") => {
                let at = AddrType::parse(at)?;
                let addr = Address::parse(addr);
                if let Address::Ip(ip) = addr {
                    if AddrType::of(ip) != at {
                        return None;
                    }
                }
                Some((at, addr))
            }
            _ => return None,
        };
        Some(RtcpAttr { port, address })
    }
}

impl fmt::Display for RtcpAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some((at, addr)) = &self.address {
            write!(f, " IN {at} {addr}")?;
        }
        Ok(())
    }
}

/// An `a=` line (RFC 8866 sec. 5.13 and 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap` (sec. 6.6).
    RtpMap(RtpMap),
    /// `a=fmtp` (sec. 6.15).
    Fmtp(Fmtp),
    /// `a=ptime`, milliseconds of media per packet the sender of this
    /// description wants to receive (sec. 6.4).
    Ptime(u32),
    /// `a=maxptime`, milliseconds (sec. 6.5).
    MaxPtime(u32),
    /// `a=sendrecv` / `sendonly` / `recvonly` / `inactive` (sec. 6.7).
    Direction(Direction),
    /// `a=rtcp` (RFC 3605).
    Rtcp(RtcpAttr),
    /// Any other attribute, or a known one whose value did not parse, raw.
    Other {
        /// Attribute name.
        name: String,
        /// Value after the colon, if there was one.
        value: Option<String>,
    },
}

/// Milliseconds in `a=ptime`/`a=maxptime`. Some peers send `20.0`.
fn parse_ms(v: &str) -> Option<u32> {
    let v = v.trim();
    if let Ok(n) = v.parse::<u32>() {
        return (n > 0).then_some(n);
    }
    let f: f64 = v.parse().ok()?;
    if (1.0..=10_000.0).contains(&f) {
        // In range, so the cast cannot truncate meaningfully.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        // reason: range checked above
        Some(f.round() as u32)
    } else {
        None
    }
}

impl Attribute {
    fn parse(v: &str) -> Self {
        let (name, value) = match v.split_once(':') {
            Some((n, val)) => (n, Some(val)),
            None => (v, None),
        };
        let known = match (name.to_ascii_lowercase().as_str(), value) {
            ("rtpmap", Some(val)) => RtpMap::parse(val).map(Attribute::RtpMap),
            ("fmtp", Some(val)) => Fmtp::parse(val).map(Attribute::Fmtp),
            ("ptime", Some(val)) => parse_ms(val).map(Attribute::Ptime),
            ("maxptime", Some(val)) => parse_ms(val).map(Attribute::MaxPtime),
            ("rtcp", Some(val)) => RtcpAttr::parse(val).map(Attribute::Rtcp),
            (n, None) => Direction::parse(n).map(Attribute::Direction),
            _ => None,
        };
        known.unwrap_or_else(|| Attribute::Other {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        })
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::RtpMap(m) => write!(f, "rtpmap:{m}"),
            Attribute::Fmtp(m) => {
                if m.params.is_empty() {
                    write!(f, "fmtp:{}", m.format)
                } else {
                    write!(f, "fmtp:{} {}", m.format, m.params)
                }
            }
            Attribute::Ptime(ms) => write!(f, "ptime:{ms}"),
            Attribute::MaxPtime(ms) => write!(f, "maxptime:{ms}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Rtcp(r) => write!(f, "rtcp:{r}"),
            Attribute::Other { name, value: None } => f.write_str(name),
            Attribute::Other {
                name,
                value: Some(v),
            } => write!(f, "{name}:{v}"),
        }
    }
}

/// Media type of an `m=` line (RFC 8866 sec. 5.14).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `audio`
    Audio,
    /// `video`
    Video,
    /// `text`
    Text,
    /// `application`
    Application,
    /// `message`
    Message,
    /// `image` (T.38 fax)
    Image,
    /// Anything else, as sent.
    Other(String),
}

impl MediaKind {
    fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "text" => MediaKind::Text,
            "application" => MediaKind::Application,
            "message" => MediaKind::Message,
            "image" => MediaKind::Image,
            _ => MediaKind::Other(s.to_owned()),
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Text => "text",
            MediaKind::Application => "application",
            MediaKind::Message => "message",
            MediaKind::Image => "image",
            MediaKind::Other(s) => s,
        })
    }
}

/// One media description: an `m=` line and the lines under it (RFC 8866 sec. 5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Media type.
    pub kind: MediaKind,
    /// Transport port; 0 means the stream is rejected or disabled (RFC 3264 sec. 5.1).
    pub port: u16,
    /// `/<number of ports>`, if given.
    pub port_count: Option<u16>,
    /// Transport protocol, e.g. `RTP/AVP`, as sent.
    pub proto: String,
    /// Formats: RTP payload type numbers for RTP profiles, as sent.
    pub formats: Vec<String>,
    /// `i=`.
    pub info: Option<String>,
    /// Media-level `c=` lines (usually zero or one).
    pub connections: Vec<Connection>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=`, raw.
    pub key: Option<String>,
    /// Media-level attributes, in order.
    pub attributes: Vec<Attribute>,
    /// Lines of unknown or misplaced type under this `m=`, raw.
    pub other_lines: Vec<(char, String)>,
}

impl Media {
    /// A media description with no attributes or connection.
    #[must_use]
    pub fn new(kind: MediaKind, port: u16, proto: &str, formats: Vec<String>) -> Self {
        Media {
            kind,
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats,
            info: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
            other_lines: Vec::new(),
        }
    }

    fn parse(v: &str, line: usize) -> Result<Self, SdpError> {
        let bad = SdpError::BadMedia { line };
        let mut it = v.split_ascii_whitespace();
        let (Some(kind), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
            return Err(bad);
        };
        let (port, port_count) = match port.split_once('/') {
            Some((p, n)) => (p, Some(n.parse::<u16>().map_err(|_| bad.clone())?)),
            None => (port, None),
        };
        let port: u16 = port.parse().map_err(|_| bad)?;
        let mut m = Media::new(
            MediaKind::parse(kind),
            port,
            proto,
            it.map(str::to_owned).collect(),
        );
        m.port_count = port_count;
        Ok(m)
    }

    /// True if the protocol is RTP with the plain audio/video profile
    /// (`RTP/AVP`) or its feedback variant (`RTP/AVPF`), which we can serve.
    /// Secure profiles (`RTP/SAVP`, DTLS) are not supported.
    #[must_use]
    pub fn is_plain_rtp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/AVP") || self.proto.eq_ignore_ascii_case("RTP/AVPF")
    }

    /// Whether the transport is SRTP with SDES keys: `RTP/SAVP` (RFC 3711
    /// sec. 12) or `RTP/SAVPF` (RFC 5124).
    #[must_use]
    pub fn is_secure_rtp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/SAVP") || self.proto.eq_ignore_ascii_case("RTP/SAVPF")
    }

    /// The formats that are RTP payload type numbers (0..=127), in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok().filter(|p| *p <= 127))
    }

    /// The `a=rtpmap` for a payload type.
    #[must_use]
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::RtpMap(m) if m.payload_type == pt => Some(m),
            _ => None,
        })
    }

    /// The `a=fmtp` for a payload type.
    #[must_use]
    pub fn fmtp(&self, pt: u8) -> Option<&Fmtp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp(m) if m.payload_type() == Some(pt) => Some(m),
            _ => None,
        })
    }

    /// `a=ptime`, if present.
    #[must_use]
    pub fn ptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Ptime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// `a=maxptime`, if present.
    #[must_use]
    pub fn maxptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::MaxPtime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// The media-level direction attribute, if present.
    #[must_use]
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// `a=rtcp`, if present.
    #[must_use]
    pub fn rtcp(&self) -> Option<&RtcpAttr> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(r) => Some(r),
            _ => None,
        })
    }
}

fn direction_of(attrs: &[Attribute]) -> Option<Direction> {
    // The last one wins if a peer sends several (none should).
    attrs.iter().rev().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

impl fmt::Display for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        f.write_str("\r\n")?;
        if let Some(i) = &self.info {
            write!(f, "i={i}\r\n")?;
        }
        for c in &self.connections {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={}:{}\r\n", b.kind, b.value)?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for (t, v) in &self.other_lines {
            write!(f, "{t}={v}\r\n")?;
        }
        Ok(())
    }
}

impl SessionDescription {
    /// Parse an SDP body. Never panics; see the module docs for what is strict
    /// and what is tolerated.
    ///
    /// # Errors
    /// A [`SdpError`] naming the first line that broke a strict rule.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        if text.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge(text.len()));
        }
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());

        let Some((first_no, first)) = lines.next() else {
            return Err(SdpError::Empty);
        };
        if first.strip_prefix("v=").is_none_or(|v| v.trim() != "0") {
            return Err(SdpError::BadVersion { line: first_no });
        }

        let mut origin = None;
        let mut sd = SessionDescription {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                session_version: 0,
                addr_type: AddrType::Ip4,
                address: Address::Host(String::new()),
            },
            session_name: String::new(),
            info: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: Vec::new(),
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            other_lines: Vec::new(),
            media: Vec::new(),
        };
        let mut have_name = false;

        for (no, line) in lines {
            let mut chars = line.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
                return Err(SdpError::BadLine { line: no });
            };
            let value = chars.as_str();
            match kind {
                'v' => {
                    return Err(SdpError::Duplicate {
                        line: no,
                        field: 'v',
                    })
                }
                'o' => {
                    if origin.is_some() {
                        return Err(SdpError::Duplicate {
                            line: no,
                            field: 'o',
                        });
                    }
                    origin = Some(parse_origin(value, no)?);
                    continue;
                }
                'm' => {
                    sd.media.push(Media::parse(value, no)?);
                    continue;
                }
                _ => {}
            }
            if let Some(m) = sd.media.last_mut() {
                match kind {
                    'i' if m.info.is_none() => m.info = Some(value.to_owned()),
                    'c' => m.connections.push(Connection::parse(value, no)?),
                    'b' => match Bandwidth::parse(value) {
                        Some(b) => m.bandwidths.push(b),
                        None => m.other_lines.push((kind, value.to_owned())),
                    },
                    'k' if m.key.is_none() => m.key = Some(value.to_owned()),
                    'a' => m.attributes.push(Attribute::parse(value)),
                    _ => m.other_lines.push((kind, value.to_owned())),
                }
                continue;
            }
            match kind {
                's' if !have_name => {
                    sd.session_name = value.to_owned();
                    have_name = true;
                }
                'i' if sd.info.is_none() => sd.info = Some(value.to_owned()),
                'u' if sd.uri.is_none() => sd.uri = Some(value.to_owned()),
                'e' => sd.emails.push(value.to_owned()),
                'p' => sd.phones.push(value.to_owned()),
                'c' if sd.connection.is_none() => {
                    sd.connection = Some(Connection::parse(value, no)?);
                }
                'b' => match Bandwidth::parse(value) {
                    Some(b) => sd.bandwidths.push(b),
                    None => sd.other_lines.push((kind, value.to_owned())),
                },
                't' => sd.timings.push(parse_timing(value, no)?),
                'r' => {
                    // An r= before any t= repeats nothing: dropped.
                    if let Some(t) = sd.timings.last_mut() {
                        t.repeats.push(value.to_owned());
                    }
                }
                'z' if sd.time_zones.is_none() => sd.time_zones = Some(value.to_owned()),
                'k' if sd.key.is_none() => sd.key = Some(value.to_owned()),
                'a' => sd.attributes.push(Attribute::parse(value)),
                _ => sd.other_lines.push((kind, value.to_owned())),
            }
        }
        sd.origin = origin.ok_or(SdpError::MissingOrigin)?;
        if !have_name {
            sd.session_name = "-".to_owned();
        }
        if sd.timings.is_empty() {
            // Missing t= (some ATAs): the usual unbounded "t=0 0".
            sd.timings.push(Timing {
                start: 0,
                stop: 0,
                repeats: Vec::new(),
            });
        }
        Ok(sd)
    }

    /// Parse an SDP body given as bytes (a SIP message body). Bytes that are
    /// not UTF-8 (allowed in `s=`/`i=` under `a=charset`) become U+FFFD.
    ///
    /// # Errors
    /// As [`SessionDescription::parse`].
    pub fn parse_bytes(body: &[u8]) -> Result<Self, SdpError> {
        if body.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge(body.len()));
        }
        Self::parse(&String::from_utf8_lossy(body))
    }

    /// Session-level direction attribute, if present.
    #[must_use]
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// The direction in force for a media description: its own attribute,
    /// else the session-level one, else `sendrecv` (RFC 3264 sec. 5.1).
    #[must_use]
    pub fn media_direction(&self, m: &Media) -> Direction {
        m.direction().or(self.direction()).unwrap_or_default()
    }

    /// The connection in force for a media description: its own first `c=`,
    /// else the session-level one.
    #[must_use]
    pub fn media_connection<'a>(&'a self, m: &'a Media) -> Option<&'a Connection> {
        m.connections.first().or(self.connection.as_ref())
    }

    /// The body with everything except the `o=` version: two descriptions
    /// with the same key describe the same session state (RFC 3264 sec. 8).
    fn without_version(&self) -> SessionDescription {
        let mut c = self.clone();
        c.origin.session_version = 0;
        c
    }

    /// True when `other` differs from `self` in more than the `o=` version.
    #[must_use]
    pub fn differs_from(&self, other: &SessionDescription) -> bool {
        self.without_version() != other.without_version()
    }
}

fn parse_origin(v: &str, line: usize) -> Result<Origin, SdpError> {
    let bad = SdpError::BadOrigin { line };
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    let [username, session_id, version, net, at, addr] = f.as_slice() else {
        return Err(bad);
    };
    if !net.eq_ignore_ascii_case("IN") {
        return Err(bad);
    }
    Ok(Origin {
        username: (*username).to_owned(),
        session_id: (*session_id).to_owned(),
        session_version: version.parse().map_err(|_| bad.clone())?,
        addr_type: AddrType::parse(at).ok_or(bad)?,
        address: Address::parse(addr),
    })
}

fn parse_timing(v: &str, line: usize) -> Result<Timing, SdpError> {
    let bad = SdpError::BadTiming { line };
    let mut it = v.split_ascii_whitespace();
    let (Some(a), Some(b), None) = (it.next(), it.next(), it.next()) else {
        return Err(bad);
    };
    Ok(Timing {
        start: a.parse().map_err(|_| bad.clone())?,
        stop: b.parse().map_err(|_| bad)?,
        repeats: Vec::new(),
    })
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} IN {} {}",
            self.username, self.session_id, self.session_version, self.addr_type, self.address
        )
    }
}

impl fmt::Display for SessionDescription {
    /// Prints the body with CRLF line ends in the order of RFC 8866 sec. 5.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v=0\r\n")?;
        write!(f, "o={}\r\n", self.origin)?;
        if self.session_name.is_empty() {
            f.write_str("s= \r\n")?;
        } else {
            write!(f, "s={}\r\n", self.session_name)?;
        }
        if let Some(i) = &self.info {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "u={u}\r\n")?;
        }
        for e in &self.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &self.phones {
            write!(f, "p={p}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={}:{}\r\n", b.kind, b.value)?;
        }
        if self.timings.is_empty() {
            // t= is mandatory on the wire; "0 0" means unbounded. (Only a
            // hand-built description can have none: parsing adds it.)
            f.write_str("t=0 0\r\n")?;
        }
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        if let Some(z) = &self.time_zones {
            write!(f, "z={z}\r\n")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for (t, v) in &self.other_lines {
            write!(f, "{t}={v}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for SessionDescription {
    type Err = SdpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionDescription::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASIC: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

    #[test]
    fn basic_offer_round_trips_byte_for_byte() {
        let sd = SessionDescription::parse(BASIC).unwrap();
        assert_eq!(sd.to_string(), BASIC);
        let m = &sd.media[0];
        assert_eq!(m.port, 4000);
        assert_eq!(m.payload_types().collect::<Vec<_>>(), vec![8, 0, 101]);
        assert_eq!(m.rtpmap(101).unwrap().encoding, "telephone-event");
        assert_eq!(m.fmtp(101).unwrap().params, "0-16");
        assert_eq!(m.ptime(), Some(20));
        assert_eq!(sd.media_direction(m), Direction::SendRecv);
    }

    #[test]
    fn lf_only_blank_lines_and_trailing_spaces_are_tolerated() {
        let sloppy = "\nv=0 \no=- 1 2 IN IP4 192.0.2.1\n\ns=\nc=IN IP4 192.0.2.1  \nm=audio 4000 RTP/AVP 0\na=ptime:20.0\n";
        let sd = SessionDescription::parse(sloppy).unwrap();
        assert_eq!(sd.session_name, "");
        assert_eq!((sd.timings[0].start, sd.timings[0].stop), (0, 0));
        assert_eq!(sd.media[0].ptime(), Some(20));
        assert!(sd
            .to_string()
            .contains("s= \r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"));
    }

    #[test]
    fn strict_lines_are_rejected_with_their_line_number() {
        assert_eq!(
            SessionDescription::parse("v=1\r\n"),
            Err(SdpError::BadVersion { line: 1 })
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\no=- 1 2 IN IP4 h\r\nc=IN IP4 ::1\r\n"),
            Err(SdpError::BadConnection { line: 3 })
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\no=- 1 2 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n"),
            Err(SdpError::BadMedia { line: 3 })
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\ns=x\r\n"),
            Err(SdpError::MissingOrigin)
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\nno equals sign\r\n"),
            Err(SdpError::BadLine { line: 2 })
        );
    }

    #[test]
    fn malformed_rtpmap_is_kept_raw_not_fatal() {
        let sd = SessionDescription::parse(
            "v=0\r\no=- 1 2 IN IP4 h\r\nm=audio 1 RTP/AVP 96\r\na=rtpmap:96 opus\r\n",
        )
        .unwrap();
        assert!(sd.media[0].rtpmap(96).is_none());
        assert!(sd.to_string().contains("a=rtpmap:96 opus\r\n"));
    }

    #[test]
    fn multicast_and_ipv6_connections_parse() {
        let c = Connection::parse("IN IP4 224.2.1.1/127/3", 1).unwrap();
        assert_eq!((c.ttl, c.count), (Some(127), Some(3)));
        assert_eq!(c.to_string(), "IN IP4 224.2.1.1/127/3");
        let c = Connection::parse("IN IP6 2001:db8::1", 1).unwrap();
        assert_eq!(c.address, Address::Ip("2001:db8::1".parse().unwrap()));
        assert!(Connection::parse("IN IP4 0.0.0.0", 1)
            .unwrap()
            .is_unspecified());
    }

    #[test]
    fn direction_algebra() {
        assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
        assert_eq!(Direction::Inactive.reversed(), Direction::Inactive);
        assert_eq!(
            Direction::SendRecv.intersect(Direction::RecvOnly),
            Direction::RecvOnly
        );
        assert_eq!(
            Direction::SendOnly.intersect(Direction::RecvOnly),
            Direction::Inactive
        );
    }
}
