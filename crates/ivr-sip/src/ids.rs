//! Identifiers this UA generates: tags (RFC 3261 sec. 19.3), branches with
//! the `z9hG4bK` cookie (sec. 8.1.1.7) and Call-IDs (sec. 8.1.1.4).
//!
//! They must be unpredictable, not only unique: a peer that can compute our
//! next tag, branch or Call-ID from one reply can forge in-dialog requests
//! (BYE, re-INVITE, REFER) or answers to our transactions. So the production
//! source is [`IdSource::Os`]: every value comes from `rand`'s thread-local
//! CSPRNG (ChaCha12 seeded from the operating system and reseeded
//! periodically). [`IdSource::Seeded`] exists only so simulation tests repeat
//! bit for bit; its values are predictable and it must never be used on a
//! real network.

/// Where identifier randomness comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdSource {
    /// The OS-seeded CSPRNG (the default; the only one for production).
    #[default]
    Os,
    /// A deterministic splitmix64 sequence from this seed: **predictable**,
    /// for repeatable simulation tests only.
    Seeded(u64),
}

/// A generator of protocol identifiers.
#[derive(Debug, Clone)]
pub struct IdGen(Inner);

#[derive(Debug, Clone)]
enum Inner {
    Os,
    Seeded(u64),
}

impl IdGen {
    /// A generator drawing from `source`.
    #[must_use]
    pub fn new(source: IdSource) -> Self {
        IdGen(match source {
            IdSource::Os => Inner::Os,
            IdSource::Seeded(s) => Inner::Seeded(s),
        })
    }
    /// Whether values come from the OS-seeded CSPRNG.
    #[must_use]
    pub fn is_os(&self) -> bool {
        matches!(self.0, Inner::Os)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        match &mut self.0 {
            Inner::Os => rand::random::<u64>(),
            Inner::Seeded(state) => {
                *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            }
        }
    }
    /// A new tag (64 random bits).
    pub fn tag(&mut self) -> String {
        format!("{:x}", self.next_u64())
    }
    /// A new RFC 3261 branch (80 random bits after the cookie).
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{:x}{:x}", self.next_u64(), self.next_u64() & 0xffff)
    }
    /// A new Call-ID, `<128 random bits>@<host>`.
    pub fn call_id(&mut self, host: &str) -> String {
        format!("{:x}{:x}@{host}", self.next_u64(), self.next_u64())
    }
}

/// 64 bits from the OS-seeded CSPRNG, for identifiers drawn outside an
/// endpoint (RTP SSRC and sequence/timestamp starts, SDP session ids, call
/// references, digest nonce secrets).
#[must_use]
pub fn secure_u64() -> u64 {
    rand::random::<u64>()
}

/// `N` bytes from the OS-seeded CSPRNG (e.g. a [`crate::auth::NonceIssuer`]
/// secret).
#[must_use]
pub fn secure_bytes<const N: usize>() -> [u8; N] {
    rand::random::<[u8; N]>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_source_is_the_os_csprng() {
        assert_eq!(IdSource::default(), IdSource::Os);
        assert!(IdGen::new(IdSource::default()).is_os());
    }

    #[test]
    fn a_seeded_source_repeats_for_simulation() {
        let mut a = IdGen::new(IdSource::Seeded(7));
        let mut b = IdGen::new(IdSource::Seeded(7));
        assert_eq!(a.tag(), b.tag());
        assert_eq!(a.branch(), b.branch());
    }

    #[test]
    fn two_os_generators_do_not_share_a_sequence() {
        let mut a = IdGen::new(IdSource::Os);
        let mut b = IdGen::new(IdSource::Os);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_ne!(xs, ys);
    }
}
