//! Intent recognition: which of a gather's intents the caller's words mean,
//! how sure that is, and when to ask back instead of guessing.
//!
//! # Two signals
//!
//! - **Words** ([`IntentMatcher::lexical`]): keywords and example phrases
//!   matched on normalised words (tolerating small misspellings) and on
//!   stemmed content words ([`crate::lexical::Terms`]: Danish and English
//!   Snowball stemmers, so "aflysningen", "aflyste" and "aflyse" meet).
//! - **Meaning** (when the engine has a [`SentenceEncoder`]): the cosine
//!   similarity of the caller's turn to each example and keyword of the
//!   intent, in any language (multilingual-e5-small: a Danish turn matches an
//!   English example). The best example counts. Example vectors are made
//!   once per flow load ([`embed_examples`]), the turn's vector once per turn.
//!
//! Cosines of this model crowd into a narrow band (unrelated sentences 0.75-0.80,
//! paraphrases 0.85-0.95), so the similarity is stretched to 0..1 between
//! [`SEM_FLOOR`] and [`SEM_CEIL`] before it is combined with the words'
//! score ([`combine`]). Without an encoder the words' score alone decides,
//! exactly as before the model came.
//!
//! # Deciding
//!
//! The best intent needs [`Understanding::accept`]. When the runner-up that
//! leads somewhere else scores within [`Understanding::margin`] of it, the
//! caller is asked the one question that tells the two apart ("Vil du
//! aflyse en aftale i jobcentret, eller tale med jobcentret?", made from
//! the intents' `clarify` texts or the department or queue they lead to),
//! and the answer is read against those two only. When nothing reaches
//! `accept`, the gather reprompts as before.
//!
//! # The municipality's own words
//!
//! In a menu gather (one whose intents lead to at least two departments or
//! queues) every department of `municipality.toml` (its `name` in each
//! language and its `synonyms`) and every Frontdesk queue is an intent
//! ([`add_auto_intents`]): one the flow already routes to gets the words
//! added to the flow's own intent; another becomes an intent named after the
//! department or queue id that goes to the flow's transfer to that
//! department (or a transfer step added for it) or to the flow's step that
//! sets `queue` to that queue.

use std::{collections::HashMap, fmt, sync::Arc};

use ivr_core::Lang;

use crate::{
    lexical::Terms,
    model::{
        Expect, Flow, Gather, Intent, IntentOrigin, Municipality, Part, Step, StepId, StepKind,
        Template, Text, Understanding,
    },
    semantic::{cosine, EncodeError, Role, SentenceEncoder},
    understand::{normalize, IntentMatcher},
};

/// Default [`Understanding::accept`]: the score the best intent needs.
/// (0.55 before the out-of-scope examples guarded the meaning; calibrated
/// on `tests/vectors/caller_turns/` together with them.)
pub const DEFAULT_ACCEPT: f32 = 0.45;
/// Default [`Understanding::out_of_scope_margin`].
pub const DEFAULT_OUT_OF_SCOPE_MARGIN: f32 = 0.0;
/// Default [`Understanding::words_vouch`]: a keyword heard (0.95) or most
/// of an example's words.
pub const DEFAULT_WORDS_VOUCH: f32 = 0.9;

/// What callers of a municipality say that no municipal errand answers,
/// in general terms (food, transport, shops, utilities and banks, the
/// weather and small talk, a wrong number, fillers and bare answers): the
/// explicit "other" class of [`Understanding::out_of_scope`]. A turn whose
/// meaning is closer to one of these than to the best intent's examples is
/// not understood (unless the intent's own words vouch for it). Written
/// from the kinds of calls a switchboard gets, not from any test turn.
pub const OUT_OF_SCOPE_EXAMPLES: &[(Lang, &str)] = &[
    (Lang::Da, "jeg vil gerne bestille noget mad med levering"),
    (Lang::Da, "kan jeg reservere et bord i jeres restaurant"),
    (Lang::Da, "har I en ledig tid hos frisøren"),
    (Lang::Da, "jeg skal bruge en taxa med det samme"),
    (Lang::Da, "hvornår kører den næste bus til centrum"),
    (Lang::Da, "hvad koster en flybillet til London"),
    (Lang::Da, "hvordan bliver vejret i dag"),
    (Lang::Da, "hvad er klokken lige nu"),
    (Lang::Da, "hvem scorede i håndboldkampen"),
    (Lang::Da, "fortæl mig en vittighed"),
    (Lang::Da, "har butikken åbent i dag"),
    (Lang::Da, "jeg vil købe et nyt fjernsyn"),
    (Lang::Da, "er det supermarkedet"),
    (Lang::Da, "mit mobilabonnement er blevet for dyrt"),
    (Lang::Da, "strømmen er gået, er det elselskabet"),
    (Lang::Da, "mit bredbånd virker ikke"),
    (Lang::Da, "mit dankort er blevet spærret i banken"),
    (Lang::Da, "jeg vil gerne sælge min bil"),
    (Lang::Da, "undskyld, jeg har vist tastet et forkert nummer"),
    (Lang::Da, "hallo, er der nogen i den anden ende"),
    (Lang::Da, "jeg skal have en tid hos min læge"),
    (
        Lang::Da,
        "jeg har været syg i flere dage og skal tale med en læge",
    ),
    (Lang::Da, "jeg vil anmelde et indbrud til politiet"),
    (
        Lang::Da,
        "jeg ringer fra et firma og vil gerne fortælle om vores tilbud",
    ),
    (Lang::Da, "jeg kan ikke logge på min netbank"),
    (Lang::Da, "øhm øh"),
    (Lang::Da, "ja tak"),
    (Lang::Da, "nej tak"),
    (Lang::Da, "det ved jeg ikke"),
    (Lang::En, "I'd like to order some food for delivery"),
    (Lang::En, "can I book a table at your restaurant"),
    (Lang::En, "I need a taxi right away"),
    (Lang::En, "when is the next bus into town"),
    (Lang::En, "how much is a plane ticket to London"),
    (Lang::En, "what's the forecast for today"),
    (Lang::En, "what time is it"),
    (Lang::En, "who won the game last night"),
    (Lang::En, "tell me something funny"),
    (Lang::En, "is the shop open today"),
    (Lang::En, "I want to buy a new television"),
    (Lang::En, "is this the supermarket"),
    (Lang::En, "my mobile phone bill is too high"),
    (
        Lang::En,
        "the power is out, is this the electricity company",
    ),
    (Lang::En, "my broadband isn't working"),
    (Lang::En, "my bank card has been blocked"),
    (Lang::En, "I want to sell my car"),
    (Lang::En, "sorry, I think I dialled the wrong number"),
    (Lang::En, "hello, is anybody there"),
    (Lang::En, "I need an appointment with my doctor"),
    (Lang::En, "I've been ill for days and need to see a doctor"),
    (Lang::En, "I want to report a break-in to the police"),
    (
        Lang::En,
        "I'm calling from a company with a special offer for you",
    ),
    (Lang::En, "I can't log in to my online banking"),
    (Lang::En, "um, er"),
    (Lang::En, "yes please"),
    (Lang::En, "no thanks"),
    (Lang::En, "I don't know"),
];
/// Default [`Understanding::margin`].
pub const DEFAULT_MARGIN: f32 = 0.03;
/// A cosine at or below this counts as no similarity.
pub const SEM_FLOOR: f32 = 0.82;
/// A cosine at or above this counts as full similarity.
pub const SEM_CEIL: f32 = 0.95;

/// Embeddings of an intent's examples and keywords (unit vectors).
#[derive(Clone, Default)]
pub struct ExampleVectors {
    /// One per example or keyword, in any language.
    pub vectors: Vec<Arc<[f32]>>,
    /// The text each vector was made from (for `ivr check`).
    pub texts: Vec<String>,
}

impl fmt::Debug for ExampleVectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExampleVectors({})", self.vectors.len())
    }
}

impl ExampleVectors {
    /// The best cosine of `query` to any vector; `None` when there are none.
    pub fn best(&self, query: &[f32]) -> Option<f32> {
        self.vectors
            .iter()
            .map(|v| cosine(query, v))
            .fold(None, |b: Option<f32>, s| Some(b.map_or(s, |b| b.max(s))))
    }
}

/// The cosine stretched to 0..1 between [`SEM_FLOOR`] and [`SEM_CEIL`].
pub fn stretch(cos: f32) -> f32 {
    ((cos - SEM_FLOOR) / (SEM_CEIL - SEM_FLOOR)).clamp(0.0, 1.0)
}

/// Weight of the meaning in [`combine`] (the words get the rest).
pub const SEM_WEIGHT: f32 = 0.65;

/// The combined score of an intent from its words' score and, when there
/// is an encoder, its stretched similarity: a weighted sum, the meaning
/// weighing more (it generalises to turns nobody wrote down), the words
/// deciding between errands the model holds close ("kørekort" / "pas").
pub fn combine(lexical: f32, semantic: Option<f32>) -> f32 {
    match semantic {
        None => lexical,
        Some(s) => (1.0 - SEM_WEIGHT) * lexical + SEM_WEIGHT * s,
    }
}

/// How one intent scored for one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The intent's place in [`Gather::intents`].
    pub intent: usize,
    /// Words: 0..1.
    pub lexical: f32,
    /// Raw cosine of the best example, when an encoder was used.
    pub cosine: Option<f32>,
    /// The combined score the decision uses.
    pub score: f32,
    /// Another language of the municipality whose words matched better than
    /// the current one's (the caller speaks it).
    pub lang: Option<Lang>,
    /// Where in the turn (places of its content words, in order) words
    /// that tell this intent apart (its own, shared with at most one other
    /// intent) were heard.
    pub heard_at: Vec<usize>,
}

/// What a turn means for an intent gather.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// This intent (its place in [`Gather::intents`]); switch to `lang` if set.
    Chosen {
        /// The intent.
        intent: usize,
        /// The caller's language, when it is not the current one.
        lang: Option<Lang>,
    },
    /// Two intents with different destinations scored too close: ask.
    Clarify {
        /// The best.
        first: usize,
        /// The runner-up.
        second: usize,
    },
    /// Nothing reached the acceptance score.
    NotUnderstood,
}

/// Scores every intent of `g` for a turn, best first. `heard` is the
/// transcript, `lang` the language it is read in, `langs` the
/// municipality's languages, `query` the turn's embedding (when the
/// municipality has an encoder).
pub fn score(
    g: &Gather,
    heard: &str,
    lang: Lang,
    langs: &[Lang],
    query: Option<&[f32]>,
) -> Vec<Scored> {
    let terms = Terms::default();
    let heard = crate::understand::read_turn(crate::understand::corrected(heard));
    let heard = heard.as_str();
    let norm = normalize(heard);
    // The gather's Danish words, when the turn may be read in Danish: the
    // known parts of Danish compounds.
    let danish: Option<std::collections::BTreeSet<&str>> = (lang == Lang::Da
        || langs.contains(&Lang::Da))
    .then(|| vocabularies(g, Lang::Da).into_iter().flatten().collect());
    // Content words, with the known parts of Danish compounds added.
    let content_of = |l: Lang| -> Vec<String> {
        let mut c = terms.of(heard, l);
        if let Some(v) = danish.as_ref().filter(|_| l == Lang::Da) {
            let parts: Vec<String> = c
                .iter()
                .flat_map(|t| crate::lexical::compound_parts(t, |x| v.contains(x)))
                .collect();
            c.extend(parts);
        }
        c
    };
    let mut heard_terms: Vec<(Lang, Vec<String>, Vec<String>)> = Vec::new();
    let mut lexical_in = |m: &IntentMatcher, l: Lang| -> f32 {
        if !heard_terms.iter().any(|(x, _, _)| *x == l) {
            let content = content_of(l);
            let mut stems = terms.stems(heard, l);
            stems.extend(
                content
                    .iter()
                    .filter(|t| !stems.contains(t))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            heard_terms.push((l, stems, content));
        }
        heard_terms
            .iter()
            .find(|(x, _, _)| *x == l)
            .map_or(0.0, |(_, stems, content)| {
                m.lexical(&norm, stems, content) as f32
            })
    };
    let heard_content = content_of(lang);
    let vocab = vocabularies(g, lang);
    let mut out: Vec<Scored> = g
        .intents
        .iter()
        .enumerate()
        .map(|(i, intent)| {
            let own = intent
                .matcher
                .get(&lang)
                .map_or(0.0, |m| lexical_in(m, lang));
            let (mut lexical, mut switch) = (own, None);
            // The other language's words count a little less; when only they
            // match, the caller speaks that language.
            for (l, m) in &intent.matcher {
                if *l == lang || !langs.contains(l) {
                    continue;
                }
                let other = lexical_in(m, *l);
                if other > own && other >= DEFAULT_ACCEPT {
                    lexical = lexical.max(0.9 * other);
                    switch = Some(*l);
                }
            }
            if lexical > 0.0 {
                lexical = (lexical + coverage_bonus(&vocab, i, &heard_content)).min(1.0);
            }
            let cosine = query.and_then(|q| intent.vectors.best(q));
            // Only words that tell errands apart: used by this intent and
            // at most one other ("need", "gerne", "tid" are everybody's).
            let heard_at = vocab.get(i).map_or_else(Vec::new, |v| {
                heard_content
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| {
                        v.contains(t.as_str())
                            && vocab.iter().filter(|w| w.contains(t.as_str())).count() <= 2
                    })
                    .map(|(k, _)| k)
                    .collect()
            });
            Scored {
                intent: i,
                lexical,
                cosine,
                score: combine(lexical, cosine.map(stretch)),
                lang: switch,
                heard_at,
            }
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.intent.cmp(&b.intent)));
    out
}

/// The stemmed words each intent of a gather uses in `lang` (its examples'
/// content words and its keywords).
fn vocabularies(g: &Gather, lang: Lang) -> Vec<std::collections::BTreeSet<&str>> {
    g.intents
        .iter()
        .map(|x| {
            x.matcher
                .get(&lang)
                .map(|m| {
                    m.example_terms
                        .iter()
                        .chain(&m.keyword_terms)
                        .flatten()
                        .map(String::as_str)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

/// A little more for an intent when the turn holds several of the words
/// that only it (or one other intent) of the gather uses: "aflyse ... møde
/// ... jobcentret" is more of the cancellation intent (whose examples speak
/// of all three) than of the job centre (which shares only "jobcentret").
/// 0.04 per distinctive word after the first, at most 0.12.
fn coverage_bonus(vocab: &[std::collections::BTreeSet<&str>], i: usize, heard: &[String]) -> f32 {
    let Some(mine) = vocab.get(i) else {
        return 0.0;
    };
    let mut seen = std::collections::BTreeSet::new();
    let distinctive = heard
        .iter()
        .filter(|t| mine.contains(t.as_str()) && seen.insert(t.as_str()))
        .filter(|t| {
            vocab
                .iter()
                .enumerate()
                .filter(|(j, v)| *j != i && v.contains(t.as_str()))
                .count()
                <= 1
        })
        .count();
    0.04 * (distinctive.saturating_sub(1).min(3) as f32)
}

/// The best cosine of a turn's vector to the municipality's out-of-scope
/// examples ([`OUT_OF_SCOPE_EXAMPLES`]); `None` without vectors.
pub fn out_of_scope_similarity(m: &Municipality, query: Option<&[f32]>) -> Option<f32> {
    m.out_of_scope.best(query?)
}

/// Decides on scored intents (best first, from [`score`]). `out_of_scope`:
/// the turn's [`out_of_scope_similarity`], when there is one.
pub fn decide(
    scored: &[Scored],
    g: &Gather,
    u: &Understanding,
    out_of_scope: Option<f32>,
) -> Decision {
    let Some(best) = scored.first() else {
        return Decision::NotUnderstood;
    };
    if best.score < u.accept {
        return Decision::NotUnderstood;
    }
    if is_out_of_scope(best, u, out_of_scope) {
        return Decision::NotUnderstood;
    }
    let goto = |s: &Scored| g.intents.get(s.intent).map(|i| i.goto);
    // A request with precedence said in its own words (one of its keywords
    // heard: "kan jeg blive ringet op angående min boligstøtte", "kan en
    // fra hjemmeplejen ringe mig op") is what the caller asks for, however
    // much more the errand it is about scored.
    if let Some(p) = scored.iter().skip(1).find(|s| {
        s.lexical >= KEYWORD_HEARD
            && s.score >= u.accept
            && goto(s) != goto(best)
            && g.intents.get(s.intent).is_some_and(|i| i.precedence)
    }) {
        if !g.intents.get(best.intent).is_some_and(|i| i.precedence) {
            return Decision::Chosen {
                intent: p.intent,
                lang: p.lang,
            };
        }
    }
    let runner = scored.iter().skip(1).find(|s| goto(s) != goto(best));
    if let Some(r) = runner {
        // Two errands both heard in words: which one the caller means.
        if best.lexical >= u.words_vouch
            && r.lexical >= u.words_vouch
            && best.score - r.score < BOTH_HEARD_WINDOW
        {
            if let Some(pick) = of_two_heard(best, r, g) {
                return Decision::Chosen {
                    intent: pick.intent,
                    lang: pick.lang,
                };
            }
        }
        if u.clarify && best.score - r.score < u.margin {
            return Decision::Clarify {
                first: best.intent,
                second: r.intent,
            };
        }
    }
    Decision::Chosen {
        intent: best.intent,
        lang: best.lang,
    }
}

/// How far below the best a runner-up whose words were heard as clearly
/// may score and still be weighed against it by [`of_two_heard`].
pub const BOTH_HEARD_WINDOW: f32 = 0.2;

/// Of two intents whose words were both heard clearly, the one the caller
/// means, when the words tell:
/// 1. the more specific: one whose heard words include all of the other's
///    and more ("jeg kan ikke komme til mit møde i jobcentret" is the
///    cancellation, which also speaks of the job centre);
/// 2. an intent with [`Intent::precedence`] over one without (a callback
///    asked for about some errand);
/// 3. the errand named first ("nyt pas og så boligstøtte": the passport
///    now, the rest after `anything_else`).
///
/// `None`: they cannot be told apart by their words.
///
/// [`Intent::precedence`]: crate::model::Intent::precedence
pub fn of_two_heard<'a>(a: &'a Scored, b: &'a Scored, g: &Gather) -> Option<&'a Scored> {
    let only = |x: &Scored, y: &Scored| -> Vec<usize> {
        x.heard_at
            .iter()
            .copied()
            .filter(|k| !y.heard_at.contains(k))
            .collect()
    };
    let (a_only, b_only) = (only(a, b), only(b, a));
    let shares = |x: &Scored| !x.heard_at.is_empty();
    if shares(b) && b_only.is_empty() && !a_only.is_empty() {
        return Some(a);
    }
    if shares(a) && a_only.is_empty() && !b_only.is_empty() {
        return Some(b);
    }
    // Precedence needs one of its keywords heard (0.95), not a word like it.
    let prec = |x: &Scored| {
        x.lexical >= KEYWORD_HEARD && g.intents.get(x.intent).is_some_and(|i| i.precedence)
    };
    match (prec(a), prec(b)) {
        (true, false) => return Some(a),
        (false, true) => return Some(b),
        _ => {}
    }
    // The first named, when the two share no word (two errands, not one
    // errand spoken of in the other's words).
    if a_only.len() < a.heard_at.len() {
        return None;
    }
    match (a_only.first(), b_only.first()) {
        (Some(x), Some(y)) if x < y => Some(a),
        (Some(x), Some(y)) if y < x => Some(b),
        _ => None,
    }
}

/// The words score of a keyword heard (stemmed).
const KEYWORD_HEARD: f32 = 0.95;

/// Whether the meaning of the turn leans to the out-of-scope examples rather
/// than to `best` (and `best`'s own words do not vouch for it).
pub fn is_out_of_scope(best: &Scored, u: &Understanding, out_of_scope: Option<f32>) -> bool {
    if !u.out_of_scope || best.lexical >= u.words_vouch {
        return false;
    }
    match (out_of_scope, best.cosine) {
        (Some(o), Some(c)) => c < o + u.out_of_scope_margin,
        _ => false,
    }
}

/// Which of two intents a caller's answer to [`clarify_question`] picks:
/// "den første" / "the first" / "den sidste" / "the second", or the one whose
/// words or meaning fit the answer clearly better. `None`: neither.
pub fn resolve_clarification(
    g: &Gather,
    first: usize,
    second: usize,
    heard: &str,
    lang: Lang,
    langs: &[Lang],
    query: Option<&[f32]>,
) -> Option<usize> {
    let norm = normalize(heard);
    let words: Vec<&str> = norm.split(' ').collect();
    let has = |w: &[&str]| words.iter().any(|x| w.contains(x));
    let first_words = ["foerste", "foerst", "first", "former", "det", "den"];
    let second_words = ["anden", "andet", "sidste", "second", "latter", "last"];
    if words.len() <= 4 {
        if has(&second_words) {
            return Some(second);
        }
        if has(&first_words[..4]) {
            return Some(first);
        }
    }
    let scored = score(g, heard, lang, langs, query);
    let of = |i: usize| {
        scored
            .iter()
            .find(|s| s.intent == i)
            .map_or(0.0, |s| s.score)
    };
    let (a, b) = (of(first), of(second));
    // A clear difference between the two is enough; the answer is short and
    // about these two only.
    const CLEAR: f32 = 0.1;
    if a >= b + CLEAR && a >= 0.3 {
        Some(first)
    } else if b >= a + CLEAR && b >= 0.3 {
        Some(second)
    } else {
        None
    }
}

/// "Vil du aflyse en aftale i jobcentret, eller tale med jobcentret?"
pub fn clarify_question(g: &Gather, first: usize, second: usize, lang: Lang) -> String {
    let label = |i: usize| -> String {
        g.intents
            .get(i)
            .and_then(|x| x.clarify.as_ref())
            .and_then(|t| t.get(lang))
            .map(|t| t.source.clone())
            .or_else(|| {
                let x = g.intents.get(i)?;
                let kw = x.matcher.get(&lang)?.keyword_texts.first()?.clone();
                Some(match lang {
                    Lang::En => format!("talk about {kw}"),
                    _ => format!("tale om {kw}"),
                })
            })
            .unwrap_or_else(|| g.intents.get(i).map_or(String::new(), |x| x.name.clone()))
    };
    match lang {
        Lang::En => format!("Would you like to {}, or {}?", label(first), label(second)),
        _ => format!("Vil du {}, eller {}?", label(first), label(second)),
    }
}

// ------------------------------------------------------------ auto intents

/// Where an intent's step leads without the caller saying more: the one
/// department it transfers to, or the one queue it sets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Destination {
    Department(String),
    Queue(String),
}

/// Follows steps that move on at once (say, set, goto, branch) from `from`
/// and returns the destination when there is exactly one.
fn destination(flow: &Flow, from: StepId, m: &Municipality) -> Option<Destination> {
    let mut found: Vec<Destination> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![from];
    while let Some(s) = todo.pop() {
        if !seen.insert(s) || seen.len() > 64 {
            continue;
        }
        let Some(step) = flow.step(s) else { continue };
        match &step.kind {
            StepKind::Transfer { department, .. } => {
                found.push(Destination::Department(department.clone()));
            }
            StepKind::Set { vars, next } => {
                for (name, t) in vars {
                    if name.as_str() == "queue" {
                        if let Some(q) = t.as_static().filter(|q| m.queues.contains_key(*q)) {
                            found.push(Destination::Queue(q.to_string()));
                        }
                    }
                }
                todo.push(*next);
            }
            StepKind::Say { next, .. } => todo.push(*next),
            StepKind::Goto(t) => todo.push(*t),
            StepKind::Branch { when, otherwise } => {
                todo.extend(when.iter().map(|c| c.goto));
                todo.push(*otherwise);
            }
            _ => {}
        }
    }
    found.sort();
    found.dedup();
    // A queue's booking step sets the queue and then transfers on failure:
    // the queue is the destination.
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => found
            .iter()
            .find(|d| matches!(d, Destination::Queue(_)))
            .cloned()
            .filter(|_| {
                found
                    .iter()
                    .filter(|d| matches!(d, Destination::Queue(_)))
                    .count()
                    == 1
            }),
    }
}

fn literal(s: &str) -> Template {
    Template {
        source: s.to_string(),
        parts: vec![Part::Lit(s.to_string())],
        personal: false,
    }
}

fn text_of(m: &Municipality, f: impl Fn(Lang) -> String) -> Text {
    Text(m.languages.iter().map(|&l| (l, literal(&f(l)))).collect())
}

/// Adds the municipality's departments and queues to every menu gather of
/// its flows (see the module docs). Run once at load, after validation.
pub fn add_auto_intents(m: &mut Municipality) {
    let terms = Terms::default();
    let snapshot = m.clone();
    for flow in &mut m.flows {
        let f = Arc::make_mut(flow);
        let flow_default = f.understanding.auto_intents;
        let mut added_steps: Vec<Step> = Vec::new();
        let base = f.steps.len();
        for si in 0..f.steps.len() {
            let StepKind::Gather(g) = &f.steps[si].kind else {
                continue;
            };
            if g.expect != Expect::Intent || !g.speech {
                continue;
            }
            let dests: Vec<Option<Destination>> = g
                .intents
                .iter()
                .map(|i| destination(f, i.goto, &snapshot))
                .collect();
            let distinct: std::collections::BTreeSet<&Destination> =
                dests.iter().flatten().collect();
            let enabled = g
                .auto_intents
                .unwrap_or(flow_default && distinct.len() >= 2);
            if !enabled {
                continue;
            }
            let mut new_intents: Vec<Intent> = Vec::new();
            let mut merges: Vec<(usize, Destination)> = Vec::new();
            for (d_id, d) in &snapshot.departments {
                let dest = Destination::Department(d_id.clone());
                if let Some(i) = dests.iter().position(|x| x.as_ref() == Some(&dest)) {
                    merges.push((i, dest));
                    continue;
                }
                if g.intents.iter().any(|i| i.name == *d_id) {
                    continue;
                }
                // The flow's own transfer to it, or one added for it.
                let goto = f
                    .steps
                    .iter()
                    .position(|s| {
                        matches!(&s.kind, StepKind::Transfer { department, .. } if department == d_id)
                    })
                    .or_else(|| {
                        added_steps
                            .iter()
                            .position(|s| s.name == auto_step_name(d_id))
                            .map(|p| base + p)
                    })
                    .unwrap_or_else(|| {
                        added_steps.push(Step {
                            name: auto_step_name(d_id),
                            line: 0,
                            kind: StepKind::Transfer {
                                department: d_id.clone(),
                                context: vec![("intent".to_string(), literal(d_id))],
                                if_closed: None,
                                if_failed: None,
                            },
                        });
                        base + added_steps.len() - 1
                    });
                let keywords = department_keywords(&snapshot, d_id);
                new_intents.push(Intent {
                    name: d_id.clone(),
                    matcher: matchers_of(&keywords, &terms),
                    keywords,
                    dtmf: None,
                    goto: StepId {
                        flow: f.id,
                        step: goto as u32,
                    },
                    clarify: Some(department_clarify(&snapshot, d)),
                    origin: IntentOrigin::Department(d_id.clone()),
                    vectors: ExampleVectors::default(),
                    precedence: false,
                });
            }
            for q_id in snapshot.queues.keys() {
                let dest = Destination::Queue(q_id.clone());
                if let Some(i) = dests.iter().position(|x| x.as_ref() == Some(&dest)) {
                    merges.push((i, dest));
                    continue;
                }
                if g.intents.iter().any(|i| i.name == *q_id) {
                    continue;
                }
                // Only where the flow itself books for it.
                let Some(goto) = f.steps.iter().position(|s| {
                    matches!(&s.kind, StepKind::Set { vars, .. }
                        if vars.iter().any(|(n, t)| n.as_str() == "queue" && t.as_static() == Some(q_id.as_str())))
                }) else {
                    continue;
                };
                let keywords = queue_keywords(&snapshot, q_id);
                new_intents.push(Intent {
                    name: q_id.clone(),
                    matcher: matchers_of(&keywords, &terms),
                    keywords,
                    dtmf: None,
                    goto: StepId {
                        flow: f.id,
                        step: goto as u32,
                    },
                    clarify: Some(queue_clarify(&snapshot, q_id)),
                    origin: IntentOrigin::Queue(q_id.clone()),
                    vectors: ExampleVectors::default(),
                    precedence: false,
                });
            }
            let StepKind::Gather(g) = &mut f.steps[si].kind else {
                continue;
            };
            for (i, dest) in merges {
                let Some(intent) = g.intents.get_mut(i) else {
                    continue;
                };
                let (words, clarify) = match &dest {
                    Destination::Department(d) => (
                        department_keywords(&snapshot, d),
                        snapshot
                            .departments
                            .get(d)
                            .map(|x| department_clarify(&snapshot, x)),
                    ),
                    Destination::Queue(q) => (
                        queue_keywords(&snapshot, q),
                        Some(queue_clarify(&snapshot, q)),
                    ),
                };
                for (l, w) in words {
                    intent.matcher.entry(l).or_default().add(l, &[], &w, &terms);
                    intent.keywords.entry(l).or_default().extend(w);
                }
                if intent.clarify.is_none() {
                    intent.clarify = clarify;
                }
            }
            g.intents.extend(new_intents);
        }
        f.steps.extend(added_steps);
    }
}

fn auto_step_name(department: &str) -> String {
    format!("{department} (department intent)")
}

/// The municipality's own words for a department (its name and synonyms),
/// per language, as written: what speech-to-text scores against the audio.
fn department_keywords(m: &Municipality, d: &str) -> std::collections::BTreeMap<Lang, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    let Some(dep) = m.departments.get(d) else {
        return out;
    };
    for &l in &m.languages {
        let mut words: Vec<String> = Vec::new();
        if let Some(n) = dep.name.get(&l) {
            words.push(n.clone());
        }
        words.extend(dep.synonyms.get(&l).cloned().unwrap_or_default());
        out.insert(l, words);
    }
    out
}

/// A queue's name per language, as written.
fn queue_keywords(m: &Municipality, q: &str) -> std::collections::BTreeMap<Lang, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    let Some(queue) = m.queues.get(q) else {
        return out;
    };
    for &l in &m.languages {
        out.insert(l, queue.name.get(&l).cloned().into_iter().collect());
    }
    out
}

fn matchers_of(
    keywords: &std::collections::BTreeMap<Lang, Vec<String>>,
    terms: &Terms,
) -> BTreeLangMatchers {
    let mut out = BTreeLangMatchers::new();
    for (&l, words) in keywords {
        out.entry(l).or_default().add(l, &[], words, terms);
    }
    out
}

type BTreeLangMatchers = std::collections::BTreeMap<Lang, IntentMatcher>;

fn department_clarify(m: &Municipality, d: &crate::model::Department) -> Text {
    text_of(m, |l| {
        let name = d.name.get(&l).cloned().unwrap_or_else(|| d.id.clone());
        match l {
            Lang::En => format!("talk to {name}"),
            _ => format!("tale med {name}"),
        }
    })
}

fn queue_clarify(m: &Municipality, q: &str) -> Text {
    let queue = m.queues.get(q);
    text_of(m, |l| {
        let name = queue
            .and_then(|x| x.name.get(&l).cloned())
            .unwrap_or_else(|| q.to_string());
        match l {
            Lang::En => format!("book or cancel an appointment for {name}"),
            _ => format!("bestille eller aflyse en tid til {name}"),
        }
    })
}

// ------------------------------------------------------------ embeddings

/// Embeds every example and keyword of every intent gather of `m` with
/// `enc` (as [`Role::Query`]: E5's recipe for symmetric similarity, both
/// sides short) and attaches `enc` to the municipality. `cache` keeps
/// vectors by text across municipalities and reloads (flow text, never
/// personal data), so a reload embeds only what changed.
///
/// # Errors
/// The first [`EncodeError`].
pub fn embed_examples(
    m: &mut Municipality,
    enc: &Arc<dyn SentenceEncoder>,
    cache: &mut HashMap<String, Arc<[f32]>>,
) -> Result<(), EncodeError> {
    for flow in &mut m.flows {
        let f = Arc::make_mut(flow);
        for step in &mut f.steps {
            let StepKind::Gather(g) = &mut step.kind else {
                continue;
            };
            if g.expect != Expect::Intent {
                continue;
            }
            for intent in &mut g.intents {
                let mut texts: Vec<String> = Vec::new();
                for mt in intent.matcher.values() {
                    for t in mt.example_texts.iter().chain(&mt.keyword_texts) {
                        if !texts.contains(t) {
                            texts.push(t.clone());
                        }
                    }
                }
                let vectors = texts
                    .iter()
                    .map(|t| vector_of(t, enc, cache))
                    .collect::<Result<Vec<_>, _>>()?;
                intent.vectors = ExampleVectors { vectors, texts };
            }
        }
    }
    let mut oos = ExampleVectors::default();
    for (_, t) in OUT_OF_SCOPE_EXAMPLES {
        oos.vectors.push(vector_of(t, enc, cache)?);
        oos.texts.push((*t).to_string());
    }
    m.out_of_scope = oos;
    m.encoder = Some(enc.clone());
    Ok(())
}

/// The vector of an example text, from `cache` or embedded now.
fn vector_of(
    t: &str,
    enc: &Arc<dyn SentenceEncoder>,
    cache: &mut HashMap<String, Arc<[f32]>>,
) -> Result<Arc<[f32]>, EncodeError> {
    if let Some(v) = cache.get(t) {
        return Ok(v.clone());
    }
    let v: Arc<[f32]> = enc.embed(t, Role::Query)?.into();
    cache.insert(t.to_string(), v.clone());
    Ok(v)
}

/// An example of one intent that, said by a caller, would be taken for
/// another intent of the same gather (one that leads elsewhere): scored as
/// a caller turn against the gather with that example left out of its own
/// intent, the other intent wins (`ivr check` warns).
#[derive(Debug, Clone, PartialEq)]
pub struct Confusable {
    /// Flow name.
    pub flow: String,
    /// Gather step name.
    pub step: String,
    /// The intent the example belongs to.
    pub intent: String,
    /// The example.
    pub example: String,
    /// Its own intent's score without it.
    pub own: f32,
    /// The intent it would go to.
    pub other: String,
    /// That intent's score.
    pub closer: f32,
}

/// The gather with example `k` of `lang` removed from intent `a` (words and
/// vector), for leave-one-out scoring.
fn without_example(g: &Gather, a: usize, lang: Lang, k: usize) -> Gather {
    let mut g2 = g.clone();
    if let Some(intent) = g2.intents.get_mut(a) {
        let mut text = None;
        if let Some(m) = intent.matcher.get_mut(&lang) {
            if k < m.examples.len() {
                m.examples.remove(k);
                m.example_terms.remove(k);
                text = Some(m.example_texts.remove(k));
            }
        }
        if let Some(t) = text {
            let still_used = intent
                .matcher
                .values()
                .any(|m| m.example_texts.contains(&t) || m.keyword_texts.contains(&t));
            if !still_used {
                if let Some(p) = intent.vectors.texts.iter().position(|x| *x == t) {
                    intent.vectors.texts.remove(p);
                    intent.vectors.vectors.remove(p);
                }
            }
        }
    }
    g2
}

/// Every [`Confusable`] example of a municipality whose examples were
/// embedded ([`embed_examples`]), with its flows' thresholds. Keywords are
/// left out (they are matched by their words).
pub fn confusable_examples(m: &Municipality) -> Vec<Confusable> {
    let mut out = Vec::new();
    if m.encoder.is_none() {
        return out;
    }
    for f in &m.flows {
        for step in &f.steps {
            let StepKind::Gather(g) = &step.kind else {
                continue;
            };
            if g.expect != Expect::Intent {
                continue;
            }
            for (ai, a) in g.intents.iter().enumerate() {
                for (&lang, matcher) in &a.matcher {
                    for (k, text) in matcher.example_texts.iter().enumerate() {
                        let Some(p) = a.vectors.texts.iter().position(|t| t == text) else {
                            continue;
                        };
                        let Some(q) = a.vectors.vectors.get(p).cloned() else {
                            continue;
                        };
                        let g2 = without_example(g, ai, lang, k);
                        let scored = score(&g2, text, lang, &m.languages, Some(&q));
                        let own = scored
                            .iter()
                            .find(|s| s.intent == ai)
                            .map_or(0.0, |s| s.score);
                        let Some(best) = scored.first() else { continue };
                        let Some(b) = g2.intents.get(best.intent) else {
                            continue;
                        };
                        if b.goto != a.goto && best.score > own {
                            out.push(Confusable {
                                flow: f.name.clone(),
                                step: step.name.clone(),
                                intent: a.name.clone(),
                                example: text.clone(),
                                own,
                                other: b.name.clone(),
                                closer: best.score,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_maps_the_models_narrow_band_to_zero_one() {
        assert_eq!(stretch(0.5), 0.0);
        assert_eq!(stretch(SEM_FLOOR), 0.0);
        assert_eq!(stretch(0.99), 1.0);
        assert!((stretch((SEM_FLOOR + SEM_CEIL) / 2.0) - 0.5).abs() < 1e-5);
    }

    fn scored(lexical: f32, cosine: f32) -> Scored {
        Scored {
            intent: 0,
            lexical,
            cosine: Some(cosine),
            score: combine(lexical, Some(stretch(cosine))),
            lang: None,
            heard_at: Vec::new(),
        }
    }

    #[test]
    fn a_turn_closer_to_the_out_of_scope_examples_is_out_of_scope_unless_words_vouch() {
        let u = Understanding::default();
        // "jeg vil gerne bestille en pizza": one shared word ("bestille"),
        // meaning nearer a pizza order than any errand.
        assert!(is_out_of_scope(&scored(0.3, 0.91), &u, Some(0.94)));
        // The same meaning, but a keyword of the intent heard.
        assert!(!is_out_of_scope(&scored(0.95, 0.91), &u, Some(0.94)));
        // Closer to the errand than to anything out of scope.
        assert!(!is_out_of_scope(&scored(0.0, 0.93), &u, Some(0.90)));
        // Switched off per flow; no model: nothing to compare.
        let off = Understanding {
            out_of_scope: false,
            ..u
        };
        assert!(!is_out_of_scope(&scored(0.3, 0.91), &off, Some(0.94)));
        assert!(!is_out_of_scope(&scored(0.3, 0.91), &u, None));
    }

    #[test]
    fn without_an_encoder_the_words_alone_decide() {
        assert_eq!(combine(0.7, None), 0.7);
    }
}
