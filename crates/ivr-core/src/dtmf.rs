//! Telephone keypad keys (RFC 4733 sec. 3.2, event codes 0-15).

use std::fmt;

/// One DTMF key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Dtmf {
    /// Key `0`.
    D0,
    /// Key `1`.
    D1,
    /// Key `2`.
    D2,
    /// Key `3`.
    D3,
    /// Key `4`.
    D4,
    /// Key `5`.
    D5,
    /// Key `6`.
    D6,
    /// Key `7`.
    D7,
    /// Key `8`.
    D8,
    /// Key `9`.
    D9,
    /// Key `*`.
    Star,
    /// Key `#`.
    Hash,
    /// Key `A` (rare on phones, present in the RFC).
    A,
    /// Key `B`.
    B,
    /// Key `C`.
    C,
    /// Key `D`.
    D,
}

/// Not a DTMF key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// The character is not one of `0-9 * # A-D`.
    #[error("`{0}` is not a DTMF key (0-9, *, #, A-D)")]
    BadChar(char),
    /// The RFC 4733 event code is above 15 (not a DTMF event).
    #[error("RFC 4733 event {0} is not a DTMF key")]
    BadEvent(u8),
}

const KEYS: [Dtmf; 16] = [
    Dtmf::D0,
    Dtmf::D1,
    Dtmf::D2,
    Dtmf::D3,
    Dtmf::D4,
    Dtmf::D5,
    Dtmf::D6,
    Dtmf::D7,
    Dtmf::D8,
    Dtmf::D9,
    Dtmf::Star,
    Dtmf::Hash,
    Dtmf::A,
    Dtmf::B,
    Dtmf::C,
    Dtmf::D,
];
const CHARS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

impl Dtmf {
    /// The RFC 4733 event code (0-15).
    pub fn event_code(self) -> u8 {
        KEYS.iter().position(|k| *k == self).unwrap_or(0) as u8
    }

    /// The key for an RFC 4733 event code.
    pub fn from_event_code(code: u8) -> Result<Self, DtmfError> {
        KEYS.get(usize::from(code))
            .copied()
            .ok_or(DtmfError::BadEvent(code))
    }

    /// The key as the character printed on it.
    pub fn as_char(self) -> char {
        CHARS[usize::from(self.event_code())]
    }

    /// The key for a character (`a`-`d` accepted in lower case).
    pub fn from_char(c: char) -> Result<Self, DtmfError> {
        let u = c.to_ascii_uppercase();
        CHARS
            .iter()
            .position(|x| *x == u)
            .map(|i| KEYS[i])
            .ok_or(DtmfError::BadChar(c))
    }
}

impl fmt::Display for Dtmf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_codes_and_chars_round_trip() {
        for code in 0..16u8 {
            let k = Dtmf::from_event_code(code).unwrap();
            assert_eq!(k.event_code(), code);
            assert_eq!(Dtmf::from_char(k.as_char()).unwrap(), k);
        }
        assert_eq!(Dtmf::from_char('#').unwrap().event_code(), 11);
        assert_eq!(Dtmf::from_event_code(16), Err(DtmfError::BadEvent(16)));
        assert_eq!(Dtmf::from_char('x'), Err(DtmfError::BadChar('x')));
    }
}
