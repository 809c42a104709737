//! HTTP Digest authentication as SIP uses it (RFC 3261 sec. 22.4, RFC 2617
//! sec. 3, RFC 7616 sec. 3.4 for SHA-256 and SHA-512/256, RFC 8760 for SIP).
//!
//! Client side (trunk registration, 401/407 to our INVITE):
//! [`Challenge::parse`] a `WWW-Authenticate`/`Proxy-Authenticate` value (or
//! [`best_challenge`] among several), then [`respond`] builds the
//! [`Credentials`] whose `Display` is the `Authorization`/`Proxy-Authorization`
//! value.
//!
//! Server side (inbound protection): [`NonceIssuer::challenge`] issues a
//! challenge whose nonce carries its issue time and an HMAC-SHA-256 (RFC 2104)
//! over it with a caller-supplied secret, so no nonce table is kept;
//! [`NonceIssuer::verify`] checks [`Credentials::parse`]d credentials and
//! reports a correct answer to an expired nonce as [`AuthError::StaleNonce`]
//! (answer with a fresh challenge with `stale=true`, RFC 7616 sec. 3.3).
//!
//! Sans-IO: the caller passes the time (seconds since an epoch of its choice,
//! Unix time normally) and the client nonce (`cnonce`), so nothing here reads a
//! clock or draws random numbers (except [`NonceIssuer::with_random_secret`],
//! which draws its secret once from the OS CSPRNG).
//!
//! Not done: `userhash` (RFC 7616 sec. 3.4.4) and nonce-count replay tracking
//! on the server (nonces are stateless and expire instead).

use std::fmt::{self, Write as _};

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// Why a challenge or credentials could not be used.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header value does not use the `Digest` scheme.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// The parameter list is malformed at this byte offset (unterminated
    /// quoted string, missing `=`, junk between parameters).
    #[error("malformed digest parameter list at byte {0}")]
    Malformed(usize),
    /// A parameter appears twice (RFC 7616 sec. 3.3 forbids it).
    #[error("digest parameter {0} appears twice")]
    DuplicateParam(String),
    /// A mandatory parameter is missing (`realm`, `nonce`; and `username`,
    /// `uri`, `response` in credentials; `cnonce`/`nc` when `qop` is given).
    #[error("digest parameter {0} is missing")]
    MissingParam(&'static str),
    /// The algorithm is not MD5, SHA-256 or SHA-512-256 (or a `-sess` variant).
    #[error("digest algorithm {0} is not supported")]
    UnsupportedAlgorithm(String),
    /// The challenge offers `qop` values, none of them `auth` or `auth-int`.
    #[error("none of the offered qop values is supported")]
    UnsupportedQop,
    /// `nc` is not 8 hex digits.
    #[error("nonce count is not 8 hex digits")]
    BadNonceCount,
    /// Server side: the realm in the credentials is not ours.
    #[error("credentials are for another realm")]
    RealmMismatch,
    /// Server side: the credentials use another algorithm than we challenged with.
    #[error("credentials use another algorithm than the challenge")]
    AlgorithmMismatch,
    /// Server side: the nonce was not issued by us (bad MAC, malformed, or
    /// from the future).
    #[error("nonce was not issued by this server")]
    ForeignNonce,
    /// Server side: the response digest is wrong (wrong password, or the
    /// request was altered).
    #[error("digest response does not match")]
    WrongResponse,
    /// Server side: the response is right but the nonce has expired; challenge
    /// again with `stale=true` so the client retries without asking the user.
    #[error("nonce has expired")]
    StaleNonce,
}

/// Digest algorithm (RFC 7616 sec. 3.3, RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// `MD5`, the default when a challenge names none.
    #[default]
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ];

    /// The token used in headers.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Parse a token (case-insensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| s.eq_ignore_ascii_case(a.as_str()))
    }

    /// Whether this is a `-sess` variant (A1 includes nonce and cnonce).
    #[must_use]
    pub fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Strength rank for choosing among challenges (higher is stronger).
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 0,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 1,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 2,
        }
    }

    /// Lowercase hex of the hash of `parts` joined by `:`.
    fn h(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => run::<Sha512_256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality of protection (RFC 2617 sec. 3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: authentication of method and URI.
    Auth,
    /// `auth-int`: also the message body.
    AuthInt,
}

impl Qop {
    /// The token used in headers.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One `name=value` of a digest parameter list (name lowercased, quotes and
/// escapes removed from the value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    name: String,
    value: String,
}

/// Split `Digest a=b, c="d"` into the scheme and its parameters
/// (RFC 7235 sec. 2.1 / RFC 3261 sec. 25.1: LWS around `=` and `,`,
/// quoted-strings with `\` escapes, commas inside quotes).
fn parse_params(input: &str) -> Result<Vec<Param>, AuthError> {
    let s = input.trim_start();
    let off0 = input.len() - s.len();
    let scheme_end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
    if !s[..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest);
    }
    let b = input.as_bytes();
    let mut i = off0 + scheme_end;
    let mut out: Vec<Param> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    loop {
        // Separators: white space and empty list items.
        loop {
            skip_ws(&mut i);
            if i < b.len() && b[i] == b',' {
                i += 1;
            } else {
                break;
            }
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_token_byte(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(AuthError::Malformed(i));
        }
        let name = input[start..i].to_ascii_lowercase();
        skip_ws(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err(AuthError::Malformed(i));
        }
        i += 1;
        skip_ws(&mut i);
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            loop {
                match b.get(i) {
                    None => return Err(AuthError::Malformed(i)),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let Some(c) = b.get(i + 1) else {
                            return Err(AuthError::Malformed(i));
                        };
                        v.push(*c);
                        i += 2;
                    }
                    Some(c) => {
                        v.push(*c);
                        i += 1;
                    }
                }
            }
            // Escapes only remove ASCII backslashes, so the bytes stay UTF-8.
            String::from_utf8(v).map_err(|_| AuthError::Malformed(i))?
        } else {
            let vs = i;
            while i < b.len() && is_token_byte(b[i]) {
                i += 1;
            }
            if i == vs {
                return Err(AuthError::Malformed(i));
            }
            input[vs..i].to_owned()
        };
        if out.iter().any(|p| p.name == name) {
            return Err(AuthError::DuplicateParam(name));
        }
        out.push(Param { name, value });
        skip_ws(&mut i);
        match b.get(i) {
            None => break,
            Some(b',') => i += 1,
            Some(_) => return Err(AuthError::Malformed(i)),
        }
    }
    Ok(out)
}

/// The parameter list of an already split header: names lowercased,
/// duplicates refused.
fn param_list<N: AsRef<str>, V: AsRef<str>>(
    scheme: &str,
    params: impl IntoIterator<Item = (N, V)>,
) -> Result<Vec<Param>, AuthError> {
    if !scheme.trim().eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest);
    }
    let mut out: Vec<Param> = Vec::new();
    for (n, v) in params {
        let name = n.as_ref().trim().to_ascii_lowercase();
        if out.iter().any(|p| p.name == name) {
            return Err(AuthError::DuplicateParam(name));
        }
        out.push(Param {
            name,
            value: v.as_ref().to_owned(),
        });
    }
    Ok(out)
}

/// RFC 3261 sec. 25.1 `token` characters (plus `/` which real servers put
/// unquoted in `nonce` and `opaque` values).
fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~/:@".contains(&c)
}

/// Write `"value"` with `"` and `\` escaped.
fn quoted(f: &mut fmt::Formatter<'_>, v: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in v.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

fn take(params: &mut Vec<Param>, name: &str) -> Option<String> {
    let i = params.iter().position(|p| p.name == name)?;
    Some(params.remove(i).value)
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` digest challenge
/// (RFC 2617 sec. 3.2.1, RFC 7616 sec. 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space, shown to users and part of A1.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo back.
    pub opaque: Option<String>,
    /// `stale=true`: the previous nonce expired but the password was right.
    pub stale: bool,
    /// Hash algorithm (MD5 when absent).
    pub algorithm: Algorithm,
    /// Offered qop values; empty means the RFC 2069 form without qop.
    pub qop: Vec<Qop>,
    /// `domain`, raw.
    pub domain: Option<String>,
    /// Other parameters (`charset`, `userhash`, extensions), names lowercased.
    pub other: Vec<(String, String)>,
}

impl Challenge {
    /// Parse a challenge header value.
    ///
    /// # Errors
    /// [`AuthError::NotDigest`], [`AuthError::Malformed`],
    /// [`AuthError::DuplicateParam`], [`AuthError::MissingParam`] (realm,
    /// nonce), [`AuthError::UnsupportedAlgorithm`], [`AuthError::UnsupportedQop`].
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        Self::from_list(parse_params(value)?)
    }

    /// Build from a header already split into scheme and `(name, value)`
    /// pairs with quotes removed (as the SIP message parser gives them).
    ///
    /// # Errors
    /// As [`Challenge::parse`].
    pub fn from_params<N: AsRef<str>, V: AsRef<str>>(
        scheme: &str,
        params: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, AuthError> {
        Self::from_list(param_list(scheme, params)?)
    }

    fn from_list(mut p: Vec<Param>) -> Result<Self, AuthError> {
        let realm = take(&mut p, "realm").ok_or(AuthError::MissingParam("realm"))?;
        let nonce = take(&mut p, "nonce").ok_or(AuthError::MissingParam("nonce"))?;
        let algorithm = match take(&mut p, "algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a).ok_or(AuthError::UnsupportedAlgorithm(a))?,
        };
        let qop = match take(&mut p, "qop") {
            None => Vec::new(),
            Some(list) => {
                let q: Vec<Qop> = list
                    .split(',')
                    .filter_map(|t| Qop::parse(t.trim()))
                    .collect();
                if q.is_empty() {
                    return Err(AuthError::UnsupportedQop);
                }
                q
            }
        };
        Ok(Challenge {
            realm,
            nonce,
            opaque: take(&mut p, "opaque"),
            stale: take(&mut p, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            algorithm,
            qop,
            domain: take(&mut p, "domain"),
            other: p.into_iter().map(|p| (p.name, p.value)).collect(),
        })
    }
}

/// Pick the challenge to answer among several header values (RFC 8760
/// sec. 2.4 lets a server offer one per algorithm): the strongest algorithm we
/// support; values we cannot use are skipped.
///
/// # Errors
/// The error of the last unusable value, or [`AuthError::NotDigest`] if there
/// were none.
pub fn best_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Challenge, AuthError> {
    let mut best: Option<Challenge> = None;
    let mut last_err = AuthError::NotDigest;
    for v in values {
        match Challenge::parse(v) {
            Ok(c) => {
                if best
                    .as_ref()
                    .is_none_or(|b| c.algorithm.strength() > b.algorithm.strength())
                {
                    best = Some(c);
                }
            }
            Err(e) => last_err = e,
        }
    }
    best.ok_or(last_err)
}

impl fmt::Display for Challenge {
    /// The header value, e.g. `Digest realm="x", nonce="y", algorithm=MD5, qop="auth"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest realm=")?;
        quoted(f, &self.realm)?;
        if let Some(d) = &self.domain {
            f.write_str(", domain=")?;
            quoted(f, d)?;
        }
        f.write_str(", nonce=")?;
        quoted(f, &self.nonce)?;
        if let Some(o) = &self.opaque {
            f.write_str(", opaque=")?;
            quoted(f, o)?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if !self.qop.is_empty() {
            f.write_str(", qop=\"")?;
            for (i, q) in self.qop.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                f.write_str(q.as_str())?;
            }
            f.write_char('"')?;
        }
        for (n, v) in &self.other {
            write!(f, ", {n}=")?;
            quoted(f, v)?;
        }
        Ok(())
    }
}

/// `Authorization` / `Proxy-Authorization` digest credentials
/// (RFC 2617 sec. 3.2.2, RFC 3261 sec. 22.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Realm from the challenge.
    pub realm: String,
    /// Nonce from the challenge.
    pub nonce: String,
    /// The Request-URI as the client sent it.
    pub uri: String,
    /// The response digest, lowercase hex.
    pub response: String,
    /// Algorithm; `None` if the credentials did not name one (means MD5).
    pub algorithm: Option<Algorithm>,
    /// Client nonce (with qop).
    pub cnonce: Option<String>,
    /// Opaque value echoed from the challenge.
    pub opaque: Option<String>,
    /// Chosen qop, if the challenge offered any.
    pub qop: Option<Qop>,
    /// Nonce count (with qop), printed as 8 hex digits.
    pub nc: Option<u32>,
}

impl Credentials {
    /// Parse a credentials header value (server side).
    ///
    /// # Errors
    /// [`AuthError::NotDigest`], [`AuthError::Malformed`],
    /// [`AuthError::DuplicateParam`], [`AuthError::MissingParam`],
    /// [`AuthError::UnsupportedAlgorithm`], [`AuthError::UnsupportedQop`],
    /// [`AuthError::BadNonceCount`].
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        Self::from_list(parse_params(value)?)
    }

    /// Build from a header already split into scheme and `(name, value)`
    /// pairs with quotes removed (as the SIP message parser gives them).
    ///
    /// # Errors
    /// As [`Credentials::parse`].
    pub fn from_params<N: AsRef<str>, V: AsRef<str>>(
        scheme: &str,
        params: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, AuthError> {
        Self::from_list(param_list(scheme, params)?)
    }

    fn from_list(mut p: Vec<Param>) -> Result<Self, AuthError> {
        let mut need = |n: &'static str| take(&mut p, n).ok_or(AuthError::MissingParam(n));
        let username = need("username")?;
        let realm = need("realm")?;
        let nonce = need("nonce")?;
        let uri = need("uri")?;
        let response = need("response")?;
        let algorithm = match take(&mut p, "algorithm") {
            None => None,
            Some(a) => Some(Algorithm::parse(&a).ok_or(AuthError::UnsupportedAlgorithm(a))?),
        };
        let qop = match take(&mut p, "qop") {
            None => None,
            Some(q) => Some(Qop::parse(&q).ok_or(AuthError::UnsupportedQop)?),
        };
        let cnonce = take(&mut p, "cnonce");
        let nc = match take(&mut p, "nc") {
            None => None,
            Some(n) if n.len() == 8 => {
                Some(u32::from_str_radix(&n, 16).map_err(|_| AuthError::BadNonceCount)?)
            }
            Some(_) => return Err(AuthError::BadNonceCount),
        };
        if qop.is_some() {
            if cnonce.is_none() {
                return Err(AuthError::MissingParam("cnonce"));
            }
            if nc.is_none() {
                return Err(AuthError::MissingParam("nc"));
            }
        }
        Ok(Credentials {
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            cnonce,
            opaque: take(&mut p, "opaque"),
            qop,
            nc,
        })
    }
}

impl fmt::Display for Credentials {
    /// The header value, parameters in the order of RFC 3261 sec. 22.4's examples.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest username=")?;
        quoted(f, &self.username)?;
        f.write_str(", realm=")?;
        quoted(f, &self.realm)?;
        f.write_str(", nonce=")?;
        quoted(f, &self.nonce)?;
        f.write_str(", uri=")?;
        quoted(f, &self.uri)?;
        f.write_str(", response=")?;
        quoted(f, &self.response)?;
        if let Some(a) = self.algorithm {
            write!(f, ", algorithm={a}")?;
        }
        if let Some(c) = &self.cnonce {
            f.write_str(", cnonce=")?;
            quoted(f, c)?;
        }
        if let Some(o) = &self.opaque {
            f.write_str(", opaque=")?;
            quoted(f, o)?;
        }
        if let Some(q) = self.qop {
            write!(f, ", qop={q}")?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        Ok(())
    }
}

/// The request being authorised.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// SIP method, e.g. `REGISTER` (for an ACK/CANCEL, that of the INVITE,
    /// RFC 3261 sec. 22.4).
    pub method: &'a str,
    /// The Request-URI, exactly as put on the request line.
    pub uri: &'a str,
    /// The message body (only hashed for `qop=auth-int`).
    pub body: &'a [u8],
}

/// The secret a server checks against: the password, or H(A1) =
/// H(username:realm:password) as stored by the user database.
#[derive(Clone, Copy)]
pub enum Secret<'a> {
    /// Plain password.
    Password(&'a str),
    /// Precomputed H(username:realm:password), lowercase hex, for the
    /// algorithm in use.
    Ha1(&'a str),
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

struct Inputs<'a> {
    alg: Algorithm,
    username: &'a str,
    realm: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    nc: u32,
    qop: Option<Qop>,
}

fn compute(i: &Inputs<'_>, secret: Secret<'_>, req: &Request<'_>) -> String {
    let alg = i.alg;
    let mut ha1 = match secret {
        Secret::Password(pw) => alg.h(&[i.username.as_bytes(), i.realm.as_bytes(), pw.as_bytes()]),
        Secret::Ha1(h) => h.to_ascii_lowercase(),
    };
    if alg.is_sess() {
        ha1 = alg.h(&[ha1.as_bytes(), i.nonce.as_bytes(), i.cnonce.as_bytes()]);
    }
    let ha2 = match i.qop {
        Some(Qop::AuthInt) => {
            let hb = alg.h(&[req.body]);
            alg.h(&[req.method.as_bytes(), req.uri.as_bytes(), hb.as_bytes()])
        }
        _ => alg.h(&[req.method.as_bytes(), req.uri.as_bytes()]),
    };
    match i.qop {
        Some(q) => {
            let nc = format!("{:08x}", i.nc);
            alg.h(&[
                ha1.as_bytes(),
                i.nonce.as_bytes(),
                nc.as_bytes(),
                i.cnonce.as_bytes(),
                q.as_str().as_bytes(),
                ha2.as_bytes(),
            ])
        }
        None => alg.h(&[ha1.as_bytes(), i.nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// Answer a challenge (client side, RFC 2617 sec. 3.2.2).
///
/// Uses `qop=auth` when offered (else `auth-int`, hashing `req.body`; else the
/// RFC 2069 form). `cnonce` must be fresh and unpredictable per nonce (the
/// caller draws it); `nc` counts requests made with this nonce, from 1.
///
/// # Errors
/// None today for a parsed [`Challenge`]; the `Result` leaves room for
/// challenges we cannot answer (e.g. `userhash` required).
pub fn respond(
    challenge: &Challenge,
    req: &Request<'_>,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<Credentials, AuthError> {
    let qop = if challenge.qop.contains(&Qop::Auth) {
        Some(Qop::Auth)
    } else {
        challenge.qop.first().copied()
    };
    let inputs = Inputs {
        alg: challenge.algorithm,
        username,
        realm: &challenge.realm,
        nonce: &challenge.nonce,
        cnonce,
        nc,
        qop,
    };
    let response = compute(&inputs, Secret::Password(password), req);
    Ok(Credentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: req.uri.to_owned(),
        response,
        algorithm: Some(challenge.algorithm),
        cnonce: qop.map(|_| cnonce.to_owned()),
        opaque: challenge.opaque.clone(),
        qop,
        nc: qop.map(|_| nc),
    })
}

/// HMAC-SHA-256 (RFC 2104) for nonce integrity.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compare without an early exit, so response timing does not leak how many
/// leading characters matched.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    }) == 0
}

/// Issues and checks stateless nonces for one realm (server side).
///
/// Nonce = 16 hex digits of the issue time, then the first 128 bits of
/// HMAC-SHA-256(secret, time ":" realm) in hex.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: Vec<u8>,
    realm: String,
    algorithm: Algorithm,
    lifetime_secs: u64,
}

impl fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("realm", &self.realm)
            .field("algorithm", &self.algorithm)
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// An issuer for `realm` with a secret (at least 16 random bytes, kept
    /// across restarts if nonces should survive them), an algorithm, and how
    /// long a nonce stays fresh.
    #[must_use]
    pub fn new(secret: &[u8], realm: &str, algorithm: Algorithm, lifetime_secs: u64) -> Self {
        NonceIssuer {
            secret: secret.to_vec(),
            realm: realm.to_owned(),
            algorithm,
            lifetime_secs,
        }
    }

    /// An issuer whose secret is 32 bytes from the OS-seeded CSPRNG
    /// ([`crate::ids::secure_bytes`]): nonces cannot be forged or computed
    /// ahead by anyone, and do not survive a restart (a client then gets a
    /// fresh challenge).
    #[must_use]
    pub fn with_random_secret(realm: &str, algorithm: Algorithm, lifetime_secs: u64) -> Self {
        Self::new(
            &crate::ids::secure_bytes::<32>(),
            realm,
            algorithm,
            lifetime_secs,
        )
    }

    fn mac(&self, ts: u64) -> String {
        let msg = format!("{ts:016x}:{}", self.realm);
        hex(&hmac_sha256(&self.secret, msg.as_bytes())[..16])
    }

    /// A fresh challenge (`qop="auth"`) issued at `now` (seconds); `stale`
    /// after [`AuthError::StaleNonce`].
    #[must_use]
    pub fn challenge(&self, now: u64, stale: bool) -> Challenge {
        Challenge {
            realm: self.realm.clone(),
            nonce: format!("{now:016x}{}", self.mac(now)),
            opaque: None,
            stale,
            algorithm: self.algorithm,
            qop: vec![Qop::Auth],
            domain: None,
            other: Vec::new(),
        }
    }

    /// Check credentials against the request and the user's secret at time
    /// `now` (seconds). The caller has looked the user up by
    /// `creds.username` and should check that `creds.uri` names the
    /// Request-URI.
    ///
    /// # Errors
    /// [`AuthError::RealmMismatch`], [`AuthError::AlgorithmMismatch`],
    /// [`AuthError::ForeignNonce`], [`AuthError::WrongResponse`],
    /// [`AuthError::StaleNonce`] (the only one to answer with `stale=true`).
    pub fn verify(
        &self,
        creds: &Credentials,
        method: &str,
        body: &[u8],
        secret: Secret<'_>,
        now: u64,
    ) -> Result<(), AuthError> {
        if creds.realm != self.realm {
            return Err(AuthError::RealmMismatch);
        }
        if creds.algorithm.unwrap_or_default() != self.algorithm {
            return Err(AuthError::AlgorithmMismatch);
        }
        let n = creds.nonce.as_bytes();
        if n.len() != 48 || !n.iter().all(u8::is_ascii_hexdigit) {
            return Err(AuthError::ForeignNonce);
        }
        let ts = creds
            .nonce
            .get(..16)
            .and_then(|t| u64::from_str_radix(t, 16).ok())
            .ok_or(AuthError::ForeignNonce)?;
        let mac = creds.nonce.get(16..).ok_or(AuthError::ForeignNonce)?;
        if !ct_eq(mac.as_bytes(), self.mac(ts).as_bytes()) || ts > now.saturating_add(60) {
            return Err(AuthError::ForeignNonce);
        }
        let inputs = Inputs {
            alg: self.algorithm,
            username: &creds.username,
            realm: &creds.realm,
            nonce: &creds.nonce,
            cnonce: creds.cnonce.as_deref().unwrap_or(""),
            nc: creds.nc.unwrap_or(0),
            qop: creds.qop,
        };
        let req = Request {
            method,
            uri: &creds.uri,
            body,
        };
        let expected = compute(&inputs, secret, &req);
        if !ct_eq(expected.as_bytes(), creds.response.as_bytes()) {
            return Err(AuthError::WrongResponse);
        }
        if now.saturating_sub(ts) > self.lifetime_secs {
            return Err(AuthError::StaleNonce);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_keep_commas_and_unescape() {
        let p = parse_params(r#"Digest realm="a, \"b\" \\c", nonce=xyz ,, opaque="""#).unwrap();
        assert_eq!(p[0].value, r#"a, "b" \c"#);
        assert_eq!(p[1].value, "xyz");
        assert_eq!(p[2].value, "");
    }

    #[test]
    fn malformed_lists_are_errors_not_panics() {
        for bad in [
            "Digest realm=\"open",
            "Digest realm",
            "Digest =x",
            "Digest realm=\"a\" nonce=\"b\"",
            "Digest realm=\"a\\",
            "Basic realm=\"a\"",
            "",
        ] {
            assert!(parse_params(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hmac_matches_rfc4231_style_vector() {
        // python3: hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", sha256)
        assert_eq!(
            hex(&hmac_sha256(
                b"key",
                b"The quick brown fox jumps over the lazy dog"
            )),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn issuers_with_random_secrets_issue_different_nonces_for_the_same_time() {
        let a = NonceIssuer::with_random_secret("r", Algorithm::Sha256, 300);
        let b = NonceIssuer::with_random_secret("r", Algorithm::Sha256, 300);
        let (na, nb) = (
            a.challenge(1_000, false).nonce,
            b.challenge(1_000, false).nonce,
        );
        assert_ne!(na, nb);
        assert_ne!(a.mac(1_000), b.mac(1_000));
    }

    #[test]
    fn challenge_prints_and_reparses() {
        let c = NonceIssuer::new(
            b"0123456789abcdef",
            "ivr.example.dk",
            Algorithm::Sha256,
            300,
        )
        .challenge(1_700_000_000, true);
        let back = Challenge::parse(&c.to_string()).unwrap();
        assert_eq!(back, c);
        assert!(c.to_string().contains("stale=true"));
    }
}
