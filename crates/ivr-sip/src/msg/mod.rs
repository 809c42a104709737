//! SIP messages: parse and print (RFC 3261 sec. 7, grammar in sec. 25).
//!
//! A [`Message`] keeps every header as received (after unfolding, RFC 3261
//! sec. 7.3.1) in order, under a [`HeaderName`] that knows the compact forms
//! (sec. 7.3.3). Typed views ([`header`]) are parsed on demand from
//! [`Headers`], so an unknown or odd header never stops a message from being
//! handled, and printing gives back what was received.
//!
//! Framing (sec. 18.3): [`Message::parse_datagram`] for UDP (Content-Length
//! may be absent; bytes after the message are ignored) and
//! [`framer::StreamFramer`] for TCP (Content-Length required, sizes bounded).

pub mod framer;
pub mod header;
pub mod uri;

use std::fmt;

pub use header::{CSeq, Challenge, MediaType, NameAddr, Via};
pub use uri::{Host, Params, SipUri, Uri};

/// Why bytes are not a SIP message (or a header not the typed value asked for).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The header section exceeds the configured bound (stream framing).
    #[error("header section larger than {0} bytes")]
    HeadTooLarge(usize),
    /// The Content-Length exceeds the configured body bound.
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// No empty line ends the header section.
    #[error("no empty line after the headers")]
    NoHeaderTerminator,
    /// The start line and headers are not UTF-8 (RFC 3261 sec. 7.3.1 requires UTF-8).
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// The Request-Line or Status-Line does not have the shape of sec. 7.1/7.2
    /// (e.g. extra or missing spaces, RFC 4475 `lwsstart`, `lwsruri`, `trws`).
    #[error("malformed start line")]
    InvalidStartLine,
    /// The method is not an RFC 3261 `token`.
    #[error("malformed method")]
    InvalidMethod,
    /// The SIP-Version is not `SIP/<digits>.<digits>`.
    #[error("malformed SIP version")]
    InvalidVersion,
    /// The status code is not three digits 100-699 (RFC 4475 `bigcode`).
    #[error("malformed status code")]
    InvalidStatusCode,
    /// A header line has no colon or its name is not a token.
    #[error("malformed header line")]
    InvalidHeaderLine,
    /// Content-Length is not a non-negative decimal number (RFC 4475 `ncl`).
    #[error("malformed Content-Length")]
    InvalidContentLength,
    /// Two Content-Length headers disagree (RFC 4475 `mcl01`).
    #[error("conflicting Content-Length headers")]
    ConflictingContentLength,
    /// Content-Length says more bytes than the datagram holds (RFC 4475 `clerr`).
    #[error("Content-Length larger than the datagram")]
    ContentLengthExceedsDatagram,
    /// A stream-transport message has no Content-Length (RFC 3261 sec. 18.3 requires it).
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
    /// A URI does not match RFC 3261 sec. 25.1 (e.g. `<...>` around a Request-URI, RFC 4475 `ltgtruri`).
    #[error("malformed URI")]
    InvalidUri,
    /// A host is not a domain name, IPv4 address or IPv6 reference.
    #[error("malformed host")]
    InvalidHost,
    /// A port is not a number 0-65535.
    #[error("malformed port")]
    InvalidPort,
    /// A typed header value does not match its grammar.
    #[error("malformed {0} header")]
    InvalidHeader(HeaderName),
    /// A required header is absent.
    #[error("missing {0} header")]
    MissingHeader(HeaderName),
    /// A single-valued header appears more than once (RFC 4475 `multi01`).
    #[error("{0} header appears more than once")]
    DuplicateHeader(HeaderName),
}

/// The SIP version of a start line; only 2.0 is spoken (505 otherwise, RFC 3261 sec. 8.2.2... sec. 21.5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl Version {
    /// SIP/2.0.
    pub const V2: Version = Version { major: 2, minor: 0 };

    fn parse(s: &str) -> Result<Version, ParseError> {
        let rest = s
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("SIP/"))
            .map(|_| &s[4..])
            .ok_or(ParseError::InvalidVersion)?;
        let (a, b) = rest.split_once('.').ok_or(ParseError::InvalidVersion)?;
        let num = |x: &str| {
            if x.is_empty() || x.len() > 9 || !x.bytes().all(|c| c.is_ascii_digit()) {
                Err(ParseError::InvalidVersion)
            } else {
                x.parse::<u32>().map_err(|_| ParseError::InvalidVersion)
            }
        };
        Ok(Version {
            major: num(a)?,
            minor: num(b)?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/{}.{}", self.major, self.minor)
    }
}

/// A request method (RFC 3261 sec. 7.1; methods are case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// INFO (RFC 6086).
    Info,
    /// REFER (RFC 3515).
    Refer,
    /// NOTIFY (RFC 6665).
    Notify,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// MESSAGE (RFC 3428).
    Message,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other token.
    Extension(String),
}

pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

impl Method {
    /// Parses a method token.
    pub fn parse(s: &str) -> Result<Method, ParseError> {
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other if is_token(other) => Method::Extension(other.to_string()),
            _ => return Err(ParseError::InvalidMethod),
        })
    }

    /// The method as it is written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! header_names {
    ($( $(#[$doc:meta])* $var:ident => $canon:literal $(, $compact:literal)? ;)*) => {
        /// A header field name; known names are variants, compact forms
        /// (RFC 3261 sec. 7.3.3) map to them, anything else is kept as received
        /// and compares case-insensitively (sec. 7.3.1).
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $var, )*
            /// Any other header, name as received.
            Other(String),
        }

        impl HeaderName {
            /// Parses a header name (case-insensitive, compact forms accepted).
            pub fn parse(s: &str) -> HeaderName {
                $(
                    if s.eq_ignore_ascii_case($canon) $(|| s.eq_ignore_ascii_case($compact))? {
                        return HeaderName::$var;
                    }
                )*
                HeaderName::Other(s.to_string())
            }

            /// The canonical spelling used when printing.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$var => $canon, )*
                    HeaderName::Other(s) => s,
                }
            }
        }
    };
}

header_names! {
    /// Via (`v`).
    Via => "Via", "v";
    /// From (`f`).
    From => "From", "f";
    /// To (`t`).
    To => "To", "t";
    /// Call-ID (`i`).
    CallId => "Call-ID", "i";
    /// CSeq.
    CSeq => "CSeq";
    /// Contact (`m`).
    Contact => "Contact", "m";
    /// Max-Forwards.
    MaxForwards => "Max-Forwards";
    /// Content-Length (`l`).
    ContentLength => "Content-Length", "l";
    /// Content-Type (`c`).
    ContentType => "Content-Type", "c";
    /// Content-Encoding (`e`).
    ContentEncoding => "Content-Encoding", "e";
    /// Content-Disposition.
    ContentDisposition => "Content-Disposition";
    /// Route.
    Route => "Route";
    /// Record-Route.
    RecordRoute => "Record-Route";
    /// Require.
    Require => "Require";
    /// Proxy-Require.
    ProxyRequire => "Proxy-Require";
    /// Supported (`k`).
    Supported => "Supported", "k";
    /// Unsupported.
    Unsupported => "Unsupported";
    /// Allow.
    Allow => "Allow";
    /// Accept.
    Accept => "Accept";
    /// Expires.
    Expires => "Expires";
    /// Date.
    Date => "Date";
    /// Subject (`s`).
    Subject => "Subject", "s";
    /// Refer-To (`r`, RFC 3515).
    ReferTo => "Refer-To", "r";
    /// Referred-By (`b`, RFC 3892).
    ReferredBy => "Referred-By", "b";
    /// Event (`o`, RFC 6665).
    Event => "Event", "o";
    /// Allow-Events (`u`, RFC 6665).
    AllowEvents => "Allow-Events", "u";
    /// Subscription-State (RFC 6665).
    SubscriptionState => "Subscription-State";
    /// User-to-User (RFC 7433).
    UserToUser => "User-to-User";
    /// WWW-Authenticate.
    WwwAuthenticate => "WWW-Authenticate";
    /// Authorization.
    Authorization => "Authorization";
    /// Proxy-Authenticate.
    ProxyAuthenticate => "Proxy-Authenticate";
    /// Proxy-Authorization.
    ProxyAuthorization => "Proxy-Authorization";
    /// User-Agent.
    UserAgent => "User-Agent";
    /// Server.
    Server => "Server";
    /// Reason (RFC 3326).
    Reason => "Reason";
    /// Retry-After.
    RetryAfter => "Retry-After";
    /// Warning.
    Warning => "Warning";
    /// Session-Expires (`x`, RFC 4028).
    SessionExpires => "Session-Expires", "x";
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (HeaderName::Other(_), _) | (_, HeaderName::Other(_)) => false,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for HeaderName {}

impl std::hash::Hash for HeaderName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            HeaderName::Other(s) => {
                for b in s.bytes() {
                    state.write_u8(b.to_ascii_lowercase());
                }
            }
            known => std::mem::discriminant(known).hash(state),
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line, value unfolded and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HeaderName,
    /// The value as received (folding replaced by one space).
    pub value: String,
}

/// The ordered header list of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// The value of the first header named `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.value.as_str())
    }
    /// Every value of headers named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }
    /// How many header lines are named `name`.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }
    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }
    /// Replaces all headers named `name` with one value (appended if absent).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        if let Some(pos) = self.0.iter().position(|h| h.name == name) {
            self.0[pos].value = value;
            let mut i = 0;
            self.0.retain(|h| {
                i += 1;
                i - 1 <= pos || h.name != name
            });
        } else {
            self.push(name, value);
        }
    }
    /// Removes all headers named `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }
    /// The single value of a header that must appear exactly once.
    pub fn single(&self, name: &HeaderName) -> Result<&str, ParseError> {
        let mut it = self
            .0
            .iter()
            .filter(|h| &h.name == name)
            .map(|h| h.value.as_str());
        let first = it
            .next()
            .ok_or_else(|| ParseError::MissingHeader(name.clone()))?;
        if it.next().is_some() {
            return Err(ParseError::DuplicateHeader(name.clone()));
        }
        Ok(first)
    }

    /// Every Via value, top first (sec. 20.42; list headers may be split across lines).
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all(&HeaderName::Via) {
            for part in header::split_list(v, &HeaderName::Via)? {
                out.push(Via::parse(part)?);
            }
        }
        Ok(out)
    }
    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let v = self
            .get(&HeaderName::Via)
            .ok_or(ParseError::MissingHeader(HeaderName::Via))?;
        let first = header::split_list(v, &HeaderName::Via)?
            .into_iter()
            .next()
            .ok_or(ParseError::InvalidHeader(HeaderName::Via))?;
        Via::parse(first)
    }
    /// From (sec. 20.20).
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.single(&HeaderName::From)?, &HeaderName::From)
    }
    /// To (sec. 20.39).
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.single(&HeaderName::To)?, &HeaderName::To)
    }
    /// Call-ID (sec. 20.8): `word [@ word]`, no whitespace.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let v = self.single(&HeaderName::CallId)?;
        if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(ParseError::InvalidHeader(HeaderName::CallId));
        }
        Ok(v)
    }
    /// CSeq (sec. 20.16).
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.single(&HeaderName::CSeq)?)
    }
    /// Max-Forwards (sec. 20.22), `None` if absent.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        if self.get(&HeaderName::MaxForwards).is_none() {
            return Ok(None);
        }
        header::parse_small_number(self.single(&HeaderName::MaxForwards)?, 255)
            .map(|n| Some(n as u8))
            .ok_or(ParseError::InvalidHeader(HeaderName::MaxForwards))
    }
    /// Expires (sec. 20.19), `None` if absent.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.get(&HeaderName::Expires) {
            None => Ok(None),
            Some(_) => header::parse_delta_seconds(self.single(&HeaderName::Expires)?)
                .map(Some)
                .ok_or(ParseError::InvalidHeader(HeaderName::Expires)),
        }
    }
    /// Contact values (sec. 20.10); `Ok(None)` for `Contact: *`.
    pub fn contacts(&self) -> Result<Option<Vec<NameAddr>>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all(&HeaderName::Contact) {
            if v.trim() == "*" {
                return Ok(None);
            }
            for part in header::split_list(v, &HeaderName::Contact)? {
                out.push(NameAddr::parse(part, &HeaderName::Contact)?);
            }
        }
        Ok(Some(out))
    }
    /// The first Contact, if any.
    pub fn contact(&self) -> Result<Option<NameAddr>, ParseError> {
        Ok(self.contacts()?.and_then(|c| c.into_iter().next()))
    }
    /// Name-addr list headers such as Route and Record-Route (sec. 20.30, 20.34).
    pub fn name_addrs(&self, name: &HeaderName) -> Result<Vec<NameAddr>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            for part in header::split_list(v, name)? {
                out.push(NameAddr::parse(part, name)?);
            }
        }
        Ok(out)
    }
    /// Token list headers (Require, Supported, Unsupported, Allow, ...), in order.
    pub fn tokens(&self, name: &HeaderName) -> Result<Vec<String>, ParseError> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            if v.trim().is_empty() {
                continue;
            }
            for part in header::split_list(v, name)? {
                if !is_token(part) {
                    return Err(ParseError::InvalidHeader(name.clone()));
                }
                out.push(part.to_string());
            }
        }
        Ok(out)
    }
    /// Content-Type (sec. 20.15), `None` if absent.
    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        match self.get(&HeaderName::ContentType) {
            None => Ok(None),
            Some(_) => MediaType::parse(self.single(&HeaderName::ContentType)?).map(Some),
        }
    }
    /// Accept (sec. 20.1): media ranges; `None` if absent.
    pub fn accept(&self) -> Result<Option<Vec<MediaType>>, ParseError> {
        if self.get(&HeaderName::Accept).is_none() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for v in self.get_all(&HeaderName::Accept) {
            if v.trim().is_empty() {
                continue;
            }
            for part in header::split_list(v, &HeaderName::Accept)? {
                out.push(MediaType::parse(part)?);
            }
        }
        Ok(Some(out))
    }
    /// Refer-To (RFC 3515 sec. 2.1).
    pub fn refer_to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.single(&HeaderName::ReferTo)?, &HeaderName::ReferTo)
    }
    /// Referred-By (RFC 3892), `None` if absent.
    pub fn referred_by(&self) -> Result<Option<NameAddr>, ParseError> {
        match self.get(&HeaderName::ReferredBy) {
            None => Ok(None),
            Some(v) => NameAddr::parse(v, &HeaderName::ReferredBy).map(Some),
        }
    }
    /// Event (RFC 6665 sec. 8.2.1): package name and parameters.
    pub fn event(&self) -> Result<Option<(String, Params)>, ParseError> {
        match self.get(&HeaderName::Event) {
            None => Ok(None),
            Some(v) => header::token_with_params(v, &HeaderName::Event).map(Some),
        }
    }
    /// Subscription-State (RFC 6665 sec. 8.2.3): state and parameters.
    pub fn subscription_state(&self) -> Result<Option<(String, Params)>, ParseError> {
        match self.get(&HeaderName::SubscriptionState) {
            None => Ok(None),
            Some(v) => header::token_with_params(v, &HeaderName::SubscriptionState).map(Some),
        }
    }
    /// Digest/other challenges in WWW-Authenticate or Proxy-Authenticate (sec. 20.44), raw params.
    pub fn challenges(&self, name: &HeaderName) -> Result<Vec<Challenge>, ParseError> {
        self.get_all(name)
            .map(|v| Challenge::parse(v, name))
            .collect()
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// The version on the Request-Line.
    pub version: Version,
    /// Headers in order.
    pub headers: Headers,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The version on the Status-Line.
    pub version: Version,
    /// Status code, 100-699.
    pub status: u16,
    /// Reason phrase (UTF-8, possibly empty).
    pub reason: String,
    /// Headers in order.
    pub headers: Headers,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// Default bound on the header section (bytes).
pub const DEFAULT_MAX_HEAD: usize = 16 * 1024;
/// Default bound on the body (bytes).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// The start line and headers, before the body is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request(Method, Uri, Version),
    Response(Version, u16, String),
}

pub(crate) struct Head {
    pub(crate) start: StartLine,
    pub(crate) headers: Headers,
    /// Offset of the first body byte.
    pub(crate) body_start: usize,
}

fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    // Returns (end of header text, start of body).
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            let next = bytes.get(i + 1..);
            if let Some(n) = next {
                if n.starts_with(b"\r\n") {
                    return Some((i + 1, i + 3));
                }
                if n.starts_with(b"\n") {
                    return Some((i + 1, i + 2));
                }
            }
        }
        i += 1;
    }
    None
}

/// Number of leading CR/LF bytes (ignored before a start line, sec. 7.5; RFC 5626 keep-alives).
pub(crate) fn leading_crlf(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Parses start line and headers. `at_end` allows a datagram whose header
/// section runs to its last CRLF without the empty line.
pub(crate) fn parse_head(bytes: &[u8], at_end: bool) -> Result<Head, ParseError> {
    let skip = leading_crlf(bytes);
    let rest = &bytes[skip..];
    let (text_end, body_start) = match find_head_end(rest) {
        Some(x) => x,
        None if at_end && rest.ends_with(b"\n") => (rest.len(), rest.len()),
        None => return Err(ParseError::NoHeaderTerminator),
    };
    let text = std::str::from_utf8(&rest[..text_end]).map_err(|_| ParseError::NotUtf8)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or(ParseError::InvalidStartLine)?;
    let start = parse_start_line(first)?;
    let mut headers = Headers::default();
    let mut current: Option<(HeaderName, String)> = None;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let (_, v) = current.as_mut().ok_or(ParseError::InvalidHeaderLine)?;
            let cont = line.trim_matches(|c| c == ' ' || c == '\t');
            if !cont.is_empty() {
                if !v.is_empty() {
                    v.push(' ');
                }
                v.push_str(cont);
            }
            continue;
        }
        if let Some((n, v)) = current.take() {
            headers.push(n, v);
        }
        let (name, value) = line.split_once(':').ok_or(ParseError::InvalidHeaderLine)?;
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(ParseError::InvalidHeaderLine);
        }
        current = Some((
            HeaderName::parse(name),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    if let Some((n, v)) = current.take() {
        headers.push(n, v);
    }
    Ok(Head {
        start,
        headers,
        body_start: skip + body_start,
    })
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if line
        .as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let (ver, rest) = line.split_once(' ').ok_or(ParseError::InvalidStartLine)?;
        let version = Version::parse(ver)?;
        let (code, reason) = match rest.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::InvalidStatusCode);
        }
        let status: u16 = code.parse().map_err(|_| ParseError::InvalidStatusCode)?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::InvalidStatusCode);
        }
        if reason.bytes().any(|b| b < b' ' && b != b'\t') {
            return Err(ParseError::InvalidStartLine);
        }
        return Ok(StartLine::Response(version, status, reason.to_string()));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly single spaces.
    let mut parts = line.split(' ');
    let (Some(m), Some(u), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::InvalidStartLine);
    };
    if m.is_empty() || u.is_empty() || v.is_empty() {
        return Err(ParseError::InvalidStartLine);
    }
    let method = Method::parse(m)?;
    let uri = Uri::parse(u)?;
    let version = Version::parse(v)?;
    Ok(StartLine::Request(method, uri, version))
}

/// Reads all Content-Length values: `Ok(None)` if absent.
pub(crate) fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    for v in headers.get_all(&HeaderName::ContentLength) {
        let v = v.trim();
        if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::InvalidContentLength);
        }
        let n: usize = v.parse().map_err(|_| ParseError::InvalidContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(ParseError::ConflictingContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

impl Head {
    pub(crate) fn into_message(self, body: Vec<u8>) -> Message {
        match self.start {
            StartLine::Request(method, uri, version) => Message::Request(Request {
                method,
                uri,
                version,
                headers: self.headers,
                body,
            }),
            StartLine::Response(version, status, reason) => Message::Response(Response {
                version,
                status,
                reason,
                headers: self.headers,
                body,
            }),
        }
    }
}

impl Message {
    /// Parses one message from a UDP datagram (RFC 3261 sec. 18.3): without
    /// Content-Length the body runs to the end; bytes after Content-Length
    /// are ignored (RFC 4475 `dblreq`); a Content-Length beyond the end is an error.
    pub fn parse_datagram(bytes: &[u8]) -> Result<Message, ParseError> {
        let head = parse_head(bytes, true)?;
        let avail = bytes.len().saturating_sub(head.body_start);
        let len = match content_length(&head.headers)? {
            Some(n) if n > avail => return Err(ParseError::ContentLengthExceedsDatagram),
            Some(n) => n,
            None => avail,
        };
        let body = bytes[head.body_start..head.body_start + len].to_vec();
        Ok(head.into_message(body))
    }

    /// Parses a message that must be exactly framed (e.g. test vectors, or a
    /// frame from [`framer::StreamFramer`]); same rules as a datagram.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        Self::parse_datagram(bytes)
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
    /// The headers, mutably.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }
    /// The body.
    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// Prints the message (start line, headers in order, empty line, body).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body().len());
        self.write_to(&mut out);
        out
    }

    /// Appends the printed message to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = match self {
            Message::Request(r) => write!(out, "{} {} {}\r\n", r.method, r.uri, r.version),
            Message::Response(r) => write!(out, "{} {:03} {}\r\n", r.version, r.status, r.reason),
        };
        for h in &self.headers().0 {
            out.extend_from_slice(h.name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body());
    }
}

impl Request {
    /// A request with no headers; add them with [`Headers::push`].
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            version: Version::V2,
            headers: Headers::default(),
            body: Vec::new(),
        }
    }
    /// Sets body, Content-Type (if given) and Content-Length.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Vec<u8>) {
        if let Some(ct) = content_type {
            self.headers.set(HeaderName::ContentType, ct);
        }
        self.headers
            .set(HeaderName::ContentLength, body.len().to_string());
        self.body = body;
    }
    /// Prints the request.
    pub fn to_bytes(&self) -> Vec<u8> {
        Message::Request(self.clone()).to_bytes()
    }
}

impl Response {
    /// A response with no headers.
    pub fn new(status: u16, reason: impl Into<String>) -> Response {
        Response {
            version: Version::V2,
            status,
            reason: reason.into(),
            headers: Headers::default(),
            body: Vec::new(),
        }
    }
    /// Sets body, Content-Type (if given) and Content-Length.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Vec<u8>) {
        if let Some(ct) = content_type {
            self.headers.set(HeaderName::ContentType, ct);
        }
        self.headers
            .set(HeaderName::ContentLength, body.len().to_string());
        self.body = body;
    }
    /// Prints the response.
    pub fn to_bytes(&self) -> Vec<u8> {
        Message::Response(self.clone()).to_bytes()
    }
}

/// The standard reason phrase for a status code (RFC 3261 sec. 21).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        603 => "Decline",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_compare_case_insensitively_and_know_compact_forms() {
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("cALL-id"), HeaderName::CallId);
        assert_eq!(
            HeaderName::parse("min-expires"),
            HeaderName::Other("Min-Expires".into())
        );
        assert_ne!(HeaderName::parse("X-A"), HeaderName::parse("X-B"));
    }
}
