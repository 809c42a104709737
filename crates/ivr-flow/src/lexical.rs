//! Lexical features shared by intent recognition and knowledge retrieval:
//! normalised, stop-word-free, stemmed terms (Snowball stemmers for Danish
//! and English, so "aflysningen", "aflyste" and "aflyse" meet), and a BM25
//! index over short documents (intent examples, knowledge questions).
//!
//! The semantic signal (sentence embeddings) lives in [`crate::semantic`];
//! callers combine both.

use std::collections::HashMap;

use ivr_core::Lang;
use rust_stemmers::{Algorithm, Stemmer};

use crate::understand::normalize;

/// Words that carry no errand in either language (after [`normalize`]:
/// `æøå` are folded). Kept short on purpose: "ikke", "not", "nej", "no",
/// "tale", "ring" and the like are meaningful in a call and stay.
const STOP_WORDS: &[&str] = &[
    // Danish
    "jeg", "du", "vi", "han", "hun", "den", "det", "de", "en", "et", "og", "eller", "at", "til",
    "i", "paa", "af", "for", "med", "om", "som", "er", "var", "har", "have", "vil", "gerne",
    "skal", "kan", "lige", "bare", "saa", "da", "der", "her", "min", "mit", "mine", "din", "dit",
    "jo", "nu", "lidt", "godt", "hej", "goddag", "davs", "tak", "oeh", "oehm", "aeh", "hmm", "mm",
    "altsaa", "ja", "hvad", "hvordan", "noget", "sig", "mig", "os", "fra", "ved", "over", "efter",
    "ud", "op", "blive", "bliver", "vaere", "meget", "ogsaa", "lige", "hvis", "men",
    // English
    "the", "a", "an", "and", "or", "to", "of", "in", "on", "for", "with", "about", "is", "am",
    "are", "was", "be", "been", "have", "has", "i", "me", "my", "you", "your", "we", "it", "its",
    "would", "like", "want", "please", "hello", "hi", "um", "uh", "er", "erm", "so", "just",
    "could", "can", "do", "does", "this", "that", "there", "here", "some", "thanks", "thank",
    "yes", "well", "oh", "okay", "ok", "from", "at", "by", "up", "out", "if", "but",
];

/// True for a word (normalised) that carries no errand ([`STOP_WORDS`]).
pub fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.contains(&w)
}

/// English contraction tails left by normalisation ("it's", "I'm", "we'll").
const CLITICS: &[&str] = &["s", "m", "ll", "ve", "re", "d"];

fn algorithm(lang: Lang) -> Option<Algorithm> {
    match lang {
        Lang::Da => Some(Algorithm::Danish),
        Lang::En => Some(Algorithm::English),
        _ => None,
    }
}

/// A reusable stemmer per language (construction is cheap, but terms are
/// computed per caller turn and per example at load).
pub struct Terms {
    stemmers: Vec<(Lang, Stemmer)>,
}

impl std::fmt::Debug for Terms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Terms")
    }
}

impl Default for Terms {
    fn default() -> Self {
        Terms {
            stemmers: Lang::ALL
                .iter()
                .filter_map(|&l| algorithm(l).map(|a| (l, Stemmer::create(a))))
                .collect(),
        }
    }
}

impl Terms {
    /// The stemmed content words of `text` read in `lang`: normalised, stop
    /// words removed, each word stemmed. Digits are kept as they are.
    pub fn of(&self, text: &str, lang: Lang) -> Vec<String> {
        // A language without a Snowball stemmer gets unstemmed words.
        let stemmer = self
            .stemmers
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, s)| s);
        normalize(text)
            .split(' ')
            // "can't" / "don't" normalise to "can t": keep the negation.
            .map(|w| {
                if lang == Lang::En && w == "t" {
                    "not"
                } else {
                    w
                }
            })
            .filter(|w| !w.is_empty() && !STOP_WORDS.contains(w) && !CLITICS.contains(w))
            .map(|w| match stemmer {
                Some(s) if !w.chars().any(|c| c.is_ascii_digit()) => {
                    let stem = s.stem(w);
                    match lang {
                        Lang::Da => danish_conflate(&stem).to_string(),
                        _ => stem.into_owned(),
                    }
                }
                _ => w.to_string(),
            })
            .collect()
    }
}

impl Terms {
    /// Every word of `text` read in `lang`, stemmed, stop words kept: for
    /// phrases whose small words matter ("ring mig op" is not "ringer om").
    pub fn stems(&self, text: &str, lang: Lang) -> Vec<String> {
        let stemmer = self
            .stemmers
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, s)| s);
        normalize(text)
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| match stemmer {
                Some(s) if !w.chars().any(|c| c.is_ascii_digit()) => {
                    let stem = s.stem(w);
                    match lang {
                        Lang::Da => danish_conflate(&stem).to_string(),
                        _ => stem.into_owned(),
                    }
                }
                _ => w.to_string(),
            })
            .collect()
    }
}

/// Snowball's Danish stemmer leaves verbal nouns and past forms apart from
/// their verb ("aflysning", "aflyst", "aflys"): fold those endings too, on
/// stems long enough that a root remains.
fn danish_conflate(stem: &str) -> &str {
    if stem.len() > 6 {
        if let Some(root) = stem.strip_suffix("ning") {
            return root;
        }
    }
    if stem.len() > 4 && stem.ends_with("st") {
        return &stem[..stem.len() - 1];
    }
    stem
}

/// The parts of a Danish compound that a vocabulary knows, when the
/// compound itself is not in it: "pasfornyelse" (stem "pasfornyel") holds
/// "pas", "sygesikringsbevis" holds "sygesikring", "papircontaineren"
/// (stem "papircontain") holds "contain", "jobkonsulent" holds "job".
/// Callers name their errand in compounds nobody wrote down, and both the
/// modifier (what it is about) and the head (what it is) tell the errand.
///
/// - A modifier: the longest known term the word starts with, at least
///   [`MODIFIER_MIN`] letters, followed (after a linking "s" or "e") by at
///   least [`REST_MIN`] more letters, or [`REST_MIN_SHORT`] after a
///   three-letter modifier ("passende" is not about a passport).
/// - A head: the longest known term of at least [`HEAD_MIN`] letters the
///   word ends with, after at least three letters (a four-letter head such
///   as "ring" ends too many words: "sygesikring", "forsikring").
///
/// `term` and the vocabulary are stems ([`Terms::of`]); the result is empty
/// for a word the vocabulary knows or one too short to be a compound.
pub fn compound_parts(term: &str, vocabulary: impl Fn(&str) -> bool) -> Vec<String> {
    let n = term.len();
    if n < COMPOUND_MIN || vocabulary(term) || !term.is_ascii() {
        return Vec::new();
    }
    let mut parts = Vec::new();
    // The longest modifier first.
    for k in (MODIFIER_MIN..=n - REST_MIN).rev() {
        let (head, rest) = term.split_at(k);
        let rest = rest
            .strip_prefix('s')
            .filter(|r| r.len() >= REST_MIN)
            .unwrap_or(rest);
        let need = if k < 4 { REST_MIN_SHORT } else { REST_MIN };
        if rest.len() >= need && vocabulary(head) {
            parts.push(head.to_string());
            break;
        }
    }
    for k in 3..=n - HEAD_MIN {
        let tail = &term[k..];
        if vocabulary(tail) {
            if !parts.iter().any(|p| p == tail) {
                parts.push(tail.to_string());
            }
            break;
        }
    }
    parts
}

/// Shortest word [`compound_parts`] splits.
pub const COMPOUND_MIN: usize = 7;
/// Shortest modifier of a compound.
pub const MODIFIER_MIN: usize = 3;
/// Letters a compound must have after its modifier.
pub const REST_MIN: usize = 4;
/// Letters a compound must have after a three-letter modifier.
pub const REST_MIN_SHORT: usize = 5;
/// Shortest head of a compound.
pub const HEAD_MIN: usize = 5;

/// Stemmed content words of `text` in `lang` (see [`Terms::of`]).
pub fn terms(text: &str, lang: Lang) -> Vec<String> {
    Terms::default().of(text, lang)
}

/// Okapi BM25 over a fixed set of short documents (each a list of terms).
/// Scores are comparable within one query only; use [`Bm25::normalised`]
/// for a 0..1 figure to combine with other signals.
#[derive(Debug, Clone)]
pub struct Bm25 {
    docs: Vec<HashMap<String, u32>>,
    lens: Vec<f32>,
    avg_len: f32,
    df: HashMap<String, u32>,
    k1: f32,
    b: f32,
}

impl Bm25 {
    /// Builds the index (k1 = 1.2, b = 0.75, the usual defaults; documents
    /// here are a sentence or two, so length normalisation matters little).
    pub fn new(docs: &[Vec<String>]) -> Bm25 {
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut tfs = Vec::with_capacity(docs.len());
        let mut lens = Vec::with_capacity(docs.len());
        for doc in docs {
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in doc {
                *tf.entry(t.clone()).or_default() += 1;
            }
            for t in tf.keys() {
                *df.entry(t.clone()).or_default() += 1;
            }
            lens.push(doc.len() as f32);
            tfs.push(tf);
        }
        let avg_len = if lens.is_empty() {
            0.0
        } else {
            lens.iter().sum::<f32>() / lens.len() as f32
        };
        Bm25 {
            docs: tfs,
            lens,
            avg_len,
            df,
            k1: 1.2,
            b: 0.75,
        }
    }

    /// Number of documents indexed.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn idf(&self, term: &str) -> f32 {
        let n = self.docs.len() as f32;
        let df = self.df.get(term).copied().unwrap_or(0) as f32;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// BM25 score of document `doc` for the query terms (0 for an unknown
    /// document index).
    pub fn score(&self, query: &[String], doc: usize) -> f32 {
        let (Some(tf), Some(len)) = (self.docs.get(doc), self.lens.get(doc)) else {
            return 0.0;
        };
        let norm = if self.avg_len > 0.0 {
            len / self.avg_len
        } else {
            1.0
        };
        query
            .iter()
            .map(|t| {
                let f = tf.get(t).copied().unwrap_or(0) as f32;
                if f == 0.0 {
                    return 0.0;
                }
                self.idf(t) * f * (self.k1 + 1.0) / (f + self.k1 * (1.0 - self.b + self.b * norm))
            })
            .sum()
    }

    /// Scores of every document for the query, in document order.
    pub fn scores(&self, query: &[String]) -> Vec<f32> {
        (0..self.docs.len()).map(|d| self.score(query, d)).collect()
    }

    /// The score of `doc` divided by the best score the query could reach
    /// (every query term matched once in an average-length document): a
    /// 0..1 figure that does not depend on how many documents there are.
    pub fn normalised(&self, query: &[String], doc: usize) -> f32 {
        let best: f32 = query.iter().map(|t| self.idf(t)).sum();
        if best <= 0.0 {
            return 0.0;
        }
        (self.score(query, doc) / best).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn compounds_nobody_wrote_down_meet_their_known_parts() {
        let known = [
            "pas",
            "sygesikring",
            "contain",
            "job",
            "tilskud",
            "ring",
            "gad",
        ];
        let v = |t: &str| known.contains(&t);
        let t = Terms::default();
        let stem = |w: &str| t.of(w, Lang::Da).remove(0);
        assert_eq!(super::compound_parts(&stem("pasfornyelse"), v), ["pas"]);
        assert_eq!(
            super::compound_parts(&stem("sygesikringsbevis"), v),
            ["sygesikring"]
        );
        assert_eq!(
            super::compound_parts(&stem("papircontaineren"), v),
            ["contain"]
        );
        assert_eq!(super::compound_parts(&stem("jobkonsulent"), v), ["job"]);
        assert_eq!(
            super::compound_parts(&stem("børnetilskuddet"), v),
            ["tilskud"]
        );
        // Not compounds of a known word: a word that starts like "pas" ("passager"), a
        // word that ends like "ring", a word known itself.
        assert!(super::compound_parts("passag", v).is_empty());
        assert!(super::compound_parts(&stem("forsikring"), v).is_empty());
        assert!(super::compound_parts("sygesikring", v).is_empty());
    }

    use super::*;

    #[test]
    fn danish_inflections_of_cancel_share_a_stem() {
        let t = Terms::default();
        let a = t.of("aflysningen", Lang::Da);
        let b = t.of("jeg aflyste", Lang::Da);
        let c = t.of("Jeg vil gerne aflyse", Lang::Da);
        assert_eq!(b, c, "aflyste / aflyse");
        assert_eq!(a, c, "aflysningen / aflyse");
    }

    #[test]
    fn stop_words_and_hesitations_are_dropped_but_negation_stays() {
        let t = Terms::default();
        assert_eq!(t.of("øh jeg kan ikke komme", Lang::Da), vec!["ikk", "kom"]);
        assert_eq!(t.of("um I can't make it", Lang::En), vec!["not", "make"]);
    }

    #[test]
    fn bm25_ranks_the_document_sharing_rare_terms_first() {
        let t = Terms::default();
        let docs: Vec<Vec<String>> = [
            "aflyse min tid i jobcentret",
            "tale med jobcentret",
            "forny mit pas",
        ]
        .iter()
        .map(|d| t.of(d, Lang::Da))
        .collect();
        let idx = Bm25::new(&docs);
        let q = t.of("jeg skal aflyse mit møde på jobcentret", Lang::Da);
        let s = idx.scores(&q);
        assert!(s[0] > s[1] && s[1] > s[2], "{s:?}");
        assert!(idx.normalised(&q, 0) > 0.0 && idx.normalised(&q, 0) <= 1.0);
        assert_eq!(idx.score(&q, 7), 0.0);
    }
}
