//! Personal data wrapper (GDPR): CPR numbers, phone numbers, transcripts.

use std::fmt;

/// Personal data. `Debug` and `Display` print `<redacted>`; the value is only
/// reachable through [`Pii::expose`], which makes every place that handles the
/// raw value greppable.
///
/// There is deliberately no `Serialize` implementation: code that stores the
/// value (a database row, a mail to a caseworker) calls `expose()` on purpose.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pii<T>(T);

impl<T> Pii<T> {
    /// Wraps a personal value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The raw value. Call only where the value must leave the process on
    /// purpose (storage, mail to the case worker, the SIP header of a transfer).
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the raw value (same rule as [`Pii::expose`]).
    pub fn into_inner(self) -> T {
        self.0
    }

    /// Maps the inner value, keeping it wrapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Pii<U> {
        Pii(f(self.0))
    }
}

impl<T> From<T> for Pii<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let cpr = Pii::new(String::from("0101901234"));
        assert_eq!(format!("{cpr}"), "<redacted>");
        assert_eq!(format!("{cpr:?}"), "<redacted>");
        #[derive(Debug)]
        #[allow(dead_code)] // reason: only read through Debug
        struct Caller {
            number: Pii<String>,
        }
        let c = Caller {
            number: Pii::new("+4512345678".into()),
        };
        let line = format!("{c:?}");
        assert!(!line.contains("12345678"), "{line}");
        assert_eq!(cpr.expose(), "0101901234");
    }
}
