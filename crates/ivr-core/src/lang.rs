//! Languages a flow can speak.

use std::{fmt, str::FromStr};

/// A language of the conversation. Danish first: it is the default of every
/// municipality; English is offered by most.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Lang {
    /// Danish (`da`).
    Da,
    /// English (`en`).
    En,
}

impl Lang {
    /// Every language the engine knows, in preference order.
    pub const ALL: [Lang; 2] = [Lang::Da, Lang::En];

    /// ISO 639-1 code, as whisper and the voice registry use it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Da => "da",
            Lang::En => "en",
        }
    }
}

/// A language code the engine does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language `{0}` (known: da, en)")]
pub struct LangError(pub String);

impl FromStr for Lang {
    type Err = LangError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "da" | "dan" | "da-dk" | "da_dk" | "danish" | "dansk" => Ok(Lang::Da),
            "en" | "eng" | "en-gb" | "en-us" | "en_gb" | "en_us" | "english" | "engelsk" => {
                Ok(Lang::En)
            }
            _ => Err(LangError(s.to_string())),
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for l in Lang::ALL {
            assert_eq!(l.code().parse::<Lang>().unwrap(), l);
        }
        assert_eq!("da-DK".parse::<Lang>().unwrap(), Lang::Da);
        assert!("th".parse::<Lang>().is_err());
    }
}
