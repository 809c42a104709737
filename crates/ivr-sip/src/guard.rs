//! Inbound protection: which sources may open dialogs, and how fast.
//!
//! - Per-trunk source allowlists ([`IpNet`]), and/or digest challenges
//!   (RFC 3261 sec. 22.2, via the [`DigestVerifier`] seam); a request from
//!   anywhere else is answered 403 (sec. 21.4.4).
//! - A per-source token bucket ([`RateLimiter`]) for requests outside
//!   dialogs. Requests inside dialogs and all responses are never limited,
//!   so a flood cannot starve calls in progress. Over the limit, requests
//!   are dropped silently: answering a flood would amplify it.
//!   The source table is bounded (`max_sources`): when full, idle sources are
//!   evicted; if none are idle, the new source is treated as over its limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::msg::{Challenge, Request};

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

/// Why an [`IpNet`] did not parse.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    /// The address part is not an IP address.
    #[error("not an IP address")]
    Address,
    /// The prefix is not a number within the address width.
    #[error("bad prefix length")]
    Prefix,
}

impl std::str::FromStr for IpNet {
    type Err = IpNetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| IpNetError::Address)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p.trim().parse::<u8>().map_err(|_| IpNetError::Prefix)?,
        };
        if prefix > max {
            return Err(IpNetError::Prefix);
        }
        Ok(IpNet { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    /// From a string: `192.0.2.0/24`, `2001:db8::/32` or a bare address.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(|e| {
            serde::de::Error::custom(format!("`{s}` is not an address or CIDR network: {e}"))
        })
    }
}

impl IpNet {
    /// Whether `ip` lies in this network (IPv4-mapped IPv6 compares as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// One trunk allowed to send us calls.
///
/// A request outside a dialog belongs to the first trunk whose `allow`
/// holds its source address; a trunk with credentials also needs a valid
/// digest answer (RFC 3261 sec. 22.2). A trunk with credentials and no
/// `allow` networks takes authenticated requests from any source.
#[derive(Debug, Clone, Default)]
pub struct TrunkAccess {
    /// A name for logs and metrics.
    pub name: String,
    /// Source networks of the trunk.
    pub allow: Vec<IpNet>,
    /// Digest credentials the trunk must answer a challenge with; `None`:
    /// the source address alone admits.
    pub digest: Option<TrunkCredentials>,
    /// Concurrent calls from this trunk before 503 (0: only the endpoint's
    /// `max_calls`).
    pub max_calls: usize,
    /// The trunk's own token bucket for requests outside dialogs (all its
    /// sources together); `None`: not limited beyond the endpoint's limits.
    pub rate: Option<RateLimit>,
}

/// A trunk's digest user name and password (the password never prints).
#[derive(Clone, Default)]
pub struct TrunkCredentials {
    /// User name expected in the Authorization header.
    pub username: String,
    /// The shared secret.
    pub password: String,
}

impl std::fmt::Debug for TrunkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrunkCredentials({}, <secret>)", self.username)
    }
}

/// What happens to a request outside a dialog from a source no trunk
/// covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownSource {
    /// Answer 403 Forbidden (one response per request: no amplification,
    /// and the same answer for every number).
    #[default]
    Forbidden,
    /// Drop it without a reply (the port looks closed to a scanner).
    Silence,
}

/// Counts of the inbound guard's decisions, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    /// Requests from sources outside every trunk answered 403.
    pub forbidden: u64,
    /// Requests from sources outside every trunk dropped without reply.
    pub ignored: u64,
    /// Requests outside dialogs dropped by a rate limit (trunk or outside).
    pub rate_limited: u64,
    /// Challenges (401) sent.
    pub challenged: u64,
    /// INVITEs refused 503 at a trunk's own call limit.
    pub trunk_busy: u64,
}

/// One token bucket; time is passed in.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    cfg: RateLimit,
    bucket: Bucket,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(cfg: RateLimit, now: Instant) -> Self {
        TokenBucket {
            cfg,
            bucket: Bucket {
                tokens: cfg.burst,
                last: now,
            },
        }
    }
    /// Takes one token; `false` means over the limit.
    pub fn allow(&mut self, now: Instant) -> bool {
        RateLimiter::refill(&self.cfg, &mut self.bucket, now);
        if self.bucket.tokens >= 1.0 {
            self.bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Verifies digest credentials on inbound requests (RFC 3261 sec. 22.4). The
/// computation belongs to the `auth` module; the endpoint only asks.
pub trait DigestVerifier: Send {
    /// A fresh WWW-Authenticate value (new nonce) for a 401.
    fn challenge(&mut self, now: Instant) -> String;
    /// Whether the credentials authorise this request.
    fn verify(&mut self, req: &Request, credentials: &Challenge, now: Instant) -> bool;
}

/// The inbound access decision for a request outside a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Process it.
    Allowed,
    /// Answer 401 with this WWW-Authenticate value.
    Challenge(String),
    /// Answer 403.
    Forbidden,
}

/// Per-source token bucket settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per source.
    pub per_second: f64,
    /// Bucket size (burst).
    pub burst: f64,
    /// Bound on tracked sources.
    pub max_sources: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 20.0,
            burst: 50.0,
            max_sources: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by source address; time is passed in.
#[derive(Debug)]
pub struct RateLimiter {
    cfg: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// A limiter.
    pub fn new(cfg: RateLimit) -> Self {
        RateLimiter {
            cfg,
            buckets: HashMap::new(),
        }
    }

    fn refill(cfg: &RateLimit, b: &mut Bucket, now: Instant) {
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + dt * cfg.per_second).min(cfg.burst);
        b.last = now;
    }

    /// Takes one token for `src`; `false` means over the limit (drop).
    pub fn allow(&mut self, src: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&src) && self.buckets.len() >= self.cfg.max_sources {
            let cfg = self.cfg;
            let full_after = Duration::from_secs_f64(cfg.burst / cfg.per_second.max(1e-9));
            self.buckets
                .retain(|_, b| now.saturating_duration_since(b.last) < full_after);
            if self.buckets.len() >= self.cfg.max_sources {
                return false;
            }
        }
        let cfg = self.cfg;
        let b = self.buckets.entry(src).or_insert(Bucket {
            tokens: cfg.burst,
            last: now,
        });
        Self::refill(&cfg, b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let n: IpNet = "192.0.2.0/24".parse().unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        let n6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(n6.contains("2001:db8:1::5".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
    }

    #[test]
    fn bucket_allows_burst_then_refills_with_time() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
            max_sources: 2,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..3).all(|_| l.allow(ip, t0)));
        assert!(!l.allow(ip, t0));
        assert!(l.allow(ip, t0 + Duration::from_millis(500)));
        // Table bound: a third busy source is refused, not tracked.
        assert!(l.allow("192.0.2.2".parse().unwrap(), t0));
        assert!(!l.allow(
            "192.0.2.3".parse().unwrap(),
            t0 + Duration::from_millis(500)
        ));
    }
}
