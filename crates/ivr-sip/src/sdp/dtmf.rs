//! The event list of `a=fmtp:<pt> 0-15,66` for `telephone-event`
//! (RFC 4733 sec. 7.1.1).

use std::fmt;

/// A set of RFC 4733 event codes (0..=255), e.g. the DTMF digits 0-15 and
/// flash (16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventSet([u64; 4]);

impl EventSet {
    /// The empty set.
    #[must_use]
    pub const fn empty() -> Self {
        EventSet([0; 4])
    }

    /// All codes in `lo..=hi`.
    #[must_use]
    pub fn range(lo: u8, hi: u8) -> Self {
        let mut s = Self::empty();
        for e in lo..=hi {
            s.insert(e);
        }
        s
    }

    /// The set RFC 4733 sec. 7.1.1 implies when there is no `fmtp`: 0-15.
    #[must_use]
    pub fn default_dtmf() -> Self {
        Self::range(0, 15)
    }

    /// Add one code.
    pub fn insert(&mut self, e: u8) {
        self.0[usize::from(e >> 6)] |= 1 << (e & 63);
    }

    /// Whether a code is in the set.
    #[must_use]
    pub fn contains(&self, e: u8) -> bool {
        self.0[usize::from(e >> 6)] & (1 << (e & 63)) != 0
    }

    /// Codes in both sets.
    #[must_use]
    pub fn intersect(&self, other: &EventSet) -> EventSet {
        let mut r = *self;
        for (a, b) in r.0.iter_mut().zip(other.0) {
            *a &= b;
        }
        r
    }

    /// True if no code is in the set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Parse an event list such as `0-15,66,70` (white space tolerated).
    /// Returns `None` if any item is not a code or range within 0..=255.
    #[must_use]
    pub fn parse(list: &str) -> Option<Self> {
        let mut s = Self::empty();
        for item in list.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            match item.split_once('-') {
                Some((a, b)) => {
                    let lo: u8 = a.trim().parse().ok()?;
                    let hi: u8 = b.trim().parse().ok()?;
                    if lo > hi {
                        return None;
                    }
                    for e in lo..=hi {
                        s.insert(e);
                    }
                }
                None => s.insert(item.parse().ok()?),
            }
        }
        Some(s)
    }
}

impl fmt::Display for EventSet {
    /// Prints the shortest range list, e.g. `0-16` or `0-11,16`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut e: u16 = 0;
        while e <= 255 {
            // e <= 255 inside the loop, so the cast is exact.
            let code = u8::try_from(e).unwrap_or(u8::MAX);
            if !self.contains(code) {
                e += 1;
                continue;
            }
            let mut end = e;
            while end < 255 && self.contains(u8::try_from(end + 1).unwrap_or(u8::MAX)) {
                end += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == e {
                write!(f, "{e}")?;
            } else {
                write!(f, "{e}-{end}")?;
            }
            e = end + 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_ranges() {
        let s = EventSet::parse("0-15, 66,70").unwrap();
        assert!(s.contains(0) && s.contains(15) && s.contains(66) && s.contains(70));
        assert!(!s.contains(16));
        assert_eq!(s.to_string(), "0-15,66,70");
        assert_eq!(EventSet::range(0, 16).to_string(), "0-16");
        assert_eq!(EventSet::parse("0-255").unwrap().to_string(), "0-255");
        assert_eq!(EventSet::parse("255").unwrap().to_string(), "255");
    }

    #[test]
    fn rejects_garbage_and_reversed_ranges() {
        assert_eq!(EventSet::parse("16-0"), None);
        assert_eq!(EventSet::parse("0-300"), None);
        assert_eq!(EventSet::parse("x"), None);
    }

    #[test]
    fn intersection_limits_to_common_events() {
        let ours = EventSet::range(0, 16);
        let theirs = EventSet::parse("0-15,32").unwrap();
        assert_eq!(ours.intersect(&theirs).to_string(), "0-15");
    }
}
