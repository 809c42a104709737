//! Measuring how a municipality's entry flow understands first turns: the
//! caller-turn sets under `tests/vectors/caller_turns/` and any operator's
//! own file, for `ivr eval`.
//!
//! Each turn is run through a fresh call on the interpreter exactly as a
//! call's first turn arrives from the engine: a transcript whose language was
//! identified among the municipality's languages (`Event::Speech` with
//! `identified = true`). What the call did with it is the outcome ([`Got`]):
//! the intent, department or queue it recognised first
//! ([`crate::CallRecord::intents`]); a question answered from the knowledge
//! base (right for a `general` turn when the answering entry belongs to the
//! expected department: the bot settled the department's question itself);
//! a question back (two intents or two entries too close to choose: neither
//! right nor a wrong route, counted apart); or nothing (`none`: the caller is
//! asked again). No scoring logic is copied here.
//!
//! File format: tab-separated, a header line naming the columns; `text` and
//! `expected` are required, `lang`, `use_case` and `municipality` optional
//! (rows of other municipalities are skipped). `#` lines and blank lines are
//! ignored. See `tests/vectors/caller_turns/README.md`.

use std::{collections::BTreeMap, fmt, sync::Arc};

use chrono::{DateTime, Utc};
use ivr_core::{Lang, Pii};

use crate::{
    interp::{CallContext, Event, Route},
    model::{Municipality, StepKind},
    sim::{Conversation, SimulatedIntegrations},
};

/// The label of a turn that should not be understood (out of scope).
pub const NONE: &str = "none";

/// The use case of a general question: right when routed to the expected
/// department or answered from the knowledge base by one of its entries.
pub const GENERAL: &str = "general";

/// One caller turn with what the menu should pick.
#[derive(Debug, Clone)]
pub struct Case {
    /// Line in the file (1-based).
    pub line: usize,
    /// Language the caller speaks.
    pub lang: Lang,
    /// Expected intent, department or queue id, or [`NONE`].
    pub expected: String,
    /// Use case (free label; `-` when the file has no such column).
    pub use_case: String,
    /// The caller's words.
    pub text: String,
}

/// A bad line in a turns file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FileError {
    /// Line number (1-based).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Labels a file may use for `muni`: intent names of its entry flows'
/// gathers, department and queue ids, and [`NONE`].
pub fn known_labels(muni: &Municipality) -> Vec<String> {
    let mut v: Vec<String> = vec![NONE.to_string()];
    for f in &muni.flows {
        for st in &f.steps {
            if let StepKind::Gather(g) = &st.kind {
                v.extend(g.intents.iter().map(|i| i.name.clone()));
            }
        }
    }
    v.extend(muni.departments.keys().cloned());
    v.extend(muni.queues.keys().cloned());
    v.sort();
    v.dedup();
    v
}

/// Reads a turns file for municipality `muni` (rows of other municipalities
/// are skipped). Errors name the line.
pub fn parse_cases(src: &str, muni: &Municipality) -> Result<Vec<Case>, FileError> {
    let mut lines = src
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((hl, header)) = lines.next() else {
        return Err(FileError {
            line: 1,
            message:
                "empty file: expected a header line (municipality, lang, expected, use_case, text)"
                    .into(),
        });
    };
    let cols: Vec<String> = header
        .split('\t')
        .map(|c| c.trim().to_lowercase())
        .collect();
    let col = |name: &str| cols.iter().position(|c| c == name);
    let (Some(text_c), Some(exp_c)) = (col("text"), col("expected")) else {
        return Err(FileError {
            line: hl + 1,
            message: format!(
                "the header must name the columns `expected` and `text` (tab-separated), found: {}",
                cols.join(", ")
            ),
        });
    };
    let (lang_c, uc_c, muni_c) = (col("lang"), col("use_case"), col("municipality"));
    let labels = known_labels(muni);
    let mut out = Vec::new();
    for (i, raw) in lines {
        let line = i + 1;
        let fields: Vec<&str> = raw.split('\t').collect();
        if fields.len() != cols.len() {
            return Err(FileError {
                line,
                message: format!(
                    "{} tab-separated fields, the header has {}",
                    fields.len(),
                    cols.len()
                ),
            });
        }
        let get = |c: usize| fields[c].trim();
        if let Some(m) = muni_c {
            if get(m) != muni.id {
                continue;
            }
        }
        let lang = match lang_c {
            Some(c) => get(c).parse::<Lang>().map_err(|_| FileError {
                line,
                message: format!("unknown language `{}` (da, en)", get(c)),
            })?,
            None => muni.default_lang(),
        };
        if !muni.languages.contains(&lang) {
            return Err(FileError {
                line,
                message: format!("{} does not offer language `{lang}`", muni.id),
            });
        }
        let expected = get(exp_c).to_string();
        if !labels.contains(&expected) {
            return Err(FileError {
                line,
                message: format!(
                    "unknown expected `{expected}` for {}: use an intent name, a department or queue id, or `none` ({})",
                    muni.id,
                    labels.join(", ")
                ),
            });
        }
        let text = get(text_c).to_string();
        if text.is_empty() {
            return Err(FileError {
                line,
                message: "empty text".into(),
            });
        }
        out.push(Case {
            line,
            lang,
            expected,
            use_case: uc_c.map_or("-".to_string(), |c| get(c).to_string()),
            text,
        });
    }
    if out.is_empty() {
        return Err(FileError {
            line: hl + 1,
            message: format!("no turns for municipality `{}`", muni.id),
        });
    }
    Ok(out)
}

/// What a call did with a first turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// Recognised this intent, department or queue.
    Chose(String),
    /// Answered the question from the knowledge base.
    Answered {
        /// The entry that answered.
        entry: String,
        /// The department that owns the entry.
        department: String,
    },
    /// Asked which of two intents or entries the caller meant.
    AskedBack,
    /// Understood nothing (the caller is asked again).
    Nothing,
}

impl fmt::Display for Got {
    /// The label in reports and the confusion table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Got::Chose(l) => f.write_str(l),
            Got::Answered { department, .. } => write!(f, "answer:{department}"),
            Got::AskedBack => f.write_str("asked-back"),
            Got::Nothing => f.write_str(NONE),
        }
    }
}

/// What the flow did with one turn.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// What the call did.
    pub got: Got,
    /// The department the expected label belongs to (itself, or a queue's
    /// department).
    pub expected_department: Option<String>,
}

impl Outcome {
    /// Whether the flow did what was expected: picked the expected label
    /// (`none` for out of scope), or, for a general question, answered it
    /// with an entry of the expected department.
    pub fn is_right(&self) -> bool {
        match &self.got {
            Got::Chose(l) => *l == self.case.expected,
            Got::Answered { department, .. } => {
                self.case.use_case == GENERAL
                    && Some(department) == self.expected_department.as_ref()
            }
            Got::AskedBack => false,
            Got::Nothing => self.case.expected == NONE,
        }
    }

    /// Whether the call asked back instead of choosing.
    pub fn asked_back(&self) -> bool {
        self.got == Got::AskedBack
    }
}

/// Runs one turn as a call's first turn and returns what the call did.
pub fn first_turn(route: &Route, text: &str, lang: Lang, now: DateTime<Utc>) -> Got {
    let (mut c, _) = Conversation::start(
        route.clone(),
        CallContext {
            caller: Pii::new("+4522334455".into()),
            lang: None,
        },
        now,
        SimulatedIntegrations::default(),
    );
    c.hear(Event::Speech {
        text: Pii::new(text.to_string()),
        confidence: 0.9,
        lang: Some(lang),
        identified: true,
    });
    let rec = c.interp.record();
    if let Some(i) = rec.intents.first() {
        return Got::Chose(i.clone());
    }
    if let Some(id) = rec.questions.first().and_then(|q| q.entry.as_ref()) {
        let department = route
            .municipality
            .knowledge
            .entry(id)
            .map_or_else(String::new, |e| e.department.clone());
        return Got::Answered {
            entry: id.clone(),
            department,
        };
    }
    if c.interp.is_asking_back() {
        Got::AskedBack
    } else {
        Got::Nothing
    }
}

/// The department a label belongs to: a department id itself, or a queue's
/// department.
pub fn department_of(muni: &Municipality, label: &str) -> Option<String> {
    if muni.departments.contains_key(label) {
        return Some(label.to_string());
    }
    muni.queues.get(label).map(|q| q.department.clone())
}

/// Runs every case on `route` at `now`.
pub fn evaluate(route: &Route, cases: &[Case], now: DateTime<Utc>) -> Report {
    let outcomes = cases
        .iter()
        .map(|c| Outcome {
            got: first_turn(route, &c.text, c.lang, now),
            expected_department: department_of(&route.municipality, &c.expected),
            case: c.clone(),
        })
        .collect();
    Report {
        municipality: route.municipality.clone(),
        outcomes,
    }
}

/// Right of total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Score {
    /// Turns routed right.
    pub right: usize,
    /// Turns where the call asked which of two the caller meant.
    pub asked: usize,
    /// Turns.
    pub total: usize,
}

impl Score {
    /// Share right, 0..1 (1 for no turns).
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.right as f64 / self.total as f64
        }
    }
    /// Adds another score's turns (e.g. of another municipality).
    pub fn merge(&mut self, other: &Score) {
        self.right += other.right;
        self.asked += other.asked;
        self.total += other.total;
    }

    fn add(&mut self, o: &Outcome) {
        self.total += 1;
        self.right += usize::from(o.is_right());
        self.asked += usize::from(o.asked_back());
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>4}/{:<4} {:>5.1} %  asked back {}",
            self.right,
            self.total,
            100.0 * self.accuracy(),
            self.asked
        )
    }
}

/// The result of [`evaluate`].
#[derive(Debug, Clone)]
pub struct Report {
    /// The municipality measured.
    pub municipality: Arc<Municipality>,
    /// One per case, in file order.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// All turns.
    pub fn overall(&self) -> Score {
        let mut s = Score::default();
        for o in &self.outcomes {
            s.add(o);
        }
        s
    }

    /// Per key (language, use case, ...).
    pub fn by(&self, key: impl Fn(&Case) -> String) -> BTreeMap<String, Score> {
        let mut m: BTreeMap<String, Score> = BTreeMap::new();
        for o in &self.outcomes {
            m.entry(key(&o.case)).or_default().add(o);
        }
        m
    }

    /// Per language.
    pub fn by_lang(&self) -> BTreeMap<String, Score> {
        self.by(|c| c.lang.code().to_string())
    }

    /// Per use case.
    pub fn by_use_case(&self) -> BTreeMap<String, Score> {
        self.by(|c| c.use_case.clone())
    }

    /// Counts of (expected, got).
    pub fn confusion(&self) -> BTreeMap<(String, String), usize> {
        let mut m = BTreeMap::new();
        for o in &self.outcomes {
            *m.entry((o.case.expected.clone(), o.got.to_string()))
                .or_insert(0) += 1;
        }
        m
    }

    /// The turns routed wrong.
    pub fn misses(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| !o.is_right())
    }
}

impl fmt::Display for Report {
    /// The report `ivr eval` prints: accuracy overall, per language, per use
    /// case, then the confusion table (rows expected, columns recognised).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {} turns", self.municipality.id, self.outcomes.len())?;
        writeln!(f, "overall          {}", self.overall())?;
        for (k, s) in self.by_lang() {
            writeln!(f, "lang     {k:<16} {s}")?;
        }
        for (k, s) in self.by_use_case() {
            writeln!(f, "use_case {k:<16} {s}")?;
        }
        // Confusion table: rows expected, columns recognised.
        let conf = self.confusion();
        let mut labels: Vec<String> = conf
            .keys()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        labels.sort();
        labels.dedup();
        let w = labels.iter().map(String::len).max().unwrap_or(4).max(8);
        writeln!(f)?;
        writeln!(
            f,
            "confusion (rows: expected, columns: recognised; column k is row k)"
        )?;
        write!(f, "{:>3} {:<w$}", "", "")?;
        for (i, _) in labels.iter().enumerate() {
            write!(f, " {:>3}", i + 1)?;
        }
        writeln!(f)?;
        for (i, a) in labels.iter().enumerate() {
            write!(f, "{:>3} {a:<w$}", i + 1)?;
            for b in &labels {
                match conf.get(&(a.clone(), b.clone())) {
                    Some(n) => write!(f, " {n:>3}")?,
                    None => write!(f, " {:>3}", ".")?,
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
