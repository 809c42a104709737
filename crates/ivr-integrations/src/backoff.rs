//! Exponential backoff shared by the Puzzel client, the hand-off worker and
//! the mail outbox. Pure arithmetic: callers pass attempt numbers and add
//! the delay to a time they read themselves.

use std::time::Duration;

use serde::Deserialize;

/// Delay before retry `n` is `base * 2^(n-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    /// Delay before the first retry, in milliseconds.
    pub base_ms: u64,
    /// Upper bound of any delay, in milliseconds.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_ms: 1_000,
            max_ms: 300_000,
        }
    }
}

impl Backoff {
    /// A backoff from durations.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base_ms: u64::try_from(base.as_millis()).unwrap_or(u64::MAX),
            max_ms: u64::try_from(max.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Delay before retry number `retry` (1 = the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(32);
        let ms = self.base_ms.saturating_mul(1u64 << shift).min(self.max_ms);
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stop_at_the_cap() {
        let b = Backoff {
            base_ms: 500,
            max_ms: 5_000,
        };
        let d: Vec<u64> = (1..=6).map(|n| b.delay(n).as_millis() as u64).collect();
        assert_eq!(d, vec![500, 1_000, 2_000, 4_000, 5_000, 5_000]);
        assert_eq!(
            b.delay(10_000),
            Duration::from_millis(5_000),
            "huge attempt counts do not overflow"
        );
    }
}
