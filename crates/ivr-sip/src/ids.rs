//! Identifiers this UA generates: tags (RFC 3261 sec. 19.3), branches with
//! the `z9hG4bK` cookie (sec. 8.1.1.7) and Call-IDs (sec. 8.1.1.4).
//!
//! Sans-IO: randomness is seeded by the owner (the engine seeds from the OS;
//! tests use a fixed seed so runs repeat). splitmix64 is enough: the values
//! need to be unique, not secret.

/// A seeded generator of protocol identifiers.
#[derive(Debug, Clone)]
pub struct IdGen(u64);

impl IdGen {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        IdGen(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A new tag.
    pub fn tag(&mut self) -> String {
        format!("{:x}", self.next_u64())
    }
    /// A new RFC 3261 branch.
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{:x}{:x}", self.next_u64(), self.next_u64() & 0xffff)
    }
    /// A new Call-ID, `<random>@<host>`.
    pub fn call_id(&mut self, host: &str) -> String {
        format!("{:x}{:x}@{host}", self.next_u64(), self.next_u64())
    }
}
