//! The semantic signal: sentence embeddings of what the caller said, compared
//! with embeddings of intent examples and knowledge entries.
//!
//! The flow engine does not load a model itself (it stays pure and
//! model-free): the engine hands it a [`SentenceEncoder`] (multilingual-e5
//! through `ivr-embed` in production, anything deterministic in tests), and
//! everything that uses it falls back to lexical matching alone when none is
//! given.

use std::fmt;

/// What a text is, for models that embed queries and documents differently
/// (E5 prefixes `query: ` and `passage: `).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// What a caller said.
    Query,
    /// An intent example, a knowledge entry's question or answer.
    Passage,
}

/// Why a text could not be embedded.
#[derive(Debug, thiserror::Error)]
#[error("sentence encoder: {0}")]
pub struct EncodeError(pub String);

/// Turns a sentence into a unit-length vector; cosine similarity is then the
/// dot product. Implementations must be deterministic and thread-safe.
pub trait SentenceEncoder: Send + Sync + fmt::Debug {
    /// Embeds `text` as `role`; the vector has [`SentenceEncoder::dim`]
    /// entries and unit length.
    fn embed(&self, text: &str, role: Role) -> Result<Vec<f32>, EncodeError>;
    /// Dimension of the vectors.
    fn dim(&self) -> usize;
    /// A short name for diagnostics and `ivr eval` ("multilingual-e5-small q4").
    fn name(&self) -> &str;
    /// What identifies the model's vectors exactly (the model file's hash),
    /// for caching them on disk ([`crate::vector_cache`]); `None`: vectors of
    /// this encoder are not cached.
    fn fingerprint(&self) -> Option<String> {
        None
    }
}

/// Dot product of two unit vectors (cosine similarity); 0 when the lengths
/// differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_unit_vectors_is_their_dot_product_and_mismatch_is_zero() {
        assert!((cosine(&[1.0, 0.0], &[0.6, 0.8]) - 0.6).abs() < 1e-6);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }
}
