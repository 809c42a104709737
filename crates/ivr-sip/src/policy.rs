//! What a UAS checks before it acts on a request, and which error response
//! it sends otherwise (RFC 3261 sec. 8.2: method inspection 8.2.1, header
//! inspection 8.2.2, content processing 8.2.3, extensions 8.2.2.3), and the
//! sanity checks a UAC applies to responses (sec. 8.1.3.3).
//!
//! The RFC 4475 "application layer" messages (sec. 3.3) are decided here:
//! 505 for another SIP version, 400 for malformed or missing mandatory
//! headers and CSeq/method mismatch, 416 for unknown URI schemes, 420 with
//! Unsupported for unknown Require tags, 405/501 for methods, 415 with
//! Accept for bodies we cannot read, 406 when Accept excludes SDP.

use crate::msg::header::is_valid_sip_date;
use crate::msg::{HeaderName, Method, ParseError, Request, Response, Uri, Version};

/// The capabilities a UAS announces and enforces.
#[derive(Debug, Clone)]
pub struct UasPolicy {
    /// Methods answered (also printed in Allow).
    pub allowed: Vec<Method>,
    /// Option tags supported (printed in Supported; others in Require get 420).
    pub supported: Vec<String>,
    /// Body types understood (printed in Accept), as `type/subtype`.
    pub accepted: Vec<String>,
}

impl Default for UasPolicy {
    fn default() -> Self {
        UasPolicy {
            allowed: vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Info,
                Method::Notify,
            ],
            // Only what is implemented: `replaces` (RFC 3891) is not, so a
            // Require: replaces gets 420 rather than a call that ignores it.
            supported: vec!["norefersub".into()],
            accepted: vec![
                "application/sdp".into(),
                "application/dtmf-relay".into(),
                "message/sipfrag".into(),
            ],
        }
    }
}

impl UasPolicy {
    /// Allow header value.
    pub fn allow_header(&self) -> String {
        self.allowed
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
    /// Supported header value.
    pub fn supported_header(&self) -> String {
        self.supported.join(", ")
    }
    /// Accept header value.
    pub fn accept_header(&self) -> String {
        self.accepted.join(", ")
    }
    fn accepts(&self, kind: &str, sub: &str) -> bool {
        self.accepted.iter().any(|a| {
            a.split_once('/')
                .is_some_and(|(k, s)| k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(sub))
        })
    }
}

/// Why a request is refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// SIP version other than 2.0 (505).
    VersionNotSupported,
    /// A mandatory header is missing or a header is malformed (400).
    Malformed(ParseError),
    /// The CSeq method differs from the request method (400, RFC 4475 `mismatch01`).
    CSeqMethodMismatch,
    /// Headers embedded in the Request-URI (400, RFC 4475 `escruri`).
    HeadersInRequestUri,
    /// Date not in RFC 1123 GMT form (400, RFC 4475 `baddate`).
    BadDate,
    /// Request-URI (or REGISTER To) scheme not sip/sips/tel (416).
    UnsupportedUriScheme,
    /// Require lists option tags we do not support (420).
    BadExtension(Vec<String>),
    /// A known method this UAS does not accept (405).
    MethodNotAllowed,
    /// An unknown method (501).
    NotImplemented,
    /// A body type or encoding we cannot process (415).
    UnsupportedMediaType,
    /// Accept excludes the body type we would answer with (406).
    NotAcceptable,
}

/// A refusal: the status code and headers to put in the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Status code.
    pub status: u16,
    /// Extra headers for the response (Allow, Unsupported, Accept, ...).
    pub headers: Vec<(HeaderName, String)>,
    /// Why.
    pub reason: RejectReason,
}

fn reject(status: u16, reason: RejectReason) -> Rejection {
    Rejection {
        status,
        headers: Vec::new(),
        reason,
    }
}

/// Checks a request as a UAS would before creating a transaction-user action.
pub fn check_request(req: &Request, policy: &UasPolicy) -> Result<(), Rejection> {
    if req.version != Version::V2 {
        return Err(reject(505, RejectReason::VersionNotSupported));
    }
    let bad = |e: ParseError| reject(400, RejectReason::Malformed(e));
    let h = &req.headers;
    let vias = h.vias().map_err(bad)?;
    if vias.is_empty() {
        return Err(bad(ParseError::MissingHeader(HeaderName::Via)));
    }
    h.from().map_err(bad)?;
    let to = h.to().map_err(bad)?;
    h.call_id().map_err(bad)?;
    let cseq = h.cseq().map_err(bad)?;
    h.max_forwards().map_err(bad)?;
    h.expires().map_err(bad)?;
    if let Some(contacts) = h.contacts().map_err(bad)? {
        for c in contacts {
            if let Some(Some(e)) = c.params.get("expires") {
                if crate::msg::header::parse_small_number(e, u32::MAX).is_none() {
                    return Err(bad(ParseError::InvalidHeader(HeaderName::Contact)));
                }
            }
        }
    }
    h.name_addrs(&HeaderName::Route).map_err(bad)?;
    h.name_addrs(&HeaderName::RecordRoute).map_err(bad)?;
    let require = h.tokens(&HeaderName::Require).map_err(bad)?;
    let ct = h.content_type().map_err(bad)?;
    let accept = h.accept().map_err(bad)?;
    if let Some(d) = h.get(&HeaderName::Date) {
        if !is_valid_sip_date(d) {
            return Err(reject(400, RejectReason::BadDate));
        }
    }
    if cseq.method != req.method {
        return Err(reject(400, RejectReason::CSeqMethodMismatch));
    }
    match &req.uri {
        Uri::Other { .. } => return Err(reject(416, RejectReason::UnsupportedUriScheme)),
        Uri::Sip(s) if s.headers.is_some() => {
            return Err(reject(400, RejectReason::HeadersInRequestUri))
        }
        _ => {}
    }
    if req.method == Method::Register && !to.uri.is_known_scheme() {
        return Err(reject(416, RejectReason::UnsupportedUriScheme));
    }
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let unsupported: Vec<String> = require
            .into_iter()
            .filter(|t| !policy.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            let mut r = reject(420, RejectReason::BadExtension(unsupported.clone()));
            r.headers
                .push((HeaderName::Unsupported, unsupported.join(", ")));
            return Err(r);
        }
    }
    if !policy.allowed.contains(&req.method) {
        let (status, reason) = match req.method {
            Method::Extension(_) => (501, RejectReason::NotImplemented),
            _ => (405, RejectReason::MethodNotAllowed),
        };
        let mut r = reject(status, reason);
        r.headers.push((HeaderName::Allow, policy.allow_header()));
        return Err(r);
    }
    let has_body = !req.body.is_empty();
    if has_body && req.method != Method::Ack {
        let ok = match &ct {
            Some(t) => {
                policy.accepts(&t.kind, &t.subtype)
                    || (t.is("multipart", "mixed") && policy.accepts("application", "sdp"))
            }
            None => false,
        };
        let encoded = h
            .get(&HeaderName::ContentEncoding)
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        if !ok || encoded {
            let mut r = reject(415, RejectReason::UnsupportedMediaType);
            r.headers.push((HeaderName::Accept, policy.accept_header()));
            return Err(r);
        }
    }
    if matches!(req.method, Method::Invite | Method::Options) {
        if let Some(ranges) = accept {
            if !ranges.is_empty() && !ranges.iter().any(|m| m.accepts("application", "sdp")) {
                let mut r = reject(406, RejectReason::NotAcceptable);
                r.headers.push((HeaderName::Accept, policy.accept_header()));
                return Err(r);
            }
        }
    }
    Ok(())
}

/// Why a received response is discarded (RFC 3261 sec. 8.1.3.3, 18.1.2).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseDrop {
    /// A mandatory header is missing or malformed (e.g. RFC 4475 `scalarlg`).
    Malformed(ParseError),
    /// More than one Via: not for a UAC (RFC 4475 `bcast`).
    MultipleVia,
    /// SIP version other than 2.0.
    Version,
}

/// Checks a response before it is matched to a client transaction.
pub fn check_response(resp: &Response) -> Result<(), ResponseDrop> {
    if resp.version != Version::V2 {
        return Err(ResponseDrop::Version);
    }
    let h = &resp.headers;
    let vias = h.vias().map_err(ResponseDrop::Malformed)?;
    if vias.len() != 1 {
        return Err(ResponseDrop::MultipleVia);
    }
    h.from().map_err(ResponseDrop::Malformed)?;
    h.to().map_err(ResponseDrop::Malformed)?;
    h.call_id().map_err(ResponseDrop::Malformed)?;
    h.cseq().map_err(ResponseDrop::Malformed)?;
    Ok(())
}

/// Builds a response to `req` (RFC 3261 sec. 8.2.6.2): Via, From, To (tag
/// added when given and absent), Call-ID and CSeq copied, Content-Length 0.
/// Works on requests whose headers are only partly valid: it copies raw values.
pub fn make_response(req: &Request, status: u16, to_tag: Option<&str>) -> Response {
    let mut r = Response::new(status, crate::msg::reason_phrase(status));
    for h in &req.headers.0 {
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                r.headers.push(h.name.clone(), h.value.clone())
            }
            HeaderName::To => {
                let mut v = h.value.clone();
                if let Some(tag) = to_tag {
                    let has_tag = req.headers.to().map(|t| t.tag().is_some()).unwrap_or(true);
                    if !has_tag && status != 100 {
                        v.push_str(";tag=");
                        v.push_str(tag);
                    }
                }
                r.headers.push(HeaderName::To, v)
            }
            _ => {}
        }
    }
    r.headers.push(HeaderName::ContentLength, "0");
    r
}

/// `bytes` with its first line replaced by `METHOD sip:invalid SIP/2.0`,
/// when that line starts with a method token and a space and ends in
/// `SIP/2.0` (spaces aside): enough to read the headers a 400 copies.
fn with_placeholder_request_line(bytes: &[u8]) -> Option<Vec<u8>> {
    let end = bytes.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(bytes.get(..end)?).ok()?;
    let (method, rest) = line.split_once(' ')?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
    if method.is_empty() || !method.bytes().all(token) || method.starts_with("SIP/") {
        return None;
    }
    if !rest.trim_end_matches([' ', '\t']).ends_with("SIP/2.0") {
        return None;
    }
    let mut out = format!("{method} sip:invalid SIP/2.0").into_bytes();
    out.extend_from_slice(bytes.get(end..)?);
    Some(out)
}

/// A response to send for a request refused by [`check_request`].
pub fn rejection_response(req: &Request, rej: &Rejection, to_tag: &str) -> Response {
    let mut r = make_response(req, rej.status, Some(to_tag));
    let cl = r.headers.0.pop();
    for (n, v) in &rej.headers {
        r.headers.push(n.clone(), v.clone());
    }
    if let Some(cl) = cl {
        r.headers.0.push(cl);
    }
    r
}

/// For a datagram that does not frame as a message (bad Content-Length,
/// RFC 4475 `clerr`, `ncl`, `mcl01`) but whose start line and headers do
/// parse as a request: the 400 response to send (sec. 8.2.2 / RFC 4475
/// sec. 3.1.2: "respond with 400 if a response can be formed, else drop").
/// A request whose request line is malformed (RFC 4475 `ltgtruri`,
/// `lwsruri`, `lwsstart`, `trws`) but whose method token and headers parse
/// gets its 400 too. Responses and unparseable heads give `None` (drop).
pub fn bad_request_for_unframed(bytes: &[u8], to_tag: &str) -> Option<Response> {
    let head = match crate::msg::parse_head(bytes, true) {
        Ok(h) => h,
        Err(_) => {
            let fixed = with_placeholder_request_line(bytes)?;
            crate::msg::parse_head(&fixed, true).ok()?
        }
    };
    match head.into_message(Vec::new()) {
        crate::msg::Message::Request(req) if req.method != Method::Ack => {
            req.headers.top_via().ok()?;
            Some(make_response(&req, 400, Some(to_tag)))
        }
        _ => None,
    }
}
