//! Identifiers that are safe to log.

use std::fmt;

/// The engine's reference for one call: short, random-looking, contains no
/// personal data, printed in logs, call records and the transfer context so an
/// operator can find the call again.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct CallId(String);

impl CallId {
    /// Wraps an id made elsewhere (e.g. read back from the database).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// A fresh id from a 64-bit value (the engine feeds it a random number).
    pub fn from_u64(v: u64) -> Self {
        Self(format!("c{v:016x}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallId({})", self.0)
    }
}
