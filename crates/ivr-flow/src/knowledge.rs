//! Knowledge: answers to callers' general questions, written by operators in
//! `flows/<municipality>/knowledge/*.toml` and found by retrieval, never
//! generated. See `docs/knowledge.md` for the file format.
//!
//! - Loading ([`load_dir`]): entries are validated with file:line:column like
//!   flows (department exists, every language has questions, a title and an
//!   answer, a source, dates in order); a broken entry refuses the whole
//!   load, so the previous version keeps serving.
//! - Retrieval ([`KnowledgeBase::retrieve`]): the caller's words, as stemmed
//!   terms, are scored against every phrasing of every entry valid today with
//!   BM25 ([`crate::lexical`]), plus, when the engine hands one over, the
//!   cosine similarity of sentence embeddings ([`crate::semantic`]; the
//!   entries' vectors are computed once, by [`KnowledgeBase::embed`], never
//!   per turn). The best entry's score and its margin over the next give a
//!   [`Decision`]: answer, ask which of two, or decline.
//! - Computed answers ([`Answer::Hours`]): opening hours are never written
//!   in an entry; they are read from `municipality.toml` and the holiday
//!   calendar for the day the caller asks about ([`hours_answer`]).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use ivr_core::Lang;
use serde::Deserialize;
use toml::Spanned;

use crate::{
    diag::{closest, Diagnostic, Severity, Source},
    hours::{easter_sunday, DayKind, Holiday, OptionalClosure},
    lexical::{Bm25, Terms},
    model::Department,
    semantic::{cosine, Role, SentenceEncoder},
    speak,
    understand::{self, normalize},
};

type S<T> = Spanned<T>;
type LangMap<T> = BTreeMap<String, T>;

/// What follows a confirmed-unhelpful or any answer, when the entry asks
/// for more than the flow's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Nothing beyond the flow's own way on.
    None,
    /// Offer to put the caller through to the entry's department.
    Transfer,
    /// Offer a callback from the entry's department.
    Callback,
    /// Offer to mail a link (the entry's `link`).
    Mail {
        /// The page to send.
        link: String,
    },
}

impl FollowUp {
    /// The TOML name.
    pub fn as_str(&self) -> &'static str {
        match self {
            FollowUp::None => "none",
            FollowUp::Transfer => "transfer",
            FollowUp::Callback => "callback",
            FollowUp::Mail { .. } => "mail",
        }
    }
}

/// The answer of an entry.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Written by the operator, per language, for the ear.
    Written(BTreeMap<Lang, String>),
    /// Computed: the opening hours of this department on the day asked about.
    Hours(String),
}

/// One question the knowledge base can answer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique id within the municipality (`pas-pris`).
    pub id: String,
    /// The file it came from and the line of its `id`.
    pub file: PathBuf,
    /// 1-based line of the entry's `id`.
    pub line: usize,
    /// Department that owns the answer (and takes the caller when it did
    /// not help).
    pub department: String,
    /// A short name per language, used when asking "do you mean A or B?".
    pub title: BTreeMap<Lang, String>,
    /// How callers ask it, per language.
    pub questions: BTreeMap<Lang, Vec<String>>,
    /// The answer.
    pub answer: Answer,
    /// Where the answer comes from (URL or document); "municipality.toml"
    /// for computed opening hours.
    pub source: String,
    /// First day the answer holds.
    pub valid_from: Option<NaiveDate>,
    /// Last day the answer holds.
    pub valid_to: Option<NaiveDate>,
    /// What is offered after the answer.
    pub follow_up: FollowUp,
    /// The entry states prices or rules of a fictional municipality.
    pub fictional: bool,
}

impl Entry {
    /// True when the entry may be read on `date`.
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= date) && self.valid_to.is_none_or(|t| date <= t)
    }

    /// The title in a language (any language when missing).
    pub fn title(&self, lang: Lang) -> &str {
        self.title
            .get(&lang)
            .or_else(|| self.title.values().next())
            .map_or("", String::as_str)
    }
}

/// Thresholds of the decision. Scores are 0..1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// The best entry is read when it scores at least this ...
    pub answer: f32,
    /// ... and leads the next entry by at least this.
    pub margin: f32,
    /// Two entries both at least this, closer than `margin`: ask which.
    pub clarify: f32,
}

impl Thresholds {
    /// Measured on `tests/vectors/knowledge_questions/dev.toml` with the
    /// lexical signal alone (see `docs/knowledge.md`).
    pub const LEXICAL: Thresholds = Thresholds {
        answer: 0.56,
        margin: 0.08,
        clarify: 0.5,
    };
    /// With the sentence encoder's signal combined in.
    pub const COMBINED: Thresholds = Thresholds {
        answer: 0.56,
        margin: 0.06,
        clarify: 0.5,
    };
}

/// What to do with a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Read this entry (an index into [`KnowledgeBase::entries`]).
    Answer(usize),
    /// Two entries are close: ask the caller which one.
    Clarify(usize, usize),
    /// Not confident: say so and route to a human or a callback.
    Decline,
}

/// One scored entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Index into [`KnowledgeBase::entries`].
    pub entry: usize,
    /// The combined score the decision uses.
    pub score: f32,
    /// The lexical score (BM25, normalised 0..1).
    pub lexical: f32,
    /// The semantic score (rescaled cosine 0..1), when an encoder is set.
    pub semantic: Option<f32>,
    /// The raw cosine of the entry's closest phrasing, when an encoder is
    /// set: comparable with an intent example's (same encoder, same roles).
    pub cosine: Option<f32>,
}

/// The outcome of a retrieval: candidates best first, and the decision.
#[derive(Debug, Clone)]
pub struct Retrieval {
    /// Entries with a score above zero, best first (at most 10).
    pub candidates: Vec<Candidate>,
    /// What to do.
    pub decision: Decision,
}

/// One language's lexical index: a BM25 document per phrasing, and one
/// "bag" per entry (title and every phrasing together).
#[derive(Debug, Clone)]
struct LangIndex {
    phrasings: Bm25,
    phrasing_entry: Vec<usize>,
    phrasing_terms: Vec<Vec<String>>,
    bags: Bm25,
    bag_terms: Vec<Vec<String>>,
    vocabulary: BTreeSet<String>,
    df: HashMap<String, u32>,
}

/// Entry vectors for the semantic signal (computed once).
#[derive(Clone)]
struct SemanticIndex {
    encoder: Arc<dyn SentenceEncoder>,
    /// (entry, vector of one phrasing), every language.
    vectors: Vec<(usize, Vec<f32>)>,
}

impl std::fmt::Debug for SemanticIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SemanticIndex({}, {} vectors)",
            self.encoder.name(),
            self.vectors.len()
        )
    }
}

/// A municipality's knowledge: entries and their indices.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeBase {
    entries: Vec<Entry>,
    index: BTreeMap<Lang, LangIndex>,
    semantic: Option<SemanticIndex>,
    thresholds: Option<Thresholds>,
}

/// Words that ask rather than name an errand: they say a question is asked
/// but do not tell which (dropped before scoring, after the stop words of
/// [`crate::lexical`]).
const FILLER: &[&str] = &[
    // Danish (normalised, before stemming)
    "vide",
    "spoerge",
    "spoergsmaal",
    "egentlig",
    "mon",
    "fortaelle",
    "sige",
    "ringer",
    "ringede",
    "fordi",
    "nogen",
    "nogle",
    "man",
    "hvordan",
    "hvad",
    "venligst",
    "lige",
    "tror",
    "faktisk",
    "sgu",
    "nok",
    "vel",
    "alle",
    "jer",
    "i",
    "kommune",
    "kommunen",
    "hoere",
    "undre",
    "undrer",
    "ville",
    "kunne",
    "skulle",
    "hvis",
    "naar",
    "ogsaa",
    "der",
    "gaelder",
    "forhold",
    "angaaende",
    "mht",
    "omkring",
    "eller",
    "nordby",
    "sydhavn",
    // English
    "wonder",
    "wondering",
    "know",
    "tell",
    "question",
    "ask",
    "asking",
    "calling",
    "called",
    "wanted",
    "need",
    "needs",
    "what",
    "how",
    "should",
    "will",
    "municipality",
    "council",
    "actually",
    "maybe",
    "any",
    "anyone",
    "somebody",
    "get",
    "got",
    "much",
    "many",
    "does",
    "did",
    "guys",
    "nordby",
    "sydhavn",
    "which",
    "who",
    "whom",
    "whether",
    "regarding",
    "also",
];

/// Words naming a day (weekdays, months, holidays, "today"): they pick the
/// day of a computed answer and are not scored.
fn is_day_word(w: &str) -> bool {
    const DAY: &[&str] = &[
        "dag",
        "idag",
        "morgen",
        "imorgen",
        "overmorgen",
        "today",
        "tomorrow",
        "tonight",
        "week",
        "weekend",
        "weekenden",
        "uge",
        "ugen",
        "naeste",
        "next",
        "this",
        "coming",
        "kommende",
        "den",
        "on",
        "day",
        "days",
        "dage",
        "date",
        "dato",
    ];
    DAY.contains(&w)
        || w.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '/')
        || calendar_name(w)
        || holiday_word(w)
}

/// A weekday or month name in any language (normalised: "loerdag").
fn calendar_name(w: &str) -> bool {
    Lang::ALL.iter().any(|&l| {
        ivr_core::dates::weekday_names(l)
            .iter()
            .chain(ivr_core::dates::month_names(l).iter())
            .any(|n| normalize(n) == w)
    })
}

/// Holiday words (normalised) that name a day a caller may ask about.
fn holiday_word(w: &str) -> bool {
    matches!(
        w,
        "juleaftensdag"
            | "juleaften"
            | "juledag"
            | "juledagen"
            | "anden"
            | "2"
            | "nytaarsaftensdag"
            | "nytaarsaften"
            | "nytaarsdag"
            | "grundlovsdag"
            | "grundlovsdagen"
            | "skaertorsdag"
            | "langfredag"
            | "paaskedag"
            | "paaske"
            | "paasken"
            | "paaskedagene"
            | "himmelfartsdag"
            | "himmelfart"
            | "kristi"
            | "pinsedag"
            | "pinse"
            | "pinsen"
            | "christmas"
            | "xmas"
            | "eve"
            | "boxing"
            | "new"
            | "year"
            | "years"
            | "constitution"
            | "easter"
            | "maundy"
            | "good"
            | "friday"
            | "ascension"
            | "whit"
            | "whitsun"
            | "pentecost"
            | "holiday"
            | "holidays"
            | "helligdag"
            | "helligdage"
            | "jul"
            | "julen"
            | "nytaar"
    )
}

impl KnowledgeBase {
    /// A knowledge base of already validated entries (tests, benches).
    pub fn new(entries: Vec<Entry>) -> KnowledgeBase {
        let terms = Terms::default();
        let mut index = BTreeMap::new();
        for lang in Lang::ALL {
            let mut phrasing_terms = Vec::new();
            let mut phrasing_entry = Vec::new();
            let mut bag_terms = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                let mut bag = query_terms(&terms, e.title(lang), lang);
                for q in e.questions.get(&lang).into_iter().flatten() {
                    let t = query_terms(&terms, q, lang);
                    bag.extend(t.iter().cloned());
                    phrasing_terms.push(t);
                    phrasing_entry.push(i);
                }
                bag_terms.push(bag);
            }
            let mut df: HashMap<String, u32> = HashMap::new();
            for d in &phrasing_terms {
                for t in d.iter().collect::<BTreeSet<_>>() {
                    *df.entry(t.clone()).or_default() += 1;
                }
            }
            let vocabulary = phrasing_terms
                .iter()
                .chain(&bag_terms)
                .flatten()
                .cloned()
                .collect();
            index.insert(
                lang,
                LangIndex {
                    phrasings: Bm25::new(&phrasing_terms),
                    phrasing_entry,
                    phrasing_terms,
                    bags: Bm25::new(&bag_terms),
                    bag_terms,
                    vocabulary,
                    df,
                },
            );
        }
        KnowledgeBase {
            entries,
            index,
            semantic: None,
            thresholds: None,
        }
    }

    /// The entries, in load order (file name, then file order).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An entry by id.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The name of the sentence encoder in use, if any.
    pub fn encoder_name(&self) -> Option<&str> {
        self.semantic.as_ref().map(|s| s.encoder.name())
    }

    /// The thresholds in use (set, or the default for the signals present).
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds.unwrap_or(if self.semantic.is_some() {
            Thresholds::COMBINED
        } else {
            Thresholds::LEXICAL
        })
    }

    /// Uses other thresholds (tools and measurements).
    pub fn set_thresholds(&mut self, t: Thresholds) {
        self.thresholds = Some(t);
    }

    /// Adds the semantic signal: every phrasing of every entry is embedded
    /// now, once, as a passage; each question is embedded as a query when
    /// it is asked.
    ///
    /// # Errors
    /// The encoder's error for the first phrasing it could not embed (the
    /// knowledge base is then unchanged: lexical only).
    pub fn embed(
        &mut self,
        encoder: Arc<dyn SentenceEncoder>,
    ) -> Result<(), crate::semantic::EncodeError> {
        self.embed_via(&*encoder.clone(), encoder)
    }

    /// [`KnowledgeBase::embed`] with the phrasings' vectors made `via`
    /// another encoder of the same model (the disk cache of
    /// [`crate::vector_cache`]); `encoder` is kept for callers' questions.
    ///
    /// # Errors
    /// As [`KnowledgeBase::embed`].
    pub fn embed_via(
        &mut self,
        via: &dyn SentenceEncoder,
        encoder: Arc<dyn SentenceEncoder>,
    ) -> Result<(), crate::semantic::EncodeError> {
        let mut vectors = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            for q in e.questions.values().flatten() {
                vectors.push((i, via.embed(q, Role::Passage)?));
            }
        }
        self.semantic = Some(SemanticIndex { encoder, vectors });
        Ok(())
    }

    /// Scores the caller's words (in `lang`) against every entry valid on
    /// `today` and decides.
    pub fn retrieve(&self, text: &str, lang: Lang, today: NaiveDate) -> Retrieval {
        self.retrieve_with(text, lang, today, None)
    }

    /// The encoder the entries were embedded with, if any: a vector of the
    /// caller's words made by it can be handed to [`Self::retrieve_with`].
    pub fn encoder(&self) -> Option<&Arc<dyn SentenceEncoder>> {
        self.semantic.as_ref().map(|s| &s.encoder)
    }

    /// [`Self::retrieve`] with the words' vector already made by
    /// [`Self::encoder`] (`query`), so a turn is embedded once however many
    /// times it is looked up; `None`: embedded here.
    pub fn retrieve_with(
        &self,
        text: &str,
        lang: Lang,
        today: NaiveDate,
        query: Option<&[f32]>,
    ) -> Retrieval {
        let th = self.thresholds();
        let mut lexical = vec![0f32; self.entries.len()];
        let terms = Terms::default();
        if let Some(ix) = self.index.get(&lang) {
            let q = ix.expand(query_terms(&terms, text, lang));
            if !q.is_empty() {
                for (d, &e) in ix.phrasing_entry.iter().enumerate() {
                    let s = ix.phrasing_score(&q, d);
                    if s > lexical[e] {
                        lexical[e] = s;
                    }
                }
                for (e, lex) in lexical.iter_mut().enumerate() {
                    // The bag covers questions that take words from two phrasings.
                    let s = 0.9
                        * ix.bags
                            .normalised(&q, e)
                            .min(ix.coverage(&q, &ix.bag_terms[e]) * 2.0);
                    if s > *lex {
                        *lex = s;
                    }
                }
            }
        }
        let semantic: Option<Vec<f32>> = self.semantic.as_ref().and_then(|sx| {
            let made;
            let qv = match query {
                Some(q) => q,
                None => {
                    made = sx.encoder.embed(text, Role::Query).ok()?;
                    &made
                }
            };
            let mut best = vec![f32::MIN; self.entries.len()];
            for (e, v) in &sx.vectors {
                let c = cosine(qv, v);
                if c > best[*e] {
                    best[*e] = c;
                }
            }
            Some(best)
        });
        let mut candidates: Vec<Candidate> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.valid_on(today))
            .map(|(i, _)| {
                let raw = semantic.as_ref().map(|s| s[i]).filter(|c| *c > f32::MIN);
                let sem = semantic.as_ref().map(|s| rescale_cosine(s[i]));
                let score = match sem {
                    Some(s) => 0.5 * lexical[i] + 0.5 * s,
                    None => lexical[i],
                };
                Candidate {
                    entry: i,
                    score,
                    lexical: lexical[i],
                    semantic: sem,
                    cosine: raw,
                }
            })
            .filter(|c| c.score > 0.0)
            .collect();
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.entry.cmp(&b.entry)));
        candidates.truncate(10);
        let decision = match candidates.as_slice() {
            [] => Decision::Decline,
            [a] if a.score >= th.answer => Decision::Answer(a.entry),
            [a, b, ..] if a.score >= th.answer && a.score - b.score >= th.margin => {
                Decision::Answer(a.entry)
            }
            [a, b, ..] if a.score >= th.clarify && b.score >= th.clarify => {
                Decision::Clarify(a.entry, b.entry)
            }
            _ => Decision::Decline,
        };
        Retrieval {
            candidates,
            decision,
        }
    }

    /// Which of two entries the caller's reply to "do you mean A or B?"
    /// chose: a key (1, 2), "the first"/"the second", or the words of a
    /// title. `None` when the reply says neither.
    pub fn choose_between(&self, a: usize, b: usize, reply: &str, lang: Lang) -> Option<usize> {
        let norm = normalize(reply);
        let toks: Vec<&str> = norm.split(' ').collect();
        // Ordinals first ("the second one"), then numbers ("to", "1").
        let ordinal = |first: &[&str], second: &[&str]| -> Option<usize> {
            let f = toks.iter().any(|t| first.contains(t));
            let s = toks.iter().any(|t| second.contains(t));
            match (f, s) {
                (true, false) => Some(a),
                (false, true) => Some(b),
                _ => None,
            }
        };
        if let Some(x) = ordinal(
            &["foerste", "foerst", "first", "former"],
            &["anden", "andet", "second", "sidste", "last", "latter"],
        )
        .or_else(|| ordinal(&["1", "en", "et", "one"], &["2", "to", "two"]))
        {
            return Some(x);
        }
        let terms = Terms::default();
        let q = query_terms(&terms, reply, lang);
        let overlap = |e: usize| -> usize {
            let Some(entry) = self.entries.get(e) else {
                return 0;
            };
            let t = query_terms(&terms, entry.title(lang), lang);
            q.iter().filter(|w| t.contains(w)).count()
        };
        let (oa, ob) = (overlap(a), overlap(b));
        match oa.cmp(&ob) {
            std::cmp::Ordering::Greater => Some(a),
            std::cmp::Ordering::Less => Some(b),
            std::cmp::Ordering::Equal => None,
        }
    }
}

impl LangIndex {
    /// Query terms not in the entries' vocabulary are replaced by a known
    /// term they share a long prefix with: Danish compounds and inflections
    /// the stemmer leaves apart ("storskraldsordningen" meets "storskrald").
    fn expand(&self, q: Vec<String>) -> Vec<String> {
        q.into_iter()
            .map(|t| {
                if self.vocabulary.contains(&t) || t.chars().count() < 5 {
                    return t;
                }
                // Only endings: in a Danish compound the head comes last, so
                // "handicapparkeringskort" is a card, not parking.
                let near = |long: &str, short: &str| {
                    long.starts_with(short) && long.len() - short.len() <= 4
                };
                let best = self
                    .vocabulary
                    .iter()
                    .filter(|v| v.chars().count() >= 4)
                    .filter(|v| near(&t, v) || near(v, &t))
                    .max_by_key(|v| v.len());
                best.cloned().unwrap_or(t)
            })
            .collect()
    }

    fn idf(&self, t: &str) -> f32 {
        let n = self.phrasing_terms.len() as f32;
        let df = self.df.get(t).copied().unwrap_or(0) as f32;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// How much of the document's weight (idf) the query's terms cover.
    fn coverage(&self, q: &[String], doc: &[String]) -> f32 {
        let set: BTreeSet<&String> = doc.iter().collect();
        let total: f32 = set.iter().map(|t| self.idf(t)).sum();
        if total <= 0.0 {
            return 0.0;
        }
        let hit: f32 = set
            .iter()
            .filter(|t| q.contains(t))
            .map(|t| self.idf(t))
            .sum();
        hit / total
    }

    /// A phrasing's score: the harmonic mean of BM25 normalised by the
    /// query's best (how much of the question the phrasing explains) and
    /// how much of the phrasing the question covers. A bare topic word
    /// ("pas") explains itself fully but covers little of any phrasing.
    fn phrasing_score(&self, q: &[String], d: usize) -> f32 {
        f_beta(
            self.phrasings.normalised(q, d),
            self.coverage(q, &self.phrasing_terms[d]),
        )
    }
}

/// The weighted harmonic mean of how much of the question is explained
/// (`q`) and how much of the phrasing is covered (`d`), the question
/// weighing more: a word the entries never use ("biblioteket") counts
/// against an answer more than a phrasing word the caller left out.
fn f_beta(q: f32, d: f32) -> f32 {
    const BETA2: f32 = 2.25;
    if q <= 0.0 || d <= 0.0 {
        0.0
    } else {
        (1.0 + BETA2) * q * d / (BETA2 * d + q)
    }
}

/// E5 cosines of related sentences lie high (0.8-0.95) and of unrelated
/// ones not much lower (0.7-0.8): spread them over 0..1 as the intents do
/// ([`crate::intents::stretch`], one scale for both, so the closest of two
/// near twins, "the price of a passport" / "of a child's passport", still
/// leads by a margin instead of both saturating at 1).
fn rescale_cosine(c: f32) -> f32 {
    crate::intents::stretch(c)
}

/// Words callers use for the same thing, in either language (normalised);
/// each is read as the group's first word before stemming, in questions and
/// in entries alike. General municipal vocabulary, not one entry's words.
const SYNONYMS: &[&[&str]] = &[
    &[
        "pris",
        "prisen",
        "priser",
        "koster",
        "koste",
        "kost",
        "betale",
        "betaler",
        "betaling",
        "gebyr",
        "gebyret",
        "gebyrer",
        "cost",
        "costs",
        "price",
        "prices",
        "pay",
        "paying",
        "fee",
        "fees",
        "charge",
        "charged",
        "expensive",
        "dyrt",
        "dyr",
    ],
    &[
        "forny",
        "fornye",
        "fornyer",
        "fornyelse",
        "fornyet",
        "renew",
        "renewing",
        "renewal",
        "renewed",
        "udloebet",
        "udloeber",
        "expired",
        "expires",
        "expire",
    ],
    &[
        "mistet",
        "miste",
        "mister",
        "tabt",
        "tabte",
        "stjaalet",
        "lost",
        "lose",
        "stolen",
        "bortkommet",
    ],
    &[
        "bestil",
        "bestille",
        "bestiller",
        "bestilling",
        "booke",
        "booker",
        "book",
        "booking",
        "reservere",
        "order",
        "ordering",
        "tidsbestilling",
    ],
    &[
        "afhentning",
        "afhente",
        "hente",
        "henter",
        "hentet",
        "afhentes",
        "collect",
        "collected",
        "collection",
        "collects",
        "pickup",
        "emptied",
        "toemt",
        "toemmes",
        "toemning",
    ],
    &[
        "affald",
        "skrald",
        "skraldet",
        "affaldet",
        "renovation",
        "waste",
        "rubbish",
        "garbage",
        "trash",
        "refuse",
    ],
    &[
        "skraldespand",
        "skraldespande",
        "spand",
        "spanden",
        "beholder",
        "beholderen",
        "bin",
        "bins",
        "container",
        "containers",
    ],
    &[
        "adresse",
        "adressen",
        "address",
        "located",
        "beliggende",
        "ligger",
    ],
    &[
        "aabent",
        "aaben",
        "aabner",
        "aabningstid",
        "aabningstider",
        "aabningstiderne",
        "lukket",
        "lukker",
        "open",
        "opens",
        "opening",
        "closed",
        "close",
        "closes",
        "hours",
    ],
    &[
        "ansoeg",
        "ansoege",
        "ansoeger",
        "ansoegning",
        "ansoegningen",
        "soege",
        "soeger",
        "apply",
        "applying",
        "application",
    ],
    &[
        "hjemmehjaelp",
        "hjemmepleje",
        "hjemmehjaelpen",
        "homecare",
        "homehelp",
    ],
    &[
        "tid", "ventetid", "hurtigt", "lang", "long", "wait", "waiting", "quickly", "fast",
    ],
    &[
        "barn", "boern", "boernene", "barnet", "child", "children", "kid", "kids", "son",
        "daughter", "soen", "datter",
    ],
    &[
        "flytte", "flytter", "flyttet", "flytning", "move", "moving", "moved",
    ],
    &["kortet", "kort", "card"],
    &["glemt", "glemte", "forgot", "forgotten"],
];

/// Phrases that mean one of the synonym groups ("hvor meget" asks a price,
/// not a place).
const PHRASES: &[(&str, &str)] = &[
    (" hvor meget ", " pris "),
    (" how much ", " pris "),
    (" hvor lang tid ", " tid "),
    (" hvor laenge ", " tid "),
    (" how long ", " tid "),
];

/// The group word of a normalised word, or the word.
fn canonical(w: &str) -> &str {
    SYNONYMS.iter().find(|g| g.contains(&w)).map_or(w, |g| g[0])
}

/// Stemmed content terms of a question, without question filler and day
/// words, synonyms read as their group's word.
fn query_terms(terms: &Terms, text: &str, lang: Lang) -> Vec<String> {
    let mut norm = format!(" {} ", normalize(text));
    for (phrase, word) in PHRASES {
        if norm.contains(phrase) {
            norm = norm.replace(phrase, word);
        }
    }
    let kept: Vec<&str> = norm
        .split(' ')
        .filter(|w| !w.is_empty() && !FILLER.contains(w) && !is_day_word(w))
        .map(canonical)
        .collect();
    // "open" and "hours" are one word here: count it once.
    let mut out: Vec<String> = Vec::new();
    for t in terms.of(&kept.join(" "), lang) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// True when the words ask something: a question word, "kan jeg", "do I",
/// "hvor meget koster", or a question mark from the recogniser.
pub fn looks_like_question(text: &str) -> bool {
    if text.trim_end().ends_with('?') {
        return true;
    }
    let norm = normalize(text);
    let toks: Vec<&str> = norm.split(' ').collect();
    const WORDS: &[&str] = &[
        "hvad",
        "hvornaar",
        "hvor",
        "hvordan",
        "hvilke",
        "hvilken",
        "hvilket",
        "hvem",
        "hvorfor",
        "koster",
        "pris",
        "prisen",
        "aabningstid",
        "aabningstider",
        "aabent",
        "lukket",
        "lukker",
        "what",
        "when",
        "where",
        "how",
        "which",
        "who",
        "why",
        "cost",
        "costs",
        "price",
        "open",
        "opening",
        "closed",
        "close",
    ];
    const PAIRS: &[(&str, &str)] = &[
        ("kan", "jeg"),
        ("skal", "jeg"),
        ("maa", "jeg"),
        ("har", "i"),
        ("er", "i"),
        ("er", "det"),
        ("kan", "man"),
        ("skal", "man"),
        ("can", "i"),
        ("do", "i"),
        ("do", "you"),
        ("are", "you"),
        ("is", "it"),
        ("is", "there"),
        ("should", "i"),
        ("does", "it"),
        ("will", "i"),
        // Not ("have", "to"): "I have to cancel my appointment" is an errand
        // said as a statement; "do I have to ..." is a question by "do I".
    ];
    toks.iter().any(|t| WORDS.contains(t))
        || toks
            .windows(2)
            .any(|w| PAIRS.iter().any(|(a, b)| w[0] == *a && w[1] == *b))
}

// ------------------------------------------------------------ computed hours

/// The day a question asks about: a holiday name ("juleaftensdag",
/// "Christmas Eve"), a date or weekday ([`understand::parse_date`]), or
/// today.
pub fn asked_day(text: &str, today: NaiveDate) -> NaiveDate {
    let norm = format!(" {} ", normalize(text));
    let y = today.year();
    let next = |m: u32, d: u32| -> Option<NaiveDate> {
        let this = NaiveDate::from_ymd_opt(y, m, d)?;
        if this >= today {
            Some(this)
        } else {
            NaiveDate::from_ymd_opt(y + 1, m, d)
        }
    };
    let easter = |off: i64| -> Option<NaiveDate> {
        let e = easter_sunday(y)? + Duration::days(off);
        if e >= today {
            Some(e)
        } else {
            Some(easter_sunday(y + 1)? + Duration::days(off))
        }
    };
    let fixed: &[(&[&str], u32, u32)] = &[
        (
            &[" juleaftensdag ", " juleaften ", " christmas eve "],
            12,
            24,
        ),
        (
            &[
                " 2 juledag ",
                " anden juledag ",
                " boxing day ",
                " second day of christmas ",
            ],
            12,
            26,
        ),
        (
            &[" juledag ", " juledagen ", " christmas day ", " christmas "],
            12,
            25,
        ),
        (
            &[
                " nytaarsaftensdag ",
                " nytaarsaften ",
                " new year s eve ",
                " new years eve ",
            ],
            12,
            31,
        ),
        (
            &[" nytaarsdag ", " new year s day ", " new years day "],
            1,
            1,
        ),
        (
            &[" grundlovsdag ", " grundlovsdagen ", " constitution day "],
            6,
            5,
        ),
    ];
    for (words, m, d) in fixed {
        if words.iter().any(|w| norm.contains(w)) {
            if let Some(date) = next(*m, *d) {
                return date;
            }
        }
    }
    let moving: &[(&[&str], i64)] = &[
        (&[" skaertorsdag ", " maundy thursday "], -3),
        (&[" langfredag ", " good friday "], -2),
        (
            &[" 2 paaskedag ", " anden paaskedag ", " easter monday "],
            1,
        ),
        (&[" paaskedag ", " easter sunday ", " easter "], 0),
        (&[" himmelfartsdag ", " himmelfart ", " ascension "], 39),
        (&[" 2 pinsedag ", " anden pinsedag ", " whit monday "], 50),
        (&[" pinsedag ", " whit sunday ", " pinse ", " whitsun "], 49),
    ];
    for (words, off) in moving {
        if words.iter().any(|w| norm.contains(w)) {
            if let Some(date) = easter(*off) {
                return date;
            }
        }
    }
    understand::parse_date(text, today).unwrap_or(today)
}

fn holiday_name(h: Holiday, lang: Lang) -> &'static str {
    match lang {
        Lang::En => match h {
            Holiday::Nytaarsdag => "New Year's Day",
            Holiday::Skaertorsdag => "Maundy Thursday",
            Holiday::Langfredag => "Good Friday",
            Holiday::Paaskedag => "Easter Sunday",
            Holiday::AndenPaaskedag => "Easter Monday",
            Holiday::StoreBededag => "Great Prayer Day",
            Holiday::KristiHimmelfart => "Ascension Day",
            Holiday::Pinsedag => "Whit Sunday",
            Holiday::AndenPinsedag => "Whit Monday",
            Holiday::Juledag => "Christmas Day",
            Holiday::AndenJuledag => "Boxing Day",
        },
        _ => match h {
            Holiday::AndenPaaskedag => "anden påskedag",
            Holiday::AndenPinsedag => "anden pinsedag",
            Holiday::AndenJuledag => "anden juledag",
            other => other.name_da(),
        },
    }
}

fn optional_name(o: OptionalClosure, lang: Lang) -> &'static str {
    match (o, lang) {
        (OptionalClosure::Grundlovsdag, Lang::En) => "Constitution Day",
        (OptionalClosure::Juleaftensdag, Lang::En) => "Christmas Eve",
        (OptionalClosure::Nytaarsaftensdag, Lang::En) => "New Year's Eve",
        (OptionalClosure::Grundlovsdag, _) => "grundlovsdag",
        (OptionalClosure::Juleaftensdag, _) => "juleaftensdag",
        (OptionalClosure::Nytaarsaftensdag, _) => "nytårsaftensdag",
    }
}

/// The spoken answer to "when is `department` open on the day `question`
/// names?", from the department's hours and the calendar: the day's
/// intervals, or that it is closed (and why) and when it opens next.
pub fn hours_answer(
    department: &Department,
    question: &str,
    lang: Lang,
    now: DateTime<Utc>,
) -> String {
    let local = now.with_timezone(&Copenhagen);
    let today = local.date_naive();
    let day = asked_day(question, today);
    let (intervals, kind) = department.hours.day(day);
    let name = department
        .name
        .get(&lang)
        .or_else(|| department.name.values().next())
        .cloned()
        .unwrap_or_default();
    let name = capitalise(&name);
    let when = speak::relative_date_words(day, lang, today);
    let time = |t| speak::time_words(t, lang);
    if !intervals.is_empty() {
        let spans: Vec<String> = intervals
            .iter()
            .map(|i| match lang {
                Lang::En => format!("from {} to {}", time(i.start), time(i.end)),
                _ => format!("fra klokken {} til klokken {}", time(i.start), time(i.end)),
            })
            .collect();
        let and = if lang == Lang::En { " and " } else { " og " };
        let special = kind == DayKind::Special;
        return match lang {
            Lang::En => format!(
                "{name} is open {when}{} {}.",
                if special { ", with special hours," } else { "" },
                spans.join(and)
            ),
            _ => format!(
                "{name} har {}åbent {when} {}.",
                if special {
                    "særlige åbningstider "
                } else {
                    ""
                },
                spans.join(and)
            ),
        };
    }
    let why = match (kind, lang) {
        (DayKind::Holiday(h), Lang::En) => format!(", because it is {}", holiday_name(h, lang)),
        (DayKind::Holiday(h), _) => format!(", fordi det er {}", holiday_name(h, lang)),
        (DayKind::Optional(o), Lang::En) => format!(", because it is {}", optional_name(o, lang)),
        (DayKind::Optional(o), _) => format!(", fordi det er {}", optional_name(o, lang)),
        _ => String::new(),
    };
    let closed = match lang {
        Lang::En => format!("{name} is closed {when}{why}."),
        _ => format!("{name} har lukket {when}{why}."),
    };
    // When it opens next after that day.
    let from = Copenhagen
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| *t > now)
        .unwrap_or(now);
    match department.hours.next_open(from) {
        Some(t) => {
            let words = speak::datetime_words(t.date_naive(), t.time(), lang, Some(today));
            match lang {
                Lang::En => format!("{closed} It opens again {words}."),
                _ => format!("{closed} Vi åbner igen {words}."),
            }
        }
        None => closed,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The answer of an entry in a language: the written text, or the computed
/// opening hours for the day the question names.
pub fn answer_text(
    entry: &Entry,
    departments: &BTreeMap<String, Department>,
    question: &str,
    lang: Lang,
    now: DateTime<Utc>,
) -> String {
    match &entry.answer {
        Answer::Written(m) => m
            .get(&lang)
            .or_else(|| m.values().next())
            .cloned()
            .unwrap_or_default(),
        Answer::Hours(d) => match departments.get(d) {
            Some(dep) => hours_answer(dep, question, lang, now),
            None => String::new(),
        },
    }
}

// ------------------------------------------------------------------ loading

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    entry: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: S<String>,
    department: Option<S<String>>,
    title: Option<LangMap<String>>,
    questions: Option<LangMap<Vec<String>>>,
    answer: Option<LangMap<String>>,
    hours: Option<S<String>>,
    source: Option<S<String>>,
    valid_from: Option<S<String>>,
    valid_to: Option<S<String>>,
    follow_up: Option<S<String>>,
    link: Option<S<String>>,
    fictional: Option<bool>,
}

/// Longest sentence, in words, that reads well on the phone.
const MAX_SENTENCE_WORDS: usize = 30;

/// Loads and validates `dir/*.toml` (a municipality's `knowledge/` folder;
/// missing is an empty knowledge base). Errors and warnings are returned
/// with file, line and column; the knowledge base is `None` when there is
/// an error.
pub fn load_dir(
    dir: &Path,
    langs: &[Lang],
    departments: &BTreeMap<String, Department>,
) -> (Option<KnowledgeBase>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut entries: Vec<Entry> = Vec::new();
    let mut seen: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    file: path.clone(),
                    line: 0,
                    col: 0,
                    message: format!("cannot read file: {e}"),
                    hint: None,
                    source_line: None,
                });
                continue;
            }
        };
        let src = Source { path, text };
        let raw: RawFile = match toml::from_str(&src.text) {
            Ok(r) => r,
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                diags.push(src.diag(
                    Severity::Error,
                    at,
                    e.message().trim_end().to_string(),
                    Some(
                        "entry keys: id, department, title, questions, answer, hours, source, valid_from, valid_to, follow_up, link, fictional"
                            .into(),
                    ),
                ));
                continue;
            }
        };
        for r in raw.entry {
            if let Some(e) = validate(&src, r, langs, departments, &mut seen, &mut diags) {
                entries.push(e);
            }
        }
    }
    let ok = !diags.iter().any(Diagnostic::is_error);
    (ok.then(|| KnowledgeBase::new(entries)), diags)
}

fn validate(
    src: &Source,
    r: RawEntry,
    langs: &[Lang],
    departments: &BTreeMap<String, Department>,
    seen: &mut BTreeMap<String, (PathBuf, usize)>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Entry> {
    let at = r.id.span().start;
    let line = src.line_col(at).0;
    let id = r.id.get_ref().clone();
    let before = diags.iter().filter(|d| d.is_error()).count();
    let mut err = |at: usize, msg: String, hint: Option<String>| {
        diags.push(src.diag(Severity::Error, at, msg, hint));
    };
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        err(
            at,
            format!("entry id `{id}` must be lower-case letters, digits, `-` or `_`"),
            Some("e.g. id = \"pas-pris\"".into()),
        );
    }
    if let Some((f, l)) = seen.get(&id) {
        err(
            at,
            format!("entry id `{id}` is used twice"),
            Some(format!("first at {}:{l}", f.display())),
        );
    } else {
        seen.insert(id.clone(), (src.path.clone(), line));
    }
    let dept_hint = |name: &str| -> Option<String> {
        match closest(name, departments.keys().map(String::as_str)) {
            Some(k) => Some(format!("did you mean `{k}`?")),
            None => Some(format!(
                "departments in municipality.toml: {}",
                departments.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    };
    let check_dept = |d: &S<String>, err: &mut dyn FnMut(usize, String, Option<String>)| {
        if !departments.contains_key(d.get_ref()) {
            err(
                d.span().start,
                format!("unknown department `{}`", d.get_ref()),
                dept_hint(d.get_ref()),
            );
        }
    };
    if let Some(d) = &r.department {
        check_dept(d, &mut err);
    }
    if let Some(h) = &r.hours {
        check_dept(h, &mut err);
    }
    let department = match (&r.department, &r.hours) {
        (Some(d), _) => d.get_ref().clone(),
        (None, Some(h)) => h.get_ref().clone(),
        (None, None) => {
            err(
                at,
                format!("entry `{id}` has no `department`"),
                Some("the department that owns the answer: department = \"borgerservice\"".into()),
            );
            String::new()
        }
    };
    let lang_map = |m: &LangMap<String>,
                    field: &str,
                    err: &mut dyn FnMut(usize, String, Option<String>)|
     -> BTreeMap<Lang, String> {
        let mut out = BTreeMap::new();
        for (k, v) in m {
            match k.parse::<Lang>() {
                Ok(l) => {
                    out.insert(l, v.trim().to_string());
                }
                Err(_) => err(
                    at,
                    format!("entry `{id}`: unknown language `{k}` in `{field}`"),
                    Some("known: da, en".into()),
                ),
            }
        }
        for l in langs {
            if out.get(l).is_none_or(|s| s.is_empty()) {
                err(
                    at,
                    format!("entry `{id}` has no `{field}` in `{l}`"),
                    Some(format!("add {field}.{l} = \"...\"")),
                );
            }
        }
        out
    };
    let title = match &r.title {
        Some(t) => lang_map(t, "title", &mut err),
        None => {
            err(
                at,
                format!("entry `{id}` has no `title`"),
                Some("a few words per language, said in \"do you mean A or B?\": title.da = \"prisen på et pas\"".into()),
            );
            BTreeMap::new()
        }
    };
    let mut questions = BTreeMap::new();
    match &r.questions {
        Some(q) => {
            for (k, v) in q {
                match k.parse::<Lang>() {
                    Ok(l) => {
                        questions.insert(l, v.clone());
                    }
                    Err(_) => err(
                        at,
                        format!("entry `{id}`: unknown language `{k}` in `questions`"),
                        Some("known: da, en".into()),
                    ),
                }
            }
            for l in langs {
                if questions
                    .get(l)
                    .is_none_or(|v: &Vec<String>| v.iter().all(|s| s.trim().is_empty()))
                {
                    err(
                        at,
                        format!("entry `{id}` has no questions in `{l}`"),
                        Some(format!(
                            "add questions.{l} = [\"...\"] with the ways callers ask it"
                        )),
                    );
                }
            }
        }
        None => err(
            at,
            format!("entry `{id}` has no `questions`"),
            Some("questions.da = [\"hvad koster et pas\"] and the same for every language".into()),
        ),
    }
    let answer = match (&r.answer, &r.hours) {
        (Some(_), Some(h)) => {
            err(
                h.span().start,
                format!("entry `{id}` has both `answer` and `hours`"),
                Some("opening hours are computed from municipality.toml: remove `answer`".into()),
            );
            None
        }
        (Some(a), None) => {
            let m = lang_map(a, "answer", &mut err);
            Some(Answer::Written(m))
        }
        (None, Some(h)) => Some(Answer::Hours(h.get_ref().clone())),
        (None, None) => {
            err(
                at,
                format!("entry `{id}` has neither `answer` nor `hours`"),
                Some("answer.da = \"...\" (written for the ear), or hours = \"department\" for computed opening hours".into()),
            );
            None
        }
    };
    let source = match (&r.source, &r.hours) {
        (Some(s), _) if !s.get_ref().trim().is_empty() => s.get_ref().trim().to_string(),
        (_, Some(_)) => "municipality.toml".to_string(),
        _ => {
            err(
                at,
                format!("entry `{id}` has no `source`"),
                Some("the page or document the answer comes from: source = \"https://...\"".into()),
            );
            String::new()
        }
    };
    let date = |d: &Option<S<String>>, err: &mut dyn FnMut(usize, String, Option<String>)| {
        d.as_ref().and_then(
            |s| match NaiveDate::parse_from_str(s.get_ref(), "%Y-%m-%d") {
                Ok(x) => Some(x),
                Err(_) => {
                    err(
                        s.span().start,
                        format!("`{}` is not a date", s.get_ref()),
                        Some("write dates as YYYY-MM-DD".into()),
                    );
                    None
                }
            },
        )
    };
    let valid_from = date(&r.valid_from, &mut err);
    let valid_to = date(&r.valid_to, &mut err);
    if let (Some(f), Some(t), Some(s)) = (valid_from, valid_to, &r.valid_to) {
        if t < f {
            err(
                s.span().start,
                format!("entry `{id}` ends before it starts"),
                Some("swap `valid_from` and `valid_to`".into()),
            );
        }
    }
    let follow_up = match r
        .follow_up
        .as_ref()
        .map(|f| (f.get_ref().as_str(), f.span().start))
    {
        None | Some(("none", _)) => FollowUp::None,
        Some(("transfer", _)) => FollowUp::Transfer,
        Some(("callback", _)) => FollowUp::Callback,
        Some(("mail", p)) => match &r.link {
            Some(l) => FollowUp::Mail {
                link: l.get_ref().clone(),
            },
            None => {
                err(
                    p,
                    format!("entry `{id}`: `follow_up = \"mail\"` needs `link`"),
                    Some("link = \"https://...\"".into()),
                );
                FollowUp::None
            }
        },
        Some((other, p)) => {
            err(
                p,
                format!("unknown follow_up `{other}`"),
                Some("none, transfer, callback or mail".into()),
            );
            FollowUp::None
        }
    };
    // Written for the ear: numbers as spoken, short sentences (warnings).
    if let Some(Answer::Written(m)) = &answer {
        for (l, text) in m {
            if text.chars().any(|c| c.is_ascii_digit()) {
                diags.push(src.diag(
                    Severity::Warning,
                    at,
                    format!("entry `{id}`: the `{l}` answer has digits"),
                    Some(
                        "write numbers as they are spoken: \"syv hundrede og tolv kroner\"".into(),
                    ),
                ));
            }
            if let Some(long) = text
                .split(['.', '?', '!'])
                .find(|s| s.split_whitespace().count() > MAX_SENTENCE_WORDS)
            {
                diags.push(src.diag(
                    Severity::Warning,
                    at,
                    format!(
                        "entry `{id}`: a sentence of the `{l}` answer has {} words",
                        long.split_whitespace().count()
                    ),
                    Some(format!(
                        "split it: sentences of at most {MAX_SENTENCE_WORDS} words are easier to follow on the phone"
                    )),
                ));
            }
        }
    }
    if diags.iter().filter(|d| d.is_error()).count() > before {
        return None;
    }
    Some(Entry {
        id,
        file: src.path.clone(),
        line,
        department,
        title,
        questions,
        answer: answer?,
        source,
        valid_from,
        valid_to,
        follow_up,
        fictional: r.fictional.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, da: &[&str], en: &[&str]) -> Entry {
        Entry {
            id: id.into(),
            file: PathBuf::from("t.toml"),
            line: 1,
            department: "borgerservice".into(),
            title: [(Lang::Da, id.to_string()), (Lang::En, id.to_string())]
                .into_iter()
                .collect(),
            questions: [
                (Lang::Da, da.iter().map(|s| s.to_string()).collect()),
                (Lang::En, en.iter().map(|s| s.to_string()).collect()),
            ]
            .into_iter()
            .collect(),
            answer: Answer::Written(BTreeMap::new()),
            source: "test".into(),
            valid_from: None,
            valid_to: None,
            follow_up: FollowUp::None,
            fictional: false,
        }
    }

    fn kb() -> KnowledgeBase {
        KnowledgeBase::new(vec![
            entry(
                "pas-pris",
                &["hvad koster et pas", "prisen på et pas"],
                &["how much is a passport", "passport price"],
            ),
            entry(
                "pas-tid",
                &[
                    "hvor lang tid tager det at få et pas",
                    "hvornår er mit pas klar",
                ],
                &["how long does a passport take", "when is my passport ready"],
            ),
            entry(
                "storskrald",
                &[
                    "hvordan bestiller jeg storskrald",
                    "afhentning af storskrald",
                ],
                &["how do I book bulky waste collection"],
            ),
        ])
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    #[test]
    fn a_paraphrased_danish_question_is_answered_by_its_entry() {
        let r = kb().retrieve("øh hvad skal jeg betale for et nyt pas?", Lang::Da, day());
        assert_eq!(r.decision, Decision::Answer(0), "{:?}", r.candidates);
    }

    #[test]
    fn a_compound_meets_its_stem_through_prefix_expansion() {
        let r = kb().retrieve("hvornår kommer storskraldsordningen", Lang::Da, day());
        assert_eq!(r.candidates.first().map(|c| c.entry), Some(2));
    }

    #[test]
    fn a_question_about_something_else_is_declined() {
        let r = kb().retrieve("hvornår bliver min vej asfalteret", Lang::Da, day());
        assert_eq!(r.decision, Decision::Decline, "{:?}", r.candidates);
        let r = kb().retrieve("can I get a parking permit", Lang::En, day());
        assert_eq!(r.decision, Decision::Decline, "{:?}", r.candidates);
    }

    #[test]
    fn a_bare_topic_word_is_matched_among_its_topic_only() {
        let r = kb().retrieve("pas", Lang::Da, day());
        assert!(
            r.candidates.iter().all(|c| c.entry != 2),
            "{:?}",
            r.candidates
        );
    }

    #[test]
    fn an_entry_out_of_its_validity_is_never_read() {
        let mut k = kb();
        k.entries[0].valid_to = NaiveDate::from_ymd_opt(2026, 6, 30);
        let k = KnowledgeBase::new(k.entries);
        let r = k.retrieve("hvad koster et pas", Lang::Da, day());
        assert!(r.candidates.iter().all(|c| c.entry != 0));
    }

    #[test]
    fn the_reply_to_which_one_picks_by_order_or_title_words() {
        let k = kb();
        assert_eq!(k.choose_between(0, 1, "den første", Lang::Da), Some(0));
        assert_eq!(k.choose_between(0, 1, "the second one", Lang::En), Some(1));
        assert_eq!(k.choose_between(0, 2, "storskrald", Lang::Da), Some(2));
        assert_eq!(k.choose_between(0, 1, "ved ikke", Lang::Da), None);
    }

    /// A deterministic stand-in for multilingual-e5: letter-trigram counts,
    /// unit length; counts its calls.
    #[derive(Debug, Default)]
    struct Trigrams {
        calls: std::sync::atomic::AtomicUsize,
    }

    impl SentenceEncoder for Trigrams {
        fn embed(&self, text: &str, _: Role) -> Result<Vec<f32>, crate::semantic::EncodeError> {
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut v = vec![0f32; 64];
            let chars: Vec<char> = normalize(text).chars().collect();
            for w in chars.windows(3) {
                let h = w
                    .iter()
                    .fold(7u32, |h, c| h.wrapping_mul(31).wrapping_add(*c as u32));
                v[(h % 64) as usize] += 1.0;
            }
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            Ok(v.into_iter().map(|x| x / n).collect())
        }
        fn dim(&self) -> usize {
            64
        }
        fn name(&self) -> &str {
            "trigrams"
        }
    }

    #[test]
    fn entries_are_embedded_once_and_each_question_once_when_asked() {
        let enc = Arc::new(Trigrams::default());
        let mut k = kb();
        k.embed(enc.clone()).unwrap();
        let phrasings: usize = k
            .entries()
            .iter()
            .map(|e| e.questions.values().map(Vec::len).sum::<usize>())
            .sum();
        let calls = || enc.calls.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(calls(), phrasings);
        let r = k.retrieve("hvad koster et pas", Lang::Da, day());
        assert_eq!(calls(), phrasings + 1, "one query embedding per question");
        let top = r.candidates[0];
        assert_eq!(top.entry, 0);
        assert!(top.semantic.is_some_and(|s| s > 0.0), "{top:?}");
        assert_eq!(k.encoder_name(), Some("trigrams"));
        assert_eq!(k.thresholds(), Thresholds::COMBINED);
    }

    #[test]
    fn questions_are_told_from_errands() {
        assert!(looks_like_question("Hvad koster et pas?"));
        assert!(looks_like_question("kan jeg bestille storskrald på nettet"));
        assert!(looks_like_question("when are you open on saturday"));
        assert!(!looks_like_question("jeg skal have fornyet mit pas"));
        assert!(!looks_like_question("I need a new passport"));
        assert!(!looks_like_question(
            "I have to cancel my appointment tomorrow"
        ));
    }

    #[test]
    fn the_asked_day_comes_from_holiday_names_weekdays_and_dates() {
        let today = day(); // Tuesday 1 December 2026
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(
            asked_day("har I åbent juleaftensdag", today),
            d(2026, 12, 24)
        );
        assert_eq!(asked_day("open on Christmas Eve?", today), d(2026, 12, 24));
        assert_eq!(asked_day("hvad med anden juledag", today), d(2026, 12, 26));
        assert_eq!(
            asked_day("when do you open on Saturday", today),
            d(2026, 12, 5)
        );
        assert_eq!(asked_day("åbent langfredag", today), d(2027, 3, 26));
        assert_eq!(asked_day("hvornår har I åbent", today), today);
    }
}
