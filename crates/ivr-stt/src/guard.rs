//! No invented words: what whisper produces on silence, noise and clicks
//! never reaches a flow.
//!
//! whisper was trained on subtitled video: on audio without speech it
//! writes what subtitles say at such moments ("Tak fordi du så med",
//! "Undertekster af ...", "Thanks for watching"), or loops one phrase. The
//! checks, applied to every transcript ([`judge`]):
//! - **no speech**: whisper's no-speech probability above
//!   [`GuardConfig::no_speech`] while the text's mean log-probability is
//!   below [`GuardConfig::logprob`] (OpenAI's rule, the same thresholds);
//! - **unsure**: mean log-probability below [`GuardConfig::min_logprob`]
//!   (nothing whisper was that unsure of is worth acting on);
//! - **loops**: a text whose words repeat ([`repetition`] above
//!   [`GuardConfig::max_repetition`], the word-level counterpart of
//!   OpenAI's compression-ratio check), unless collapsing the loop leaves a
//!   plain phrase (`collapse_repetition`);
//! - **subtitle phrases**: sentences that are known whisper inventions are
//!   removed ([`strip_inventions`]).
//!
//! Anything rejected becomes an empty transcript: the flow hears "no input".

use serde::Deserialize;

/// The `[stt.guard]` thresholds.
///
/// ```toml
/// [stt.guard]
/// no_speech = 0.6       # no-speech probability above which ...
/// logprob = -1.0        # ... a text less sure than this is dropped
/// min_logprob = -1.6    # a text less sure than this is always dropped
/// max_repetition = 0.5  # share of repeated word 3-grams that marks a loop
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// No-speech probability above which an unsure text is dropped.
    pub no_speech: f32,
    /// Mean token log-probability below which a text counts as unsure.
    pub logprob: f32,
    /// Mean token log-probability below which a text is always dropped.
    pub min_logprob: f32,
    /// Share of repeated word 3-grams above which a text is a loop.
    pub max_repetition: f32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            no_speech: 0.6,
            logprob: -1.0,
            min_logprob: -1.6,
            max_repetition: 0.5,
        }
    }
}

/// Why a transcript was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// whisper says there is no speech and is unsure of the text.
    NoSpeech,
    /// The text's mean log-probability is too low.
    Unsure,
    /// The text loops.
    Loop,
    /// Only known inventions (subtitle credits and the like) were left.
    Invention,
}

/// Sentences whisper writes on audio without speech, lower case without
/// punctuation; a sentence containing one is removed.
const INVENTIONS: [&str; 24] = [
    "tak fordi du så med",
    "tak fordi i så med",
    "tak for at se med",
    "tak fordi du lyttede med",
    "undertekster af",
    "undertekstet af",
    "danske tekster",
    "tekster af",
    "tekstet af",
    "oversat af",
    "abonner på",
    "amara org",
    "www",
    "thanks for watching",
    "thank you for watching",
    "thank you for listening",
    "subtitles by",
    "captions by",
    "transcribed by",
    "translated by",
    "please subscribe",
    "like and subscribe",
    "see you next time",
    "see you in the next video",
];

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A web address ("amara.org", "www.dr.dk"): subtitle credits, never a
/// caller's words on the phone.
fn is_address(word: &str) -> bool {
    let w = word
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    w.starts_with("www.")
        || [".org", ".com", ".dk", ".net", ".tv"]
            .iter()
            .any(|tld| w.len() > tld.len() + 1 && w.ends_with(tld))
}

/// The sentences of a text: each ends at `.`, `!` or `?` followed by a
/// space or the end (so "amara.org" stays whole).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let at_end = chars.get(k + 1).is_none_or(|(_, n)| n.is_whitespace());
        if matches!(c, '.' | '!' | '?') && at_end {
            let end = i + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Removes the sentences that contain a known invention or a web address;
/// what is left, trimmed (empty when nothing else was said).
pub fn strip_inventions(text: &str) -> String {
    let mut kept = Vec::new();
    for sentence in sentences(text) {
        let w = words(sentence).join(" ");
        let padded = format!(" {w} ");
        let invented = INVENTIONS
            .iter()
            .any(|i| padded.contains(&format!(" {i} ")))
            || sentence.split_whitespace().any(is_address);
        if !invented {
            kept.push(sentence);
        }
    }
    kept.concat().trim().to_string()
}

/// Share of the text's word 3-grams that already occurred earlier in it
/// (0 for texts under 6 words): 0.5 and more is a loop.
pub fn repetition(text: &str) -> f32 {
    let w = words(text);
    if w.len() < 6 {
        return 0.0;
    }
    let grams: Vec<&[String]> = w.windows(3).collect();
    let repeated = grams
        .iter()
        .enumerate()
        .filter(|(i, g)| grams[..*i].contains(g))
        .count();
    repeated as f32 / grams.len() as f32
}

/// The transcript to hand on, or why it was dropped: `text` as decoded,
/// whisper's `no_speech` probability and the mean token log-probability.
pub fn judge(
    config: &GuardConfig,
    text: &str,
    no_speech: f32,
    avg_logprob: f32,
) -> Result<String, Dropped> {
    if no_speech > config.no_speech && avg_logprob < config.logprob {
        return Err(Dropped::NoSpeech);
    }
    if avg_logprob < config.min_logprob {
        return Err(Dropped::Unsure);
    }
    let collapsed = crate::collapse_repetition(text.trim());
    if repetition(&collapsed) > config.max_repetition {
        return Err(Dropped::Loop);
    }
    let kept = strip_inventions(&collapsed);
    if kept.is_empty() && !collapsed.is_empty() {
        return Err(Dropped::Invention);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtitle_credits_are_removed_and_speech_around_them_kept() {
        assert_eq!(strip_inventions("Tak fordi du så med."), "");
        assert_eq!(
            strip_inventions("Undertekster af Nicolai Winther"),
            "",
            "credits with a name"
        );
        assert_eq!(
            strip_inventions("Jeg skal have et nyt pas. Tak fordi du så med!"),
            "Jeg skal have et nyt pas."
        );
        assert_eq!(strip_inventions("Thanks for watching!"), "");
        assert_eq!(strip_inventions("myrfornminanj.org"), "", "a web address");
        assert_eq!(
            strip_inventions("Det koster 2.50 kr. Tak."),
            "Det koster 2.50 kr. Tak.",
            "a decimal point does not end a sentence"
        );
        assert_eq!(
            strip_inventions("Tak for hjælpen."),
            "Tak for hjælpen.",
            "a caller's thanks are speech"
        );
        assert_eq!(
            strip_inventions("Hvad koster teksterne"),
            "Hvad koster teksterne"
        );
    }

    #[test]
    fn repeated_word_groups_measure_a_loop() {
        assert_eq!(repetition("jeg skal have et nyt pas"), 0.0);
        assert!(
            repetition("I talked to a real person I talked to a real person I talked to") > 0.5
        );
        assert_eq!(repetition("ja ja ja"), 0.0, "too short to judge");
    }

    #[test]
    fn silence_judged_as_no_speech_gives_no_text() {
        let c = GuardConfig::default();
        assert_eq!(judge(&c, "Tak.", 0.8, -1.2), Err(Dropped::NoSpeech));
        assert_eq!(
            judge(&c, "Ja.", 0.8, -0.3).as_deref(),
            Ok("Ja."),
            "a sure short answer stays even when whisper doubts there was speech"
        );
        assert_eq!(judge(&c, "Gurgle blop", 0.1, -2.0), Err(Dropped::Unsure));
        assert_eq!(
            judge(&c, "Undertekster af Amara.org", 0.2, -0.4),
            Err(Dropped::Invention)
        );
        assert_eq!(
            judge(&c, "  Jeg vil aflyse.  ", 0.0, -0.2).as_deref(),
            Ok("Jeg vil aflyse.")
        );
        assert_eq!(judge(&c, "", 0.0, -0.1).as_deref(), Ok(""));
    }

    #[test]
    fn a_loop_that_collapses_to_a_phrase_is_kept_once() {
        let c = GuardConfig::default();
        assert_eq!(
            judge(
                &c,
                "I talked to a real person. I talked to a real person.",
                0.0,
                -0.3
            )
            .as_deref(),
            Ok("I talked to a real person.")
        );
        assert_eq!(
            judge(
                &c,
                "og så og så og så og så og så går vi og så og så",
                0.0,
                -0.3
            ),
            Err(Dropped::Loop)
        );
    }

    #[test]
    fn the_section_reads_from_toml() {
        let c: GuardConfig = toml::from_str("no_speech = 0.5\n").unwrap();
        assert_eq!(c.no_speech, 0.5);
        assert_eq!(c.min_logprob, GuardConfig::default().min_logprob);
        assert!(toml::from_str::<GuardConfig>("nospeech = 1\n").is_err());
    }
}
