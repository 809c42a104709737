//! Who is asking: the [`Authed`] extractor reads a session cookie
//! (`ivr_session`: HttpOnly, SameSite=Strict, Secure unless configured off)
//! or an API token (`Authorization: Bearer ivr_...`). A change made with a
//! cookie (any method but GET/HEAD) must carry the session's CSRF token in
//! `X-CSRF-Token`; a token request needs none (browsers never add it on
//! their own). Anything else is 401 with nothing more said.
//!
//! Logins are rate-limited per user name and per client address
//! ([`LoginLimiter`]): after `login_failures` failures in `login_window_s`
//! further attempts get 429 until the window has passed.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};

use super::accounts::Operator;
use super::api::ApiError;
use super::ConsoleState;

/// The session cookie's name.
pub const COOKIE: &str = "ivr_session";

/// An authenticated request.
#[derive(Debug, Clone)]
pub struct Authed {
    /// The account.
    pub op: Operator,
    /// The session's CSRF token (None: authenticated by API token).
    pub csrf: Option<String>,
    /// The session cookie's value (None: API token).
    pub session: Option<String>,
}

/// The value of cookie `name` in a request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<ConsoleState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let now = state.now();
        if let Some(bearer) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            let op = state
                .accounts()
                .token(bearer.trim())
                .await
                .map_err(ApiError::internal)?
                .ok_or(ApiError::Unauthenticated)?;
            return Ok(Authed {
                op,
                csrf: None,
                session: None,
            });
        }
        let token = cookie(parts, COOKIE).ok_or(ApiError::Unauthenticated)?;
        let (op, csrf) = state
            .accounts()
            .session(token, now)
            .await
            .map_err(ApiError::internal)?
            .ok_or(ApiError::Unauthenticated)?;
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
                return Err(ApiError::Csrf);
            }
        }
        Ok(Authed {
            op,
            csrf: Some(csrf),
            session: Some(token.to_string()),
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Failed logins per user name and per client address.
#[derive(Debug)]
pub struct LoginLimiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// At most `max` failures per key within `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        LoginLimiter {
            max: max.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: &str, addr: Option<IpAddr>) -> Vec<String> {
        let mut k = vec![format!("u:{}", user.to_lowercase())];
        if let Some(a) = addr {
            k.push(format!("a:{a}"));
        }
        k
    }

    /// Seconds until another attempt is allowed (None: allowed now).
    pub fn blocked(&self, user: &str, addr: Option<IpAddr>, now: Instant) -> Option<u64> {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for k in Self::keys(user, addr) {
            if let Some(q) = f.get_mut(&k) {
                while q
                    .front()
                    .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
                {
                    q.pop_front();
                }
                if q.len() >= self.max as usize {
                    let oldest = q.front().copied().unwrap_or(now);
                    let left = self
                        .window
                        .saturating_sub(now.saturating_duration_since(oldest));
                    wait = Some(wait.unwrap_or(0).max(left.as_secs().max(1)));
                }
            }
        }
        wait
    }

    /// A failed attempt.
    pub fn failed(&self, user: &str, addr: Option<IpAddr>, now: Instant) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of invented user names cannot grow the map without end.
        if f.len() > 100_000 {
            f.clear();
        }
        for k in Self::keys(user, addr) {
            f.entry(k).or_default().push_back(now);
        }
    }

    /// A successful login clears the user's failures.
    pub fn succeeded(&self, user: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.remove(&format!("u:{}", user.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failed_login_within_the_window_is_refused_until_it_passes() {
        let l = LoginLimiter::new(5, Duration::from_secs(300));
        let t0 = Instant::now();
        let addr = Some(IpAddr::from([10, 0, 0, 1]));
        for i in 0..5 {
            assert_eq!(l.blocked("anna", addr, t0), None, "attempt {i}");
            l.failed("anna", addr, t0);
        }
        assert!(l.blocked("anna", addr, t0).is_some());
        // Another user from the same address is refused too (address key).
        assert!(l.blocked("bent", addr, t0).is_some());
        assert_eq!(l.blocked("anna", addr, t0 + Duration::from_secs(301)), None);
    }
}
