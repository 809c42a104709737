//! Media negotiation settings from config (`[sip.sdp]` or wherever the server
//! mounts it): codec preference order, whose order wins, DTMF and ptime.

use serde::{Deserialize, Serialize};

use super::negotiate::Codec;

/// Whose codec order picks the codec when both sides support several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodecPreference {
    /// Our [`SdpConfig::codecs`] order wins (the default: a trunk that lists
    /// PCMU first still gets PCMA if we prefer it and they offered it).
    #[default]
    Ours,
    /// The offerer's order wins (RFC 3264 sec. 6.1 lets the answerer choose;
    /// this is the polite choice).
    Theirs,
}

/// SDP offer/answer settings. Every key has a default; unknown keys are errors.
///
/// ```toml
/// codecs = ["PCMA", "PCMU", "G722"]   # most preferred first
/// preference = "ours"                 # or "theirs"
/// telephone_event = true              # RFC 4733 DTMF events
/// telephone_event_payload_type = 101  # used in our offers; answers keep theirs
/// ptime_ms = 20                       # packetisation we ask to receive
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdpConfig {
    /// Codecs we accept, most preferred first.
    pub codecs: Vec<Codec>,
    /// Whose order picks among common codecs.
    pub preference: CodecPreference,
    /// Offer and accept `telephone-event` (RFC 4733) for DTMF.
    pub telephone_event: bool,
    /// Payload type for `telephone-event` in our offers (96..=127).
    pub telephone_event_payload_type: u8,
    /// `a=ptime` we put in offers and answers: the packet length we want to
    /// receive, in ms (10..=60, a multiple of 10).
    pub ptime_ms: u32,
}

impl Default for SdpConfig {
    fn default() -> Self {
        SdpConfig {
            codecs: vec![Codec::Pcma, Codec::Pcmu, Codec::G722],
            preference: CodecPreference::Ours,
            telephone_event: true,
            telephone_event_payload_type: 101,
            ptime_ms: 20,
        }
    }
}

/// A [`SdpConfig`] value that cannot work.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `codecs` is empty: every call would get 488.
    #[error("sdp.codecs is empty; list at least one of PCMA, PCMU, G722")]
    NoCodecs,
    /// A codec is listed twice.
    #[error("sdp.codecs lists {0} twice; list each codec once")]
    DuplicateCodec(Codec),
    /// `telephone_event_payload_type` is outside the dynamic range.
    #[error("sdp.telephone_event_payload_type = {0} is not a dynamic payload type; use 96..=127 (101 is usual)")]
    BadPayloadType(u8),
    /// `ptime_ms` is not a multiple of 10 in 10..=60.
    #[error("sdp.ptime_ms = {0} is not supported; use 10, 20, 30, 40, 50 or 60 (20 is usual)")]
    BadPtime(u32),
}

impl SdpConfig {
    /// Check the values that serde cannot.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.codecs.is_empty() {
            return Err(ConfigError::NoCodecs);
        }
        for (i, c) in self.codecs.iter().enumerate() {
            if self.codecs[..i].contains(c) {
                return Err(ConfigError::DuplicateCodec(*c));
            }
        }
        if !(96..=127).contains(&self.telephone_event_payload_type) {
            return Err(ConfigError::BadPayloadType(
                self.telephone_event_payload_type,
            ));
        }
        if ![10, 20, 30, 40, 50, 60].contains(&self.ptime_ms) {
            return Err(ConfigError::BadPtime(self.ptime_ms));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_gives_pcma_first_defaults() {
        let c: SdpConfig = toml::from_str("").unwrap();
        assert_eq!(c, SdpConfig::default());
        assert_eq!(c.codecs[0], Codec::Pcma);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn codec_names_are_case_insensitive_and_order_is_kept() {
        let c: SdpConfig =
            toml::from_str("codecs = [\"g722\", \"PCMU\"]\npreference = \"theirs\"").unwrap();
        assert_eq!(c.codecs, vec![Codec::G722, Codec::Pcmu]);
        assert_eq!(c.preference, CodecPreference::Theirs);
    }

    #[test]
    fn unknown_keys_and_codecs_are_errors() {
        assert!(toml::from_str::<SdpConfig>("codec = [\"PCMA\"]").is_err());
        let e = toml::from_str::<SdpConfig>("codecs = [\"opus\"]").unwrap_err();
        assert!(e.to_string().contains("PCMA"), "{e}");
    }

    #[test]
    fn validate_names_the_fix() {
        let mut c = SdpConfig {
            codecs: vec![],
            ..SdpConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::NoCodecs));
        c.codecs = vec![Codec::Pcma, Codec::Pcma];
        assert_eq!(c.validate(), Err(ConfigError::DuplicateCodec(Codec::Pcma)));
        c.codecs = vec![Codec::Pcma];
        c.ptime_ms = 25;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("20 is usual"));
        c.ptime_ms = 20;
        c.telephone_event_payload_type = 8;
        assert_eq!(c.validate(), Err(ConfigError::BadPayloadType(8)));
    }
}
