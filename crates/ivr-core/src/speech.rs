//! What the engine says: text that may be cached, or text holding personal
//! data that must not outlive the call.

use std::fmt;

use crate::Pii;

/// One utterance of the bot, as text to synthesise.
///
/// The difference decides where the audio may go:
/// - [`Speech::Static`]: text of the flow or the engine that holds no personal
///   data (a prompt, "We open again tomorrow at eight", a department's name).
///   Its audio may be cached in memory and on disk, and it may be logged.
/// - [`Speech::Personal`]: anything rendered from a variable holding personal
///   data (a CPR number, a phone number, a name read back), or a template the
///   flow marks `personal = true`. It is synthesised only through the
///   non-caching path and never logged; its `Debug` redacts.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Speech {
    /// Cacheable text without personal data.
    Static(String),
    /// Text holding personal data: never cached, never logged.
    Personal(Pii<String>),
}

impl Speech {
    /// True for [`Speech::Personal`].
    pub fn is_personal(&self) -> bool {
        matches!(self, Speech::Personal(_))
    }

    /// The text, for synthesis only (it may be personal: do not log it).
    pub fn expose(&self) -> &str {
        match self {
            Speech::Static(s) => s,
            Speech::Personal(p) => p.expose(),
        }
    }

    /// True when there is nothing to say (empty or whitespace).
    pub fn is_empty(&self) -> bool {
        self.expose().trim().is_empty()
    }
}

impl fmt::Debug for Speech {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speech::Static(s) => f.debug_tuple("Static").field(s).finish(),
            Speech::Personal(p) => f.debug_tuple("Personal").field(p).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_speech_is_redacted_in_debug_and_static_is_not() {
        let p = Speech::Personal(Pii::new("Jeg hørte 0101901234".into()));
        let s = Speech::Static("Tak for opkaldet.".into());
        assert!(p.is_personal() && !s.is_personal());
        assert_eq!(format!("{p:?}"), "Personal(<redacted>)");
        assert_eq!(format!("{s:?}"), "Static(\"Tak for opkaldet.\")");
        assert_eq!(p.expose(), "Jeg hørte 0101901234");
        assert!(Speech::Static("  ".into()).is_empty());
    }
}
