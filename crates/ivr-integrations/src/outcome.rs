//! Outcomes the flow can speak about.
//!
//! Every adapter error maps to one [`Outcome`] through an `outcome()` method,
//! so the engine can turn any failure into a flow result ("the slot was just
//! taken", "the booking system does not answer, try later", ...) without
//! matching on each adapter's error type.

use serde::{Deserialize, Serialize};

/// What happened to a request to another system, in words a flow can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The request was carried out (or stored durably to be carried out).
    Ok,
    /// The booking slot was taken by someone else between listing and booking.
    SlotTaken,
    /// The thing referred to (booking, queue, request) does not exist.
    NotFound,
    /// The other system did not answer in time or could not be reached; the
    /// same request may succeed later.
    Unavailable,
    /// The other system refused the request as invalid; repeating it will
    /// not help (a 4xx, a bad phone number, ...).
    Rejected,
    /// Our own side failed (misconfiguration, corrupt data): needs an operator.
    Internal,
}

impl Outcome {
    /// Whether repeating the same request later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Outcome::Unavailable)
    }
}
