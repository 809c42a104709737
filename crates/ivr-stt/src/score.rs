//! Accuracy measures for the speech test set and the benchmark: word error
//! rate over normalised text, and keyword hits.

/// Lower case, punctuation removed (letters, digits and apostrophes inside
/// words kept), whitespace collapsed. Works for Danish letters (æ, ø, å).
pub fn normalise(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Word-level edit distance between reference and hypothesis (after
/// [`normalise`]) and the number of reference words.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalise(reference);
    let h = normalise(hypothesis);
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rw != hw);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

/// Word error rate of one pair (errors / reference words).
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (e, n) = word_errors(reference, hypothesis);
    if n == 0 {
        return if e == 0 { 0.0 } else { 1.0 };
    }
    e as f64 / n as f64
}

/// True when `keyword` (one or more words) occurs in `text` as whole words
/// after normalisation.
pub fn contains_keyword(text: &str, keyword: &str) -> bool {
    let t = normalise(text);
    let k = normalise(keyword);
    !k.is_empty() && t.windows(k.len()).any(|w| w == k.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_punctuation_do_not_count_as_errors() {
        assert_eq!(
            word_error_rate(
                "I need help with my passport.",
                "i need help with my Passport"
            ),
            0.0
        );
        assert_eq!(
            normalise("Hej, jeg hedder Søren-Åge!"),
            vec!["hej", "jeg", "hedder", "søren", "åge"]
        );
    }

    #[test]
    fn substitutions_insertions_and_deletions_count_once_each() {
        assert_eq!(word_errors("a b c d", "a x c d"), (1, 4));
        assert_eq!(word_errors("a b c d", "a b c d e"), (1, 4));
        assert_eq!(word_errors("a b c d", "a c d"), (1, 4));
        assert_eq!(word_errors("", ""), (0, 0));
        assert_eq!(word_error_rate("a", ""), 1.0);
    }

    #[test]
    fn keywords_match_whole_words_only() {
        assert!(contains_keyword("Jeg har mistet mit pas.", "pas"));
        assert!(!contains_keyword("Jeg skal passe børn", "pas"));
        assert!(contains_keyword(
            "about my driving licence",
            "driving licence"
        ));
    }
}
