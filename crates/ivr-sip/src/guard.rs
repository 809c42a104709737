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
#[derive(Debug, Clone, Default)]
pub struct TrunkAccess {
    /// A name for logs.
    pub name: String,
    /// Source networks accepted without authentication.
    pub allow: Vec<IpNet>,
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
