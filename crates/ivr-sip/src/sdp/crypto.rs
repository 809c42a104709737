//! SDES: SRTP keys in SDP (RFC 4568), the `a=crypto` attribute.
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> inline:<base64(master key || master salt)>[|<lifetime>][|<MKI>:<len>]
//! ```
//!
//! We support the suites of RFC 4568 sec. 6.2 `AES_CM_128_HMAC_SHA1_80` (the
//! mandatory one) and `AES_CM_128_HMAC_SHA1_32`, and RFC 6188's
//! `AES_256_CM_HMAC_SHA1_80`, each with a single inline key, no MKI and no
//! session parameters (`KDR`, `UNENCRYPTED_SRTP`, ... change the transform;
//! a line carrying one is skipped, so the offerer's next line can match).
//! A lifetime is accepted and ignored: a call never comes near 2^31 packets.
//!
//! The keys travel in the SDP in clear text, so they are only as secret as
//! the signalling (RFC 4568 sec. 8.3): the engine offers and accepts them
//! only over TLS. Key material is [`SrtpKey`], whose `Debug` prints no byte
//! of it and whose memory is zeroed on drop. Nothing here draws random
//! numbers: our keys come in as [`SrtpKeyMaterial`] from the caller (the
//! engine takes them from the OS CSPRNG, fresh for every call).

use std::fmt;

use base64::Engine as _;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::parse::{Attribute, Media};

/// An SRTP crypto suite we can run (RFC 4568 sec. 6.2, RFC 6188 sec. 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (the default).
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit RTP tag.
    AesCm128HmacSha1_32,
    /// AES-256 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 6188).
    AesCm256HmacSha1_80,
}

impl SrtpSuite {
    /// Our preference order: what our offers list.
    pub const ALL: [SrtpSuite; 3] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm256HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    /// The suite's name in `a=crypto`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
        }
    }

    /// Master key length in bytes.
    #[must_use]
    pub fn key_len(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 | SrtpSuite::AesCm128HmacSha1_32 => 16,
            SrtpSuite::AesCm256HmacSha1_80 => 32,
        }
    }

    /// Master salt length in bytes (112 bits for all three).
    #[must_use]
    pub fn salt_len(self) -> usize {
        14
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Random bytes for our master keys: enough for the longest suite's key and
/// salt. Fresh from a CSPRNG for every call; `Debug` redacts them.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SrtpKeyMaterial([u8; SrtpKeyMaterial::LEN]);

impl SrtpKeyMaterial {
    /// Bytes needed: 32 (AES-256 key) + 14 (salt).
    pub const LEN: usize = 46;

    /// Wraps random bytes (from the OS CSPRNG: `ivr_sip::ids::secure_bytes`).
    #[must_use]
    pub fn new(bytes: [u8; Self::LEN]) -> Self {
        SrtpKeyMaterial(bytes)
    }

    /// Our key for `suite`: its key length, then 14 salt bytes.
    #[must_use]
    pub fn key_for(&self, suite: SrtpSuite) -> SrtpKey {
        let k = suite.key_len();
        SrtpKey {
            key: self.0[..k].to_vec(),
            salt: self.0[k..k + suite.salt_len()].to_vec(),
        }
    }
}

impl fmt::Debug for SrtpKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpKeyMaterial(<redacted>)")
    }
}

/// One SRTP master key and salt. `Debug` redacts them; zeroed on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SrtpKey {
    key: Vec<u8>,
    salt: Vec<u8>,
}

impl SrtpKey {
    /// The master key.
    #[must_use]
    pub fn key(&self) -> &[u8] {
        &self.key
    }
    /// The master salt.
    #[must_use]
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    fn inline(&self) -> String {
        let mut both = Vec::with_capacity(self.key.len() + self.salt.len());
        both.extend_from_slice(&self.key);
        both.extend_from_slice(&self.salt);
        let s = base64::engine::general_purpose::STANDARD.encode(&both);
        both.zeroize();
        format!("inline:{s}")
    }
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpKey(<redacted>)")
    }
}

/// A usable `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// The tag (1..=999999999) that the answer repeats.
    pub tag: u32,
    /// The suite.
    pub suite: SrtpSuite,
    /// The master key and salt of whoever wrote the line: what it encrypts with.
    pub key: SrtpKey,
}

impl Crypto {
    /// Reads one `a=crypto` value (after `crypto:`); `None` when malformed or
    /// not something we can run (unknown suite, MKI, several keys, session
    /// parameters).
    #[must_use]
    pub fn parse(value: &str) -> Option<Crypto> {
        let mut f = value.split_ascii_whitespace();
        let tag: u32 = f.next()?.parse().ok()?;
        if tag == 0 || tag > 999_999_999 {
            return None;
        }
        let suite = SrtpSuite::parse(f.next()?)?;
        let key_params = f.next()?;
        if f.next().is_some() {
            return None; // session parameters
        }
        if key_params.contains(';') {
            return None; // several keys
        }
        let inline = key_params.strip_prefix("inline:")?;
        let mut parts = inline.split('|');
        let b64 = parts.next()?;
        for p in parts {
            if p.contains(':') {
                return None; // MKI
            }
            // A lifetime: decimal or 2^n.
            let ok = p.parse::<u64>().is_ok()
                || p.strip_prefix("2^")
                    .is_some_and(|n| n.parse::<u8>().is_ok());
            if !ok {
                return None;
            }
        }
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
            .ok()?;
        let (k, s) = (suite.key_len(), suite.salt_len());
        let key = (bytes.len() == k + s).then(|| SrtpKey {
            key: bytes[..k].to_vec(),
            salt: bytes[k..].to_vec(),
        });
        bytes.zeroize();
        Some(Crypto {
            tag,
            suite,
            key: key?,
        })
    }

    /// The `a=crypto` attribute for this line.
    #[must_use]
    pub fn attribute(&self) -> Attribute {
        Attribute::Other {
            name: "crypto".to_owned(),
            value: Some(format!(
                "{} {} {}",
                self.tag,
                self.suite.name(),
                self.key.inline()
            )),
        }
    }
}

/// The `a=crypto` lines of a media description we can run, in its order.
pub fn cryptos(m: &Media) -> impl Iterator<Item = Crypto> + '_ {
    m.attributes.iter().filter_map(|a| match a {
        Attribute::Other { name, value } if name.eq_ignore_ascii_case("crypto") => {
            value.as_deref().and_then(Crypto::parse)
        }
        _ => None,
    })
}

/// Whether a media description has any `a=crypto` line (usable or not).
#[must_use]
pub fn has_crypto(m: &Media) -> bool {
    m.attributes
        .iter()
        .any(|a| matches!(a, Attribute::Other { name, .. } if name.eq_ignore_ascii_case("crypto")))
}

/// The SRTP both sides agreed on for a stream: the suite and each
/// direction's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpParams {
    /// The suite.
    pub suite: SrtpSuite,
    /// Our key: we encrypt what we send with it.
    pub local: SrtpKey,
    /// The peer's key: we decrypt what we receive with it.
    pub remote: SrtpKey,
}

/// Whether and how a call uses SRTP (`[media] srtp`, per trunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only: offers of RTP/SAVP only are refused (488).
    #[default]
    Off,
    /// SRTP when the offer has a suite we run (RTP/SAVP, or RTP/AVP with
    /// `a=crypto` as "best effort" peers send), else plain RTP. Our own
    /// offers are plain RTP.
    Optional,
    /// SRTP only: an offer without a usable `a=crypto` is refused (488);
    /// our own offers are RTP/SAVP.
    Required,
}

/// Our side's SRTP for one call: the policy and our fresh key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSrtp {
    /// Required (else optional).
    pub required: bool,
    /// Our keys.
    pub keys: SrtpKeyMaterial,
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    #[test]
    fn a_baresip_crypto_line_parses_to_a_30_byte_key_and_salt() {
        let c = Crypto::parse(BARESIP).unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!((c.key.key().len(), c.key.salt().len()), (16, 14));
        assert_eq!(c.key.key()[0], b'=');
    }

    #[test]
    fn printed_line_reads_back_the_same_key() {
        let m = SrtpKeyMaterial::new([7; SrtpKeyMaterial::LEN]);
        for suite in SrtpSuite::ALL {
            let c = Crypto {
                tag: 3,
                suite,
                key: m.key_for(suite),
            };
            let Attribute::Other { value: Some(v), .. } = c.attribute() else {
                panic!("crypto is printed as a raw attribute");
            };
            assert_eq!(Crypto::parse(&v), Some(c));
        }
    }

    #[test]
    fn lifetime_is_accepted_but_mki_keys_and_session_params_are_skipped() {
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        assert!(Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^20")).is_some());
        assert!(Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key}|1048576")).is_some());
        assert!(Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^20|1:4")).is_none());
        assert!(Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key};{key}")).is_none());
        assert!(Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key} KDR=1")).is_none());
        assert!(Crypto::parse(&format!("1 F8_128_HMAC_SHA1_80 {key}")).is_none());
        assert!(Crypto::parse(&format!("0 AES_CM_128_HMAC_SHA1_80 {key}")).is_none());
        // A 256-bit suite with a 128-bit key is malformed.
        assert!(Crypto::parse(&format!("1 AES_256_CM_HMAC_SHA1_80 {key}")).is_none());
    }

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let c = Crypto::parse(BARESIP).unwrap();
        let printed = format!("{c:?} {:?}", SrtpKeyMaterial::new([0x41; 46]));
        assert!(printed.contains("redacted"), "{printed}");
        assert!(!printed.contains("61"), "{printed}"); // b'=' as a number
        assert!(!printed.contains("PS1u"), "{printed}");
        assert!(!printed.contains("65, 65"), "{printed}");
    }
}
