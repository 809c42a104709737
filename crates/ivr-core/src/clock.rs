//! Wall-clock time as an input (opening hours, callback windows, records).

use chrono::{DateTime, Utc};

/// Where code that needs the date and time of day reads it. Opening hours,
/// holidays and callback windows take this, so a test can stand at any moment.
pub trait WallClock: Send + Sync {
    /// The current instant in UTC; callers convert to Europe/Copenhagen.
    fn now_utc(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_utc(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same instant (tests, `ivr simulate --at`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl WallClock for FixedClock {
    fn now_utc(&self) -> DateTime<Utc> {
        self.0
    }
}
