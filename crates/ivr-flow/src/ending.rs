//! Does a transcript of the caller's words so far sound like a finished
//! sentence? The end of turn by answer (`Interpreter::would_answer`) asks it
//! for open answers (a menu's errand, a date) before it ends the caller's turn
//! at a short pause: a caller who stops after "jeg ringer angående", "det
//! handler om øh" or "the fourteenth of" is searching for the next word, even
//! when those words already score an intent.
//!
//! The signals are the ones a listener uses without knowing the errand:
//! - the recogniser's punctuation: whisper writes a trailing comma, dash or
//!   ellipsis where the speaker's voice went on;
//! - the last word: a sentence does not end on a closed-class word that needs
//!   a continuation (a conjunction, a preposition, an article or possessive,
//!   a subject pronoun, an auxiliary or modal verb) or on a filler ("øh",
//!   "altså", "um");
//! - for a date, the words that close one (a month, a weekday, "i morgen"):
//!   a day number without its month ("den femtende") waits for the month.
//!
//! A wrong "unfinished" costs only time (the end silence decides, as
//! without this rule); a wrong "finished" cuts the caller off, so words that
//! can end a sentence as often as they continue one ("det", "it", "that",
//! "you", "so") are not listed.

use ivr_core::Lang;

use crate::understand::normalize;

/// Danish words (normalised: æøå folded) after which a sentence goes on.
#[rustfmt::skip]
const DA_CONTINUES: &[&str] = &[
    // conjunctions and subjunctions
    "og", "eller", "men", "at", "fordi", "hvis", "som", "naar", "mens", "selvom", "end", "samt",
    // prepositions
    "i", "paa", "til", "af", "for", "med", "om", "fra", "ved", "hos", "mod", "uden", "under",
    "efter", "foer", "inden", "gennem", "mellem", "angaaende", "vedroerende", "omkring", "ang",
    // articles, determiners, possessives
    "en", "et", "den", "de", "min", "mit", "mine", "din", "dit", "dine", "sin", "sit", "sine",
    "vores", "jeres", "deres", "nogle", "saadan", "hvilken", "hvilket",
    // subject pronouns (after an inverted verb the sentence usually goes on)
    "jeg", "du", "vi", "man", "han", "hun",
    // auxiliaries and modals
    "er", "var", "har", "havde", "skal", "skulle", "vil", "ville", "kan", "kunne", "maa",
    "maatte", "boer", "blev", "bliver", "have", "faa", "vaere", "gerne", "lige", "bare",
    // fillers and word searches ("hvad hedder det")
    "oeh", "oehm", "aeh", "aehm", "oe", "hmm", "hm", "mm", "mmm", "altsaa", "ligesom", "hedder",
];

/// English words after which a sentence goes on.
#[rustfmt::skip]
const EN_CONTINUES: &[&str] = &[
    // conjunctions
    "and", "or", "but", "because", "if", "when", "than", "whether", "while", "although",
    // prepositions
    "to", "of", "in", "on", "at", "for", "with", "about", "from", "by", "into", "regarding",
    "concerning", "like",
    // articles, determiners, possessives
    "the", "a", "an", "my", "your", "our", "their", "its",
    // subject pronouns
    "i", "we", "he", "she", "they",
    // auxiliaries and modals (and contraction tails spelt out)
    "is", "am", "are", "was", "were", "be", "been", "have", "has", "had", "will", "would",
    "can", "could", "should", "must", "want", "need", "d", "m", "ll", "re", "ve",
    // fillers and word searches ("what's it called")
    "um", "uh", "er", "erm", "uhm", "hmm", "hm", "mm", "called",
];

/// The recogniser's marks of a voice that went on.
fn trailing_continuation_mark(text: &str) -> bool {
    let t = text.trim_end();
    t.ends_with(',')
        || t.ends_with("...")
        || t.ends_with('…')
        || t.ends_with('-')
        || t.ends_with('–')
        || t.ends_with(':')
        || t.ends_with(';')
}

/// Whether the words so far (`text`, as the recogniser wrote them, in
/// `lang`) sound unfinished: the caller is pausing inside the sentence. Empty
/// text is unfinished. Languages without word lists are judged by the
/// punctuation alone.
pub fn sounds_unfinished(text: &str, lang: Lang) -> bool {
    if trailing_continuation_mark(text) {
        return true;
    }
    let norm = normalize(text);
    let Some(last) = norm.split(' ').next_back().filter(|w| !w.is_empty()) else {
        return true;
    };
    match lang {
        Lang::Da => DA_CONTINUES.contains(&last),
        Lang::En => EN_CONTINUES.contains(&last),
        _ => false,
    }
}

/// Whether a date said so far sounds finished: it ends on the words that
/// close a date or the time after it (a month, a weekday, a year, "i
/// morgen", "tomorrow", a numeric date, "o'clock", "om eftermiddagen"), or on
/// a number after a month or weekday ("February 14th", "marts klokken ni",
/// "fredag den niende"). A day number alone ("den femtende", "the
/// fourteenth"), an article ("på fredag den") or a word the recogniser made
/// up at the cut ("next Tuesday the next") is not the end of a date.
pub fn date_sounds_finished(text: &str) -> bool {
    use crate::understand::{is_date_closing_word, is_day_number, is_month_or_weekday};
    let norm = normalize(text);
    let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    match words.split_last() {
        Some((last, before)) if is_day_number(last) => {
            before.iter().any(|w| is_month_or_weekday(w))
        }
        Some((last, _)) => is_date_closing_word(last),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_ending_on_a_word_that_needs_more_is_unfinished() {
        for (text, lang) in [
            ("Jeg ringer angående", Lang::Da),
            ("Det handler om øh", Lang::Da),
            ("Jeg vil gerne", Lang::Da),
            ("Jeg er lige flyttet og", Lang::Da),
            ("Kan du hjælpe mig med", Lang::Da),
            ("I'm calling about my", Lang::En),
            ("I need to renew the", Lang::En),
            ("It's about um", Lang::En),
            ("I'd", Lang::En),
            ("", Lang::Da),
        ] {
            assert!(sounds_unfinished(text, lang), "{text:?}");
        }
    }

    #[test]
    fn the_recognisers_continuation_marks_are_unfinished() {
        assert!(sounds_unfinished(
            "Min skraldespand er ikke blevet tømt,",
            Lang::Da
        ));
        assert!(sounds_unfinished("Det er om mit pas...", Lang::Da));
        assert!(sounds_unfinished("My passport -", Lang::En));
    }

    #[test]
    fn a_sentence_ending_on_its_errand_is_finished() {
        for (text, lang) in [
            ("Jeg skal have fornyet mit pas.", Lang::Da),
            ("Min skraldespand er ikke blevet tømt", Lang::Da),
            ("Det drejer sig om boligstøtte", Lang::Da),
            ("Jeg forstår det ikke", Lang::Da),
            ("I need a new passport.", Lang::En),
            ("It's about my housing benefit", Lang::En),
            ("Thank you", Lang::En),
        ] {
            assert!(!sounds_unfinished(text, lang), "{text:?}");
        }
    }

    #[test]
    fn a_date_is_finished_on_the_words_that_close_it() {
        for t in [
            "den femtende marts",
            "Den tredje april.",
            "the fourteenth of February",
            "February 14th",
            "på fredag",
            "i morgen",
            "tomorrow",
            "den 3/12",
            "den tredje december 2026",
            "The fifteenth of March at nine o'clock.",
            "Den femtende marts klokken ni.",
            "på fredag den niende",
            "Helst på tirsdag om eftermiddagen",
        ] {
            assert!(date_sounds_finished(t), "{t:?}");
        }
        for t in [
            "den femtende",
            "the fourteenth",
            "den 15.",
            "på fredag den",
            "Next Tuesday the next",
            "the fourteenth of",
            "",
        ] {
            assert!(!date_sounds_finished(t), "{t:?}");
        }
    }
}
