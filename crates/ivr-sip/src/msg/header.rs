//! Typed header values (RFC 3261 sec. 20 and the grammar of sec. 25.1).
//!
//! Lexical rules: LWS may surround `;`, `=`, `,`, `/` and `:` separators
//! (sec. 7.3.1, 25.1 `SEMI`, `EQUAL`, `COMMA`, `SLASH`); quoted strings allow
//! `\`-escapes (`quoted-pair`); commas inside quotes or `<...>` do not split a
//! list. Empty list elements and empty parameters are rejected (RFC 4475
//! `badinv01`).

use std::fmt;

use super::uri::{parse_hostport, Host, Params, Uri};
use super::{is_token, is_token_char, HeaderName, Method, ParseError};

fn is_lws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits a comma-separated header value at top level (outside quotes and
/// angle brackets). Each element is trimmed; an empty element is an error.
pub fn split_list<'a>(v: &'a str, name: &HeaderName) -> Result<Vec<&'a str>, ParseError> {
    let err = || ParseError::InvalidHeader(name.clone());
    let b = v.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i, mut in_q, mut in_a) = (0, 0, false, false);
    while i < b.len() {
        match b[i] {
            b'\\' if in_q => i += 1,
            b'"' if !in_a => in_q = !in_q,
            b'<' if !in_q => in_a = true,
            b'>' if !in_q => in_a = false,
            b',' if !in_q && !in_a => {
                let part = v[start..i].trim_matches([' ', '\t']);
                if part.is_empty() {
                    return Err(err());
                }
                out.push(part);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if in_q || in_a {
        return Err(err());
    }
    let part = v[start.min(v.len())..].trim_matches([' ', '\t']);
    if part.is_empty() {
        return Err(err());
    }
    out.push(part);
    Ok(out)
}

/// Reads a quoted string starting at `s[0] == '"'`; returns (raw including quotes, rest).
fn quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&s[..=i], &s[i + 1..])),
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Removes the quotes and `\`-escapes of a quoted string.
pub fn unquote(raw: &str) -> String {
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let mut out = String::with_capacity(inner.len());
    let mut esc = false;
    for c in inner.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Quotes a string for use as a display name or parameter value.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if c != '\r' && c != '\n' {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Parses `*( SEMI generic-param )` (sec. 25.1). `s` starts at a `;` or is blank.
pub(crate) fn parse_params(s: &str, name: &HeaderName) -> Result<Params, ParseError> {
    let err = || ParseError::InvalidHeader(name.clone());
    let mut params = Params::default();
    let mut rest = s.trim_start_matches([' ', '\t']);
    while !rest.is_empty() {
        rest = rest
            .strip_prefix(';')
            .ok_or_else(err)?
            .trim_start_matches([' ', '\t']);
        let end = rest
            .bytes()
            .position(|b| !is_token_char(b))
            .unwrap_or(rest.len());
        let pname = &rest[..end];
        if pname.is_empty() {
            return Err(err());
        }
        rest = rest[end..].trim_start_matches([' ', '\t']);
        let value = if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start_matches([' ', '\t']);
            if r.starts_with('"') {
                let (q, after) = quoted(r).ok_or_else(err)?;
                rest = after;
                Some(q.to_string())
            } else {
                let end = r
                    .bytes()
                    .position(|b| !(is_token_char(b) || b == b':' || b == b'[' || b == b']'))
                    .unwrap_or(r.len());
                if end == 0 {
                    return Err(err());
                }
                rest = &r[end..];
                Some(r[..end].to_string())
            }
        } else {
            None
        };
        rest = rest.trim_start_matches([' ', '\t']);
        params.0.push((pname.to_string(), value));
    }
    Ok(params)
}

/// `name-addr` or `addr-spec` with header parameters (From, To, Contact,
/// Route, Record-Route, Refer-To, Referred-By; sec. 20.10, 20.20, 20.39).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as received (quoted form keeps its quotes).
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, ...), outside the angle brackets.
    pub params: Params,
}

impl NameAddr {
    /// A name-addr for `uri` with no display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::default(),
        }
    }

    /// Parses one element (not a list) for header `name`.
    pub fn parse(v: &str, name: &HeaderName) -> Result<NameAddr, ParseError> {
        let err = || ParseError::InvalidHeader(name.clone());
        let v = v.trim_matches([' ', '\t']);
        let (display, after_display) = if v.starts_with('"') {
            let (q, rest) = quoted(v).ok_or_else(err)?;
            let rest = rest.trim_start_matches([' ', '\t']);
            if !rest.starts_with('<') {
                return Err(err());
            }
            (Some(q.to_string()), rest)
        } else if let Some(lt) = v.find('<') {
            let d = v[..lt].trim_matches([' ', '\t']);
            if !d.bytes().all(|b| is_token_char(b) || is_lws(b)) {
                return Err(err());
            }
            (
                if d.is_empty() {
                    None
                } else {
                    Some(d.to_string())
                },
                &v[lt..],
            )
        } else {
            (None, v)
        };
        if let Some(inner) = after_display.strip_prefix('<') {
            let gt = inner.find('>').ok_or_else(err)?;
            let uri_s = &inner[..gt];
            if uri_s.starts_with([' ', '\t']) || uri_s.ends_with([' ', '\t']) {
                return Err(err());
            }
            let uri = Uri::parse(uri_s)?;
            let params = parse_params(&inner[gt + 1..], name)?;
            Ok(NameAddr {
                display,
                uri,
                params,
            })
        } else {
            // addr-spec: the URI may not contain ',', '?' or ';' (sec. 20.10).
            let (uri_s, rest) = match after_display.find(';') {
                Some(i) => (&after_display[..i], &after_display[i..]),
                None => (after_display, ""),
            };
            let uri_s = uri_s.trim_matches([' ', '\t']);
            if uri_s.contains(['?', ',']) {
                return Err(err());
            }
            let uri = Uri::parse(uri_s)?;
            let params = parse_params(rest, name)?;
            Ok(NameAddr {
                display: None,
                uri,
                params,
            })
        }
    }

    /// The `tag` parameter (sec. 19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// The display name without quotes or escapes.
    pub fn display_name(&self) -> Option<String> {
        self.display.as_deref().map(unquote)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// One Via element (sec. 20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name and version as sent (`SIP/2.0`).
    pub protocol: String,
    /// Transport token, upper-cased (`UDP`, `TCP`, ...).
    pub transport: String,
    /// sent-by host.
    pub host: Host,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, ...).
    pub params: Params,
}

impl Via {
    /// Parses one Via element.
    pub fn parse(v: &str) -> Result<Via, ParseError> {
        let err = || ParseError::InvalidHeader(HeaderName::Via);
        let mut parts = Vec::new();
        let mut rest = v.trim_start_matches([' ', '\t']);
        for i in 0..3 {
            let end = rest
                .bytes()
                .position(|b| !is_token_char(b))
                .unwrap_or(rest.len());
            if end == 0 {
                return Err(err());
            }
            parts.push(&rest[..end]);
            rest = rest[end..].trim_start_matches([' ', '\t']);
            if i < 2 {
                rest = rest
                    .strip_prefix('/')
                    .ok_or_else(err)?
                    .trim_start_matches([' ', '\t']);
            }
        }
        let end = rest.find([';', ' ', '\t']).unwrap_or(rest.len());
        let (host, port) = parse_hostport(&rest[..end]).map_err(|_| err())?;
        let params = parse_params(&rest[end..], &HeaderName::Via)?;
        Ok(Via {
            protocol: format!("{}/{}", parts[0], parts[1]),
            transport: parts[2].to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// A new Via for this stack's own requests.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::default();
        params.set("branch", Some(branch.to_string()));
        Via {
            protocol: "SIP/2.0".into(),
            transport: transport.into(),
            host,
            port,
            params,
        }
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }
    /// Whether the branch carries the RFC 3261 magic cookie (sec. 8.1.1.7).
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with("z9hG4bK"))
    }
    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }
    /// The `rport` parameter: `None` absent, `Some(None)` requested, `Some(Some(p))` filled (RFC 3581).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// CSeq (sec. 20.16): sequence number below 2^31 and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number.
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(v: &str) -> Result<CSeq, ParseError> {
        let err = || ParseError::InvalidHeader(HeaderName::CSeq);
        let v = v.trim_matches([' ', '\t']);
        let end = v
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .ok_or_else(err)?;
        let num = &v[..end];
        let seq = parse_small_number(num, (1 << 31) - 1).ok_or_else(err)?;
        let m = v[end..].trim_start_matches([' ', '\t']);
        if m.len() == v[end..].len() {
            return Err(err());
        }
        let method = Method::parse(m).map_err(|_| err())?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Parses `1*DIGIT` not above `max` (leading zeros allowed).
pub(crate) fn parse_small_number(s: &str, max: u32) -> Option<u32> {
    let s = s.trim_matches([' ', '\t']);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 10 {
        return None;
    }
    let n: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    (n <= u64::from(max)).then_some(n as u32)
}

/// Parses delta-seconds (sec. 25.1) into a u32.
pub(crate) fn parse_delta_seconds(s: &str) -> Option<u32> {
    parse_small_number(s, u32::MAX)
}

/// A media type or range (`application/sdp;charset=x`, `*/*`), lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Type, lower-case.
    pub kind: String,
    /// Subtype, lower-case.
    pub subtype: String,
    /// Parameters.
    pub params: Params,
}

impl MediaType {
    /// Parses `type "/" subtype *(SEMI m-parameter)`.
    pub fn parse(v: &str) -> Result<MediaType, ParseError> {
        let err = || ParseError::InvalidHeader(HeaderName::ContentType);
        let v = v.trim_matches([' ', '\t']);
        let (t, rest) = v.split_once('/').ok_or_else(err)?;
        let t = t.trim_end_matches([' ', '\t']);
        let rest = rest.trim_start_matches([' ', '\t']);
        let end = rest
            .bytes()
            .position(|b| !is_token_char(b))
            .unwrap_or(rest.len());
        let sub = &rest[..end];
        if !is_token(t) || !is_token(sub) {
            return Err(err());
        }
        let params = parse_params(&rest[end..], &HeaderName::ContentType)?;
        Ok(MediaType {
            kind: t.to_ascii_lowercase(),
            subtype: sub.to_ascii_lowercase(),
            params,
        })
    }

    /// Whether this is `kind/subtype` (exact, case-insensitive).
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// Whether this range (possibly with `*`) accepts `kind/subtype`.
    pub fn accepts(&self, kind: &str, subtype: &str) -> bool {
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.kind, self.subtype, self.params)
    }
}

/// `token *(SEMI generic-param)` (Event, Subscription-State).
pub(crate) fn token_with_params(
    v: &str,
    name: &HeaderName,
) -> Result<(String, Params), ParseError> {
    let v = v.trim_matches([' ', '\t']);
    let end = v.bytes().position(|b| !is_token_char(b)).unwrap_or(v.len());
    if end == 0 {
        return Err(ParseError::InvalidHeader(name.clone()));
    }
    Ok((v[..end].to_string(), parse_params(&v[end..], name)?))
}

/// An authentication challenge or credentials (sec. 20.27, 20.44, 25.1
/// `challenge`/`credentials`), with parameters raw: values keep their quotes
/// removed. The digest computation lives in the `auth` module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme (`Digest`, or anything else as received).
    pub scheme: String,
    /// `name=value` pairs in order, quoted values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses `scheme LWS auth-param *(COMMA auth-param)`.
    pub fn parse(v: &str, name: &HeaderName) -> Result<Challenge, ParseError> {
        let err = || ParseError::InvalidHeader(name.clone());
        let v = v.trim_matches([' ', '\t']);
        let end = v.bytes().position(|b| !is_token_char(b)).unwrap_or(v.len());
        if end == 0 {
            return Err(err());
        }
        let scheme = v[..end].to_string();
        let rest = v[end..].trim_matches([' ', '\t']);
        let mut params = Vec::new();
        if !rest.is_empty() {
            for p in split_list(rest, name)? {
                let (n, val) = p.split_once('=').ok_or_else(err)?;
                let n = n.trim_matches([' ', '\t']);
                let val = val.trim_matches([' ', '\t']);
                if !is_token(n) {
                    return Err(err());
                }
                let val = if val.starts_with('"') {
                    let (q, after) = quoted(val).ok_or_else(err)?;
                    if !after.trim().is_empty() {
                        return Err(err());
                    }
                    unquote(q)
                } else {
                    val.to_string()
                };
                params.push((n.to_string(), val));
            }
        }
        Ok(Challenge { scheme, params })
    }

    /// The value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a Date header matches RFC 1123 in GMT (sec. 20.17: `rfc1123-date`, always "GMT").
pub fn is_valid_sip_date(v: &str) -> bool {
    // wkday "," SP 2DIGIT SP month SP 4DIGIT SP 2DIGIT ":" 2DIGIT ":" 2DIGIT SP "GMT"
    let parts: Vec<&str> = v.trim().split(' ').collect();
    if parts.len() != 6 {
        return false;
    }
    let wk = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time_ok = {
        let t: Vec<&str> = parts[4].split(':').collect();
        t.len() == 3 && t.iter().all(|x| digits(x, 2))
    };
    wk.contains(&parts[0])
        && digits(parts[1], 2)
        && months.contains(&parts[2])
        && digits(parts[3], 4)
        && time_ok
        && parts[5] == "GMT"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse("\"A \\\"B\\\"\" <sip:a@b.c>;tag=1", &HeaderName::From).unwrap();
        assert_eq!(n.display_name().unwrap(), "A \"B\"");
        assert_eq!(n.tag(), Some("1"));
        let n =
            NameAddr::parse("caller<sip:caller@example.com>;tag=323", &HeaderName::From).unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n = NameAddr::parse("sip:a@b.c ;  tag = x", &HeaderName::To).unwrap();
        assert_eq!(n.tag(), Some("x"));
        assert!(NameAddr::parse("Bell, Alexander <sip:a@b>", &HeaderName::From).is_err());
        assert!(NameAddr::parse("< sip:a@b >", &HeaderName::To).is_err());
        assert!(NameAddr::parse("\"unterminated <sip:a@b>", &HeaderName::To).is_err());
        assert!(NameAddr::parse("sip:a@b?x=y", &HeaderName::Contact).is_err());
    }

    #[test]
    fn via_with_lws_and_ipv6() {
        let v = Via::parse("SIP  /   2.0 / UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.is_rfc3261_branch());
        let v = Via::parse(
            "SIP/2.0/TCP [2001:db8::9]:5061;branch=z9hG4bK1;rport;received=[2001:db8::1]",
        )
        .unwrap();
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("[2001:db8::1]"));
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(CSeq::parse("0009 INVITE").unwrap().seq, 9);
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
    }

    #[test]
    fn list_splitting_respects_quotes_and_brackets() {
        let l = split_list("\"a,b\" <sip:x@y;p=1,2>, <sip:z@w>", &HeaderName::Contact).unwrap();
        assert_eq!(l.len(), 2);
        assert!(split_list("a,,b", &HeaderName::Allow).is_err());
    }

    #[test]
    fn challenge_params() {
        let c = Challenge::parse(
            "Digest realm=\"x.org\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth,auth-int\"",
            &HeaderName::WwwAuthenticate,
        )
        .unwrap();
        assert_eq!(c.scheme, "Digest");
        assert_eq!(c.param("realm"), Some("x.org"));
        assert_eq!(c.param("qop"), Some("auth,auth-int"));
        assert_eq!(c.param("algorithm"), Some("SHA-256"));
    }

    #[test]
    fn dates() {
        assert!(is_valid_sip_date("Sat, 15 Oct 2005 04:44:56 GMT"));
        assert!(!is_valid_sip_date("Fri, 01 Jan 2010 16:00:00 EST"));
    }
}
