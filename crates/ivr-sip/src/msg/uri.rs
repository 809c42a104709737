//! SIP, SIPS and tel URIs (RFC 3261 sec. 19.1, sec. 25.1 `SIP-URI`; RFC 3966 `tel`).
//!
//! Escaped octets (`%41`) are kept as received so a message prints back byte for
//! byte; [`unescape`] decodes them for comparison (RFC 3261 sec. 19.1.4).
//! Other schemes are kept opaque ([`Uri::Other`]) so a header carrying them
//! still parses, and the UAS policy can answer 416 (RFC 3261 sec. 8.2.2.1).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::ParseError;

/// A host: domain name, IPv4 address, or IPv6 reference (`[2001:db8::1]`, RFC 3261 sec. 25.1, RFC 5118).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, as received (compare case-insensitively).
    Domain(String),
    /// A dotted IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address; printed in brackets.
    V6(Ipv6Addr),
}

impl Host {
    /// Parses `host` from RFC 3261 sec. 25.1 (hostname / IPv4address / IPv6reference).
    pub fn parse(s: &str) -> Result<Host, ParseError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(ParseError::InvalidHost)?;
            return inner
                .parse::<Ipv6Addr>()
                .map(Host::V6)
                .map_err(|_| ParseError::InvalidHost);
        }
        if s.is_empty() {
            return Err(ParseError::InvalidHost);
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            if let Ok(v4) = s.parse::<Ipv4Addr>() {
                return Ok(Host::V4(v4));
            }
        }
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            && !s.starts_with('.')
            && !s.starts_with('-');
        if ok {
            Ok(Host::Domain(s.to_string()))
        } else {
            Err(ParseError::InvalidHost)
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Splits `host[:port]`, honouring IPv6 brackets.
pub(crate) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), ParseError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(ParseError::InvalidHost)?;
        let rest = &s[end + 1..];
        let port = if rest.is_empty() {
            None
        } else {
            Some(rest.strip_prefix(':').ok_or(ParseError::InvalidHost)?)
        };
        (&s[..=end], port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::InvalidPort);
            }
            Some(p.parse::<u16>().map_err(|_| ParseError::InvalidPort)?)
        }
    };
    Ok((Host::parse(host)?, port))
}

/// An ordered list of `;name[=value]` parameters, kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// The value of the first parameter named `name` (case-insensitive):
    /// `None` if absent, `Some(None)` for a flag parameter like `lr`.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
    /// Whether a parameter named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// Sets (replacing) a parameter.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        if let Some(slot) = self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            slot.1 = value;
        } else {
            self.0.push((name.to_string(), value));
        }
    }
    /// Removes every parameter named `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// A `sip:` or `sips:` URI (RFC 3261 sec. 19.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, escapes kept as received.
    pub user: Option<String>,
    /// The password part (deprecated but legal), escapes kept.
    pub password: Option<String>,
    /// Host.
    pub host: Host,
    /// Port, if given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`), escapes kept.
    pub params: Params,
    /// The `?h=v&...` header part, raw, without the `?`.
    pub headers: Option<String>,
}

impl SipUri {
    /// A plain `sip:user@host:port` URI.
    pub fn new(user: Option<&str>, host: Host, port: Option<u16>) -> Self {
        SipUri {
            secure: false,
            user: user.map(str::to_string),
            password: None,
            host,
            port,
            params: Params::default(),
            headers: None,
        }
    }

    fn parse_after_scheme(secure: bool, s: &str) -> Result<SipUri, ParseError> {
        if s.is_empty()
            || s.bytes()
                .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"')
        {
            return Err(ParseError::InvalidUri);
        }
        // '@' is legal only in the userinfo part, so the last one ends it.
        let (userinfo, rest) = match s.rfind('@') {
            Some(i) => (Some(&s[..i]), &s[i + 1..]),
            None => (None, s),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p.to_string())),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(ParseError::InvalidUri);
                }
                check_escapes(u)?;
                (Some(u.to_string()), p)
            }
        };
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_string())),
            None => (rest, None),
        };
        let mut parts = rest.split(';');
        let hostport = parts.next().unwrap_or("");
        let (host, port) = parse_hostport(hostport)?;
        let mut params = Params::default();
        for p in parts {
            if p.is_empty() {
                return Err(ParseError::InvalidUri);
            }
            check_escapes(p)?;
            match p.split_once('=') {
                Some((n, v)) if !n.is_empty() => {
                    params.0.push((n.to_string(), Some(v.to_string())))
                }
                Some(_) => return Err(ParseError::InvalidUri),
                None => params.0.push((p.to_string(), None)),
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// The user part with escapes decoded (RFC 3261 sec. 19.1.4 comparison form).
    pub fn user_unescaped(&self) -> Option<Vec<u8>> {
        self.user.as_deref().map(unescape)
    }

    /// The `transport` URI parameter, lower-cased.
    pub fn transport(&self) -> Option<String> {
        self.params
            .get("transport")
            .flatten()
            .map(|t| t.to_ascii_lowercase())
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// A URI as found in a Request-URI or name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` / `sips:`.
    Sip(SipUri),
    /// `tel:` (RFC 3966), the number and parameters kept raw.
    Tel(String),
    /// Any other scheme, kept opaque.
    Other {
        /// The scheme as received.
        scheme: String,
        /// Everything after the first `:`.
        rest: String,
    },
}

impl Uri {
    /// Parses an absolute URI (RFC 3261 sec. 25.1 `Request-URI`).
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let (scheme, rest) = s.split_once(':').ok_or(ParseError::InvalidUri)?;
        let scheme_ok = scheme
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
        if !scheme_ok {
            return Err(ParseError::InvalidUri);
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_after_scheme(false, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_after_scheme(true, rest).map(Uri::Sip)
        } else {
            if rest.is_empty() || rest.bytes().any(|b| b <= b' ' || b == b'<' || b == b'>') {
                return Err(ParseError::InvalidUri);
            }
            if scheme.eq_ignore_ascii_case("tel") {
                Ok(Uri::Tel(rest.to_string()))
            } else {
                Ok(Uri::Other {
                    scheme: scheme.to_string(),
                    rest: rest.to_string(),
                })
            }
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the scheme is one this stack understands (sip, sips, tel).
    pub fn is_known_scheme(&self) -> bool {
        !matches!(self, Uri::Other { .. })
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(s) => write!(f, "{s}"),
            Uri::Tel(t) => write!(f, "tel:{t}"),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

fn check_escapes(s: &str) -> Result<(), ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(ParseError::InvalidUri);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Decodes `%HH` escapes; malformed escapes are kept literally.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_with_user_params_and_headers_round_trips() {
        let s = "sip:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi";
        let u = Uri::parse(s).unwrap();
        let sip = u.as_sip().unwrap();
        assert_eq!(sip.user.as_deref(), Some("alice"));
        assert_eq!(sip.password.as_deref(), Some("secret"));
        assert_eq!(sip.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(sip.port, Some(5061));
        assert_eq!(sip.transport().as_deref(), Some("tcp"));
        assert!(sip.params.contains("lr"));
        assert_eq!(u.to_string(), s);
    }

    #[test]
    fn user_part_may_hold_semicolons_and_escaped_at() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        let sip = u.as_sip().unwrap();
        assert_eq!(sip.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(sip.host, Host::Domain("example.com".into()));
        assert_eq!(sip.user_unescaped().unwrap(), b"user;par=u@example.net");
    }

    #[test]
    fn tel_and_unknown_schemes_are_kept() {
        assert_eq!(
            Uri::parse("tel:+4512345678").unwrap(),
            Uri::Tel("+4512345678".into())
        );
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert!(!u.is_known_scheme());
    }

    #[test]
    fn malformed_uris_are_rejected() {
        for s in [
            "<sip:a@b>",
            "sip:a@b c",
            "sip:",
            "sip:%zz@host",
            "1abc:x",
            "sip:host:99999",
        ] {
            assert!(Uri::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn unescape_handles_trailing_percent() {
        assert_eq!(unescape("a%41%"), b"aA%");
        assert_eq!(unescape("%00"), vec![0]);
    }
}
