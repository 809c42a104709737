//! Loading: TOML files -> raw serde types (unknown keys refused, spans kept)
//! -> validated [`Municipality`]/[`Flow`] values, with a [`Diagnostic`] at
//! file:line:column and a hint for everything wrong.
//!
//! Layout of a deployment folder:
//!
//! ```text
//! flows/tenants.toml            called number -> municipality, entry flow
//! flows/shared/*.toml           sub-flows every municipality may `call`
//! flows/<id>/municipality.toml  name, languages, departments, hours, queues
//! flows/<id>/announcement.toml  optional: said before every flow
//! flows/<id>/*.toml             the municipality's flows (name = file stem)
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use ivr_core::Lang;
use serde::Deserialize;
use toml::Spanned;

use crate::{
    diag::{closest, Diagnostic, Severity, Source},
    hours::{parse_intervals, weekday_key, Calendar, OpeningHours, OptionalClosure},
    interp::Outcome,
    model::*,
    understand::{normalize, IntentMatcher},
};

type S<T> = Spanned<T>;
// Not `Spanned`: toml gives no span for dotted-key tables (`text.da = ..`),
// so positions of these fields are found with [`key_pos`].
type LangMap<T> = BTreeMap<String, T>;

/// Byte offset of the line assigning `field` (e.g. `prompt.da = ..` or
/// `prompt = {..}`) in the table that starts at `from`; `from` if not found.
fn key_pos(src: &Source, from: usize, field: &str) -> usize {
    let start = src
        .text
        .get(..from)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let mut off = start;
    for (i, line) in src
        .text
        .get(start..)
        .unwrap_or("")
        .split_inclusive('\n')
        .enumerate()
    {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') && !t.starts_with("[[") {
            break;
        }
        if let Some(rest) = t.strip_prefix(field) {
            if rest.starts_with(['.', ' ', '=']) {
                return off + (line.len() - t.len());
            }
        }
        off += line.len();
    }
    from
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenants {
    #[serde(default)]
    tenant: Vec<RawTenant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    number: S<String>,
    municipality: S<String>,
    entry: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMunicipality {
    name: S<String>,
    languages: S<Vec<String>>,
    fallback: S<String>,
    closed_on: Option<Vec<S<String>>>,
    #[serde(default)]
    closure: Vec<RawClosure>,
    #[serde(default)]
    special_day: Vec<RawSpecial>,
    #[serde(default)]
    department: BTreeMap<S<String>, RawDepartment>,
    #[serde(default)]
    queue: BTreeMap<S<String>, RawQueue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClosure {
    from: S<String>,
    to: Option<S<String>>,
    #[allow(dead_code)] // reason: documentation for operators, not used by the engine
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpecial {
    date: S<String>,
    hours: S<String>,
    #[allow(dead_code)] // reason: documentation for operators, not used by the engine
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDepartment {
    name: LangMap<String>,
    target: S<String>,
    mail: Option<S<String>>,
    hours: BTreeMap<S<String>, S<String>>,
    /// Other words citizens use for the department, per language.
    synonyms: Option<LangMap<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: LangMap<String>,
    department: S<String>,
    slot_minutes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnnouncement {
    text: LangMap<String>,
    until: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    #[allow(dead_code)] // reason: documentation for operators and `ivr graph`
    description: Option<String>,
    start: S<String>,
    understanding: Option<RawUnderstanding>,
    questions: Option<S<RawQuestions>>,
    step: BTreeMap<S<String>, S<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnderstanding {
    accept: Option<S<f32>>,
    margin: Option<S<f32>>,
    clarify: Option<bool>,
    auto_intents: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestions {
    answer: Option<bool>,
    resume: Option<S<String>>,
    decline: Option<S<String>>,
    unresolved: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: S<String>,
    examples: Option<LangMap<Vec<String>>>,
    keywords: Option<LangMap<Vec<String>>>,
    clarify: Option<LangMap<String>>,
    dtmf: Option<S<String>>,
    goto: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCond {
    open: Option<S<String>>,
    closed: Option<S<String>>,
    lang: Option<S<String>>,
    caller_prefix: Option<S<String>>,
    var: Option<S<String>>,
    equals: Option<S<String>>,
    before: Option<S<String>>,
    after: Option<S<String>>,
    weekday: Option<S<Vec<String>>>,
    holiday: Option<bool>,
    heard: Option<S<String>>,
    goto: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    r#do: S<String>,
    text: Option<LangMap<String>>,
    audio: Option<S<String>>,
    next: Option<S<String>>,
    prompt: Option<LangMap<String>>,
    reprompt: Option<LangMap<String>>,
    input: Option<S<Vec<String>>>,
    hints: Option<LangMap<Vec<String>>>,
    timeout: Option<S<u32>>,
    retries: Option<S<u32>>,
    barge_in: Option<S<bool>>,
    expect: Option<S<String>>,
    intent: Option<S<Vec<S<RawIntent>>>>,
    save_as: Option<S<String>>,
    max_digits: Option<S<u32>>,
    no_input: Option<S<String>>,
    no_match: Option<S<String>>,
    when: Option<S<Vec<S<RawCond>>>>,
    #[serde(rename = "else")]
    otherwise: Option<S<String>>,
    vars: Option<S<BTreeMap<String, S<String>>>>,
    department: Option<S<String>>,
    context: Option<S<BTreeMap<String, S<String>>>>,
    if_closed: Option<S<String>>,
    if_failed: Option<S<String>>,
    personal: Option<S<bool>>,
    topic: Option<S<String>>,
    number: Option<S<String>>,
    to: Option<S<Vec<String>>>,
    subject: Option<S<String>>,
    body: Option<S<String>>,
    op: Option<S<String>>,
    queue: Option<S<String>>,
    slot: Option<S<String>>,
    cpr: Option<S<String>>,
    date: Option<S<String>>,
    on_error: Option<S<String>>,
    on_taken: Option<S<String>>,
    on_empty: Option<S<String>>,
    on_unavailable: Option<S<String>>,
    flow: Option<S<String>>,
    goto: Option<S<String>>,
    outcome: Option<S<String>>,
    kind: Option<S<String>>,
    questions: Option<S<bool>>,
    prefill: Option<S<String>>,
    prefill_prompt: Option<LangMap<String>>,
    auto_intents: Option<S<bool>>,
}

macro_rules! present {
    ($s:ident; $($f:ident => $n:literal),* ; $($g:ident => $m:literal),* $(,)?) => {{
        let mut v: Vec<(&'static str, Option<usize>)> = Vec::new();
        $( if let Some(x) = &$s.$f { v.push(($n, Some(x.span().start))); } )*
        $( if $s.$g.is_some() { v.push(($m, None)); } )*
        v
    }};
}

impl RawStep {
    fn present(&self) -> Vec<(&'static str, Option<usize>)> {
        present!(self;
            audio => "audio", next => "next",
            input => "input", timeout => "timeout", retries => "retries", barge_in => "barge_in",
            expect => "expect", intent => "intent", save_as => "save_as", max_digits => "max_digits",
            no_input => "no_input", no_match => "no_match", when => "when", otherwise => "else", vars => "vars",
            department => "department", context => "context", if_closed => "if_closed", if_failed => "if_failed",
            personal => "personal", topic => "topic",
            number => "number", to => "to", subject => "subject", body => "body", op => "op", queue => "queue",
            slot => "slot", cpr => "cpr", date => "date", on_error => "on_error", on_taken => "on_taken",
            on_empty => "on_empty", on_unavailable => "on_unavailable", flow => "flow", goto => "goto",
            outcome => "outcome", kind => "kind", prefill => "prefill", auto_intents => "auto_intents",
            questions => "questions";
            text => "text", prompt => "prompt", reprompt => "reprompt", hints => "hints",
            prefill_prompt => "prefill_prompt",
        )
    }
}

/// Verbs and the fields each accepts.
pub const VERBS: &[(&str, &[&str])] = &[
    ("say", &["text", "audio", "next", "personal"]),
    (
        "gather",
        &[
            "prompt",
            "reprompt",
            "input",
            "hints",
            "timeout",
            "retries",
            "barge_in",
            "expect",
            "intent",
            "save_as",
            "next",
            "max_digits",
            "no_input",
            "no_match",
            "personal",
            "questions",
            "prefill",
            "prefill_prompt",
            "auto_intents",
        ],
    ),
    ("branch", &["when", "else"]),
    ("set", &["vars", "next"]),
    (
        "transfer",
        &["department", "context", "if_closed", "if_failed"],
    ),
    (
        "callback",
        &["department", "topic", "number", "next", "on_error"],
    ),
    (
        "mail",
        &["kind", "to", "subject", "body", "next", "on_error"],
    ),
    (
        "frontdesk",
        &[
            "op",
            "queue",
            "slot",
            "cpr",
            "date",
            "next",
            "on_taken",
            "on_empty",
            "on_unavailable",
            "on_error",
        ],
    ),
    ("goto", &["goto"]),
    ("call", &["flow", "next"]),
    ("return", &[]),
    ("hangup", &["text", "outcome", "personal"]),
];

/// Variables every call has.
pub const BUILTIN_VARS: &[&str] = &["caller", "lang", "intent", "municipality", "today", "now"];

/// A tenant: a called number served by a municipality's flow.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Called number as it appears in the SIP request URI / To header.
    pub number: String,
    /// Municipality id.
    pub municipality: String,
    /// Entry flow.
    pub entry: String,
}

/// Everything loaded from a deployment folder.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The folder.
    pub root: PathBuf,
    /// Municipalities by id.
    pub municipalities: BTreeMap<String, Arc<Municipality>>,
    /// Tenants.
    pub tenants: Vec<Tenant>,
}

/// The outcome of a load: a deployment when there were no errors, and every
/// diagnostic (errors and warnings).
#[derive(Debug)]
pub struct Loaded {
    /// Present when no error was found.
    pub deployment: Option<Deployment>,
    /// Findings, errors first.
    pub diagnostics: Vec<Diagnostic>,
}

struct Ctx {
    diags: Vec<Diagnostic>,
}

impl Ctx {
    fn err(&mut self, src: &Source, at: usize, msg: impl Into<String>, hint: Option<String>) {
        let d = src.diag(Severity::Error, at, msg, hint);
        if !self.diags.contains(&d) {
            self.diags.push(d);
        }
    }
    fn warn(&mut self, src: &Source, at: usize, msg: impl Into<String>, hint: Option<String>) {
        let d = src.diag(Severity::Warning, at, msg, hint);
        if !self.diags.contains(&d) {
            self.diags.push(d);
        }
    }
}

fn read(path: &Path, ctx: &mut Ctx) -> Option<Source> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(Source {
            path: path.to_path_buf(),
            text,
        }),
        Err(e) => {
            ctx.diags.push(Diagnostic {
                severity: Severity::Error,
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("cannot read file: {e}"),
                hint: None,
                source_line: None,
            });
            None
        }
    }
}

fn parse_toml<T: for<'de> Deserialize<'de>>(src: &Source, ctx: &mut Ctx) -> Option<T> {
    match toml::from_str::<T>(&src.text) {
        Ok(v) => Some(v),
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start);
            let msg = e.message().to_string();
            let hint = unknown_field_hint(&msg);
            ctx.err(src, at, msg.trim_end().to_string(), hint);
            None
        }
    }
}

/// "unknown field `nxt`, expected one of `do`, `next`" -> "did you mean `next`?".
fn unknown_field_hint(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (wrong, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    match closest(wrong, expected.iter().copied()) {
        Some(k) => Some(format!("did you mean `{k}`?")),
        None => Some(format!(
            "remove `{wrong}`; allowed keys: {}",
            expected.join(", ")
        )),
    }
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

fn lang_of(code: &str) -> Option<Lang> {
    code.parse().ok()
}

/// Loads and validates a deployment folder (see the module docs).
pub fn load(root: &Path) -> Loaded {
    let mut ctx = Ctx { diags: Vec::new() };
    let mut shared: Vec<(Source, RawFlow)> = Vec::new();
    for p in toml_files(&root.join("shared")) {
        if let Some(src) = read(&p, &mut ctx) {
            if let Some(raw) = parse_toml::<RawFlow>(&src, &mut ctx) {
                shared.push((src, raw));
            }
        }
    }
    let mut municipalities = BTreeMap::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join("municipality.toml").exists())
        .collect();
    dirs.sort();
    let mut broken = BTreeSet::new();
    for dir in dirs {
        match load_municipality(&dir, &shared, &mut ctx) {
            Some(m) => {
                municipalities.insert(m.id.clone(), Arc::new(m));
            }
            None => {
                broken.insert(
                    dir.file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                );
            }
        }
    }
    let mut tenants = Vec::new();
    let tpath = root.join("tenants.toml");
    if tpath.exists() {
        if let Some(src) = read(&tpath, &mut ctx) {
            if let Some(raw) = parse_toml::<RawTenants>(&src, &mut ctx) {
                let mut seen = BTreeSet::new();
                for t in raw.tenant {
                    let mid = t.municipality.get_ref().clone();
                    if broken.contains(&mid) {
                        // Its own errors are reported; no follow-on error here.
                        continue;
                    }
                    let Some(m) = municipalities.get(&mid) else {
                        let hint = closest(&mid, municipalities.keys().map(String::as_str))
                            .map(|k| format!("did you mean `{k}`?"));
                        ctx.err(
                            &src,
                            t.municipality.span().start,
                            format!("unknown municipality `{mid}`"),
                            hint.or(Some(
                                "a municipality is a folder with a municipality.toml".into(),
                            )),
                        );
                        continue;
                    };
                    let entry = t
                        .entry
                        .as_ref()
                        .map_or("main".to_string(), |e| e.get_ref().clone());
                    if m.flow_named(&entry).is_none() {
                        let at = t
                            .entry
                            .as_ref()
                            .map_or(t.municipality.span().start, |e| e.span().start);
                        ctx.err(
                            &src,
                            at,
                            format!("municipality `{mid}` has no flow `{entry}`"),
                            Some(format!(
                                "flows: {}",
                                m.flows
                                    .iter()
                                    .map(|f| f.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        );
                    }
                    let number = normalize_number(t.number.get_ref());
                    if !seen.insert(number.clone()) {
                        ctx.err(
                            &src,
                            t.number.span().start,
                            format!("number `{}` is listed twice", t.number.get_ref()),
                            Some("each called number routes to one municipality".into()),
                        );
                    }
                    tenants.push(Tenant {
                        number,
                        municipality: mid,
                        entry,
                    });
                }
            }
        }
    }
    ctx.diags.sort_by(|a, b| {
        (a.severity, &a.file, a.line, a.col).cmp(&(b.severity, &b.file, b.line, b.col))
    });
    let ok = !ctx.diags.iter().any(Diagnostic::is_error);
    Loaded {
        deployment: ok.then(|| Deployment {
            root: root.to_path_buf(),
            municipalities,
            tenants,
        }),
        diagnostics: ctx.diags,
    }
}

/// Called numbers compare on digits and a leading `+`: "+45 70 10 10 10" =
/// "+4570101010"; "70101010" also matches "+4570101010" (see `route`).
pub fn normalize_number(n: &str) -> String {
    let mut s: String = n
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    if let Some(rest) = s.strip_prefix("00") {
        s = format!("+{rest}");
    }
    s
}

fn load_municipality(
    dir: &Path,
    shared: &[(Source, RawFlow)],
    ctx: &mut Ctx,
) -> Option<Municipality> {
    let id = dir.file_name()?.to_string_lossy().to_string();
    let src = read(&dir.join("municipality.toml"), ctx)?;
    let raw: RawMunicipality = parse_toml(&src, ctx)?;
    let before = ctx.diags.iter().filter(|d| d.is_error()).count();

    let mut languages = Vec::new();
    for code in raw.languages.get_ref() {
        match lang_of(code) {
            Some(l) if !languages.contains(&l) => languages.push(l),
            Some(_) => {}
            None => ctx.err(
                &src,
                raw.languages.span().start,
                format!("unknown language `{code}`"),
                Some("known: da, en".into()),
            ),
        }
    }
    if languages.is_empty() {
        ctx.err(
            &src,
            raw.languages.span().start,
            "a municipality needs at least one language",
            Some("languages = [\"da\", \"en\"]".into()),
        );
    }

    let mut calendar = Calendar::default();
    for c in raw.closed_on.iter().flatten() {
        match OptionalClosure::parse(c.get_ref()) {
            Ok(o) => calendar.optional.push(o),
            Err(e) => ctx.err(&src, c.span().start, e.to_string(), None),
        }
    }
    let date = |s: &S<String>, ctx: &mut Ctx| -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(s.get_ref(), "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                ctx.err(
                    &src,
                    s.span().start,
                    format!("`{}` is not a date", s.get_ref()),
                    Some("write dates as YYYY-MM-DD".into()),
                );
                None
            }
        }
    };
    for c in &raw.closure {
        if let Some(from) = date(&c.from, ctx) {
            let to = c.to.as_ref().and_then(|t| date(t, ctx)).unwrap_or(from);
            if to < from {
                ctx.err(
                    &src,
                    c.from.span().start,
                    "closure ends before it starts",
                    Some("swap `from` and `to`".into()),
                );
            }
            calendar.closures.push((from, to));
        }
    }
    for s in &raw.special_day {
        if let Some(d) = date(&s.date, ctx) {
            match parse_intervals(s.hours.get_ref()) {
                Ok(iv) => calendar.special.push((d, iv)),
                Err(e) => ctx.err(
                    &src,
                    s.hours.span().start,
                    format!("bad opening hours: {e}"),
                    Some("write hours as \"08:00-12:00, 13:00-15:00\" or \"closed\"".into()),
                ),
            }
        }
    }

    let mut departments = BTreeMap::new();
    for (k, d) in &raw.department {
        let mut hours = OpeningHours {
            calendar: calendar.clone(),
            ..Default::default()
        };
        let mut hours_ok = true;
        for (day, spec) in &d.hours {
            let Some(wd) = weekday_key(day.get_ref()) else {
                hours_ok = false;
                ctx.err(
                    &src,
                    day.span().start,
                    format!("`{}` is not a weekday", day.get_ref()),
                    Some("use mon, tue, wed, thu, fri, sat, sun".into()),
                );
                continue;
            };
            match parse_intervals(spec.get_ref()) {
                Ok(iv) => hours.week[wd.num_days_from_monday() as usize] = iv,
                Err(e) => {
                    hours_ok = false;
                    ctx.err(
                        &src,
                        spec.span().start,
                        format!("bad opening hours: {e}"),
                        Some("write hours as \"08:00-12:00, 13:00-15:00\" or \"closed\"".into()),
                    );
                }
            }
        }
        if hours_ok && hours.never_open() {
            ctx.err(
                &src,
                k.span().start,
                format!("department `{}` is never open", k.get_ref()),
                Some("add hours, e.g. mon = \"08:00-15:00\"".into()),
            );
        }
        let name = lang_names(
            &d.name,
            k.span().start,
            &languages,
            &src,
            ctx,
            &format!("department `{}`", k.get_ref()),
        );
        let mut synonyms: BTreeMap<Lang, Vec<String>> = BTreeMap::new();
        for (code, words) in d.synonyms.iter().flatten() {
            match lang_of(code) {
                Some(l) => synonyms.entry(l).or_default().extend(words.iter().cloned()),
                None => ctx.err(
                    &src,
                    key_pos(&src, k.span().start, "synonyms"),
                    format!("unknown language `{code}`"),
                    Some("known: da, en".into()),
                ),
            }
        }
        departments.insert(
            k.get_ref().clone(),
            Department {
                id: k.get_ref().clone(),
                name,
                target: d.target.get_ref().clone(),
                mail: d.mail.as_ref().map(|m| m.get_ref().clone()),
                hours,
                synonyms,
            },
        );
    }
    let dept_hint = |name: &str| -> Option<String> {
        match closest(name, raw.department.keys().map(|k| k.get_ref().as_str())) {
            Some(k) => Some(format!("did you mean `{k}`?")),
            None => Some(format!(
                "departments in municipality.toml: {}",
                raw.department
                    .keys()
                    .map(|k| k.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    };
    if !departments.contains_key(raw.fallback.get_ref()) {
        ctx.err(
            &src,
            raw.fallback.span().start,
            format!("unknown department `{}`", raw.fallback.get_ref()),
            dept_hint(raw.fallback.get_ref()),
        );
    }
    let mut queues = BTreeMap::new();
    for (k, q) in &raw.queue {
        if !departments.contains_key(q.department.get_ref()) {
            ctx.err(
                &src,
                q.department.span().start,
                format!("unknown department `{}`", q.department.get_ref()),
                dept_hint(q.department.get_ref()),
            );
        }
        let name = lang_names(
            &q.name,
            k.span().start,
            &languages,
            &src,
            ctx,
            &format!("queue `{}`", k.get_ref()),
        );
        queues.insert(
            k.get_ref().clone(),
            Queue {
                id: k.get_ref().clone(),
                name,
                department: q.department.get_ref().clone(),
                slot_minutes: q.slot_minutes.unwrap_or(15),
            },
        );
    }

    // Announcement.
    let mut announcement = None;
    let apath = dir.join("announcement.toml");
    if apath.exists() {
        if let Some(asrc) = read(&apath, ctx) {
            if let Some(a) = parse_toml::<RawAnnouncement>(&asrc, ctx) {
                let (no_flows, no_vars) = (BTreeMap::new(), BTreeSet::new());
                let mut v = Validator::new(
                    &asrc,
                    &languages,
                    &departments,
                    &queues,
                    &no_flows,
                    &no_vars,
                    ctx,
                );
                let text = v.text(&a.text, "announcement", 0, "text");
                let until = a.until.as_ref().and_then(|u| {
                    match DateTime::parse_from_rfc3339(u.get_ref()) {
                        Ok(t) => Some(t.with_timezone(&Utc)),
                        Err(_) => {
                            ctx.err(
                                &asrc,
                                u.span().start,
                                format!("`{}` is not a date and time", u.get_ref()),
                                Some("write RFC 3339, e.g. 2026-12-01T12:00:00+01:00".into()),
                            );
                            None
                        }
                    }
                });
                announcement = Some(Announcement { text, until });
            }
        }
    }

    // Flows: own files, then shared ones not overridden.
    let mut raws: Vec<(String, Source, RawFlow)> = Vec::new();
    for p in toml_files(dir) {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if stem == "municipality" || stem == "announcement" {
            continue;
        }
        if let Some(fsrc) = read(&p, ctx) {
            if let Some(rf) = parse_toml::<RawFlow>(&fsrc, ctx) {
                raws.push((stem, fsrc, rf));
            }
        }
    }
    for (s, rf) in shared {
        let stem = s
            .path
            .file_stem()
            .map(|x| x.to_string_lossy().to_string())
            .unwrap_or_default();
        if !raws.iter().any(|(n, _, _)| *n == stem) {
            // Re-parse so each municipality owns its copy; validation depends on its departments.
            let Ok(copy) = toml::from_str::<RawFlow>(&s.text) else {
                continue;
            };
            let _ = rf;
            raws.push((stem, s.clone(), copy));
        }
    }
    // A flow's id is its place in name order.
    raws.sort_by(|a, b| a.0.cmp(&b.0));
    let flow_ids: BTreeMap<String, FlowId> = raws
        .iter()
        .enumerate()
        .map(|(i, (n, _, _))| (n.clone(), FlowId(i as u32)))
        .collect();
    let mut vars: BTreeSet<String> = BUILTIN_VARS.iter().map(|s| s.to_string()).collect();
    for (_, _, rf) in &raws {
        collect_vars(rf, &mut vars);
    }
    let mut flows = Vec::with_capacity(raws.len());
    for (i, (name, fsrc, rf)) in raws.iter().enumerate() {
        let mut v = Validator::new(
            fsrc,
            &languages,
            &departments,
            &queues,
            &flow_ids,
            &vars,
            ctx,
        );
        let flow = v.flow(FlowId(i as u32), name, rf);
        flows.push(Arc::new(flow));
    }
    // Knowledge: answers to general questions.
    let (knowledge, kdiags) =
        crate::knowledge::load_dir(&dir.join("knowledge"), &languages, &departments);
    for d in kdiags {
        if !ctx.diags.contains(&d) {
            ctx.diags.push(d);
        }
    }
    let after = ctx.diags.iter().filter(|d| d.is_error()).count();
    if after > before {
        return None;
    }
    let mut m = Municipality {
        knowledge: Arc::new(knowledge.unwrap_or_default()),
        id,
        name: raw.name.get_ref().clone(),
        languages,
        fallback: raw.fallback.get_ref().clone(),
        departments,
        queues,
        flows,
        calendar,
        announcement,
        encoder: None,
    };
    crate::intents::add_auto_intents(&mut m);
    Some(m)
}

fn lang_names(
    m: &LangMap<String>,
    at: usize,
    langs: &[Lang],
    src: &Source,
    ctx: &mut Ctx,
    what: &str,
) -> BTreeMap<Lang, String> {
    let at = key_pos(src, at, "name");
    let mut out = BTreeMap::new();
    for (k, v) in m {
        match lang_of(k) {
            Some(l) => {
                out.insert(l, v.clone());
            }
            None => ctx.err(
                src,
                at,
                format!("unknown language `{k}`"),
                Some("known: da, en".into()),
            ),
        }
    }
    for l in langs {
        if !out.contains_key(l) {
            ctx.err(
                src,
                at,
                format!("{what} has no name in `{l}`"),
                Some(format!("add {l} = \"...\"")),
            );
        }
    }
    out
}

fn collect_vars(rf: &RawFlow, vars: &mut BTreeSet<String>) {
    for s in rf.step.values() {
        let s = s.get_ref();
        if let Some(v) = &s.save_as {
            vars.insert(v.get_ref().clone());
        }
        if let Some(vs) = &s.vars {
            vars.extend(vs.get_ref().keys().cloned());
        }
        match s.op.as_ref().map(|o| o.get_ref().as_str()) {
            Some("slots") => {
                vars.insert("slot_count".into());
                for i in 1..=crate::interp::MAX_SLOTS {
                    vars.insert(format!("slot{i}"));
                }
            }
            Some("book") => {
                vars.insert("booking_ref".into());
                vars.insert("booked_at".into());
            }
            Some("cancel") => {
                vars.insert("cancelled_at".into());
            }
            _ => {}
        }
        if s.r#do.get_ref() == "callback" {
            vars.insert("callback_window".into());
        }
    }
}

struct Validator<'a> {
    src: &'a Source,
    langs: &'a [Lang],
    departments: &'a BTreeMap<String, Department>,
    queues: &'a BTreeMap<String, Queue>,
    flows: &'a BTreeMap<String, FlowId>,
    vars: &'a BTreeSet<String>,
    ctx: &'a mut Ctx,
    /// The flow being validated and its steps' places (file order).
    flow_id: FlowId,
    steps: BTreeMap<String, u32>,
    /// A flow file on its own (`ivr graph`): departments and queues of the
    /// municipality are unknown, so not checked.
    lenient: bool,
}

impl<'a> Validator<'a> {
    fn new(
        src: &'a Source,
        langs: &'a [Lang],
        departments: &'a BTreeMap<String, Department>,
        queues: &'a BTreeMap<String, Queue>,
        flows: &'a BTreeMap<String, FlowId>,
        vars: &'a BTreeSet<String>,
        ctx: &'a mut Ctx,
    ) -> Self {
        Self {
            src,
            langs,
            departments,
            queues,
            flows,
            vars,
            ctx,
            flow_id: FlowId(0),
            steps: BTreeMap::new(),
            lenient: false,
        }
    }

    fn err(&mut self, at: usize, msg: impl Into<String>, hint: Option<String>) {
        self.ctx.err(self.src, at, msg, hint);
    }

    fn template(&mut self, s: &str, at: usize) -> Template {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                self.err(
                    at,
                    format!("`{{` without `}}` in \"{s}\""),
                    Some("close the variable: {name}".into()),
                );
                rest = "";
                break;
            };
            let inner = rest[open + 1..open + close].trim();
            rest = &rest[open + close + 1..];
            if let Some((f, arg)) = inner.split_once(':') {
                let func = match f.trim() {
                    "next_open" => Func::NextOpen,
                    "window" => Func::Window,
                    "department" => Func::Department,
                    "queue" => Func::Queue,
                    other => {
                        self.err(
                            at,
                            format!("unknown template function `{other}`"),
                            Some("known: next_open, window, department, queue".into()),
                        );
                        continue;
                    }
                };
                let arg = arg.trim().to_string();
                if func == Func::Queue {
                    if !self.lenient && !self.queues.contains_key(&arg) {
                        self.err(
                            at,
                            format!("unknown queue `{arg}`"),
                            Some(format!(
                                "queues: {}",
                                self.queues.keys().cloned().collect::<Vec<_>>().join(", ")
                            )),
                        );
                    }
                } else {
                    self.department(&arg, at);
                }
                parts.push(Part::Func { func, arg });
                continue;
            }
            let (name, format) = match inner.split_once('|') {
                Some((n, f)) => {
                    let fmt = Format::parse(f.trim());
                    if fmt.is_none() {
                        self.err(
                            at,
                            format!("unknown format `{}`", f.trim()),
                            Some("known: date, time, datetime, number, digits, phone, cpr".into()),
                        );
                    }
                    (n.trim().to_string(), fmt)
                }
                None => (inner.to_string(), None),
            };
            if !self.vars.is_empty() && !self.vars.contains(&name) {
                let hint = closest(&name, self.vars.iter().map(String::as_str))
                    .map(|k| format!("did you mean `{k}`?"));
                self.err(
                    at,
                    format!("unknown variable `{name}`"),
                    hint.or(Some("set it with `save_as` or a `set` step first".into())),
                );
            }
            parts.push(Part::Var {
                name: VarName(name),
                format,
            });
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Template {
            source: s.to_string(),
            parts,
            personal: false,
        }
    }

    /// The step's `personal` flag: `true` makes its prompts personal speech.
    /// `personal = false` cannot make a prompt with personal variables
    /// cacheable, so it is refused: it would mislead the reader.
    fn personal(&mut self, s: &RawStep) -> bool {
        match &s.personal {
            Some(p) if !*p.get_ref() => {
                self.err(
                    p.span().start,
                    "`personal = false` cannot make a prompt cacheable",
                    Some(
                        "prompts with personal variables are personal anyway; remove the key, or write personal = true"
                            .into(),
                    ),
                );
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    fn text(&mut self, m: &LangMap<String>, what: &str, from: usize, field: &str) -> Text {
        let at = key_pos(self.src, from, field);
        let mut out = BTreeMap::new();
        for (k, v) in m {
            match lang_of(k) {
                Some(l) => {
                    let t = self.template(v, at);
                    out.insert(l, t);
                }
                None => self.err(
                    at,
                    format!("unknown language `{k}`"),
                    Some("known: da, en".into()),
                ),
            }
        }
        let langs = self.langs;
        for &l in langs {
            if !out.contains_key(&l) {
                self.err(at, format!("{what} is missing the `{l}` prompt"), Some(format!("every prompt needs all languages of the municipality; add {field}.{l} = \"...\"")));
            }
        }
        Text(out)
    }

    fn department(&mut self, name: &str, at: usize) {
        if !self.lenient && !self.departments.contains_key(name) {
            let hint = closest(name, self.departments.keys().map(String::as_str))
                .map(|k| format!("did you mean `{k}`?"));
            self.err(
                at,
                format!("unknown department `{name}`"),
                hint.or(Some(format!(
                    "departments in municipality.toml: {}",
                    self.departments
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            );
        }
    }

    /// Resolves a step name of the flow being validated. An unknown one is
    /// an error (and the flow is not used; the id returned is a stand-in).
    fn target(&mut self, t: &S<String>) -> StepId {
        let name = t.get_ref();
        let step = match self.steps.get(name) {
            Some(i) => *i,
            None => {
                let hint = closest(name, self.steps.keys().map(String::as_str))
                    .map(|k| format!("did you mean `{k}`?"));
                self.err(
                    t.span().start,
                    format!("goes to unknown step `{name}`"),
                    hint.or(Some(
                        "to run another flow use do = \"call\" with flow = \"...\"".into(),
                    )),
                );
                0
            }
        };
        StepId {
            flow: self.flow_id,
            step,
        }
    }

    /// A required target: missing is an error (and a stand-in id is used).
    fn required_target(
        &mut self,
        t: &Option<S<String>>,
        field: &str,
        verb: &str,
        at: usize,
    ) -> StepId {
        match self.required(t, field, verb, at) {
            Some(t) => self.target(t),
            None => StepId {
                flow: self.flow_id,
                step: 0,
            },
        }
    }

    fn opt_target(&mut self, t: &Option<S<String>>) -> Option<StepId> {
        t.as_ref().map(|t| self.target(t))
    }

    /// A variable a step reads: it must be set somewhere in the
    /// municipality's flows (unless the vars are unknown: `ivr graph`).
    fn var(&mut self, name: &str, at: usize) -> VarName {
        if !self.vars.is_empty() && !self.vars.contains(name) {
            let hint = closest(name, self.vars.iter().map(String::as_str))
                .map(|k| format!("did you mean `{k}`?"));
            self.err(
                at,
                format!("unknown variable `{name}`"),
                hint.or(Some("set it with `save_as` or a `set` step first".into())),
            );
        }
        VarName(name.to_string())
    }

    /// `"{name}"` (a variable) or a fixed value.
    fn var_or_fixed(&mut self, v: &S<String>) -> Ref<String> {
        let raw = v.get_ref().trim();
        match raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            Some(name) => Ref::Var(self.var(name.trim(), v.span().start)),
            None => Ref::Fixed(raw.to_string()),
        }
    }

    fn required<'b, T>(
        &mut self,
        v: &'b Option<S<T>>,
        field: &str,
        verb: &str,
        at: usize,
    ) -> Option<&'b S<T>> {
        if v.is_none() {
            self.err(
                at,
                format!("`{verb}` step needs `{field}`"),
                Some(format!("add {field} = ...")),
            );
        }
        v.as_ref()
    }

    fn flow(&mut self, id: FlowId, name: &str, rf: &RawFlow) -> Flow {
        // Steps in file order; a step's place there is its id.
        let mut order: Vec<(&S<String>, &S<RawStep>)> = rf.step.iter().collect();
        order.sort_by_key(|(k, _)| k.span().start);
        self.flow_id = id;
        self.steps = order
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.get_ref().clone(), i as u32))
            .collect();
        let start = self.target(&rf.start);
        let mut steps = Vec::with_capacity(order.len());
        for (k, s) in &order {
            let line = self.src.line_col(k.span().start).0;
            // A step with errors is kept as a stand-in so ids stay in place;
            // the flow is not used (the error is reported).
            let kind = self.step(k, s.get_ref()).unwrap_or(StepKind::Return);
            steps.push(Step {
                name: k.get_ref().clone(),
                line,
                kind,
            });
        }
        let understanding = self.understanding(rf.understanding.as_ref());
        let flow = Flow {
            name: name.to_string(),
            id,
            file: self.src.path.clone(),
            start,
            steps,
            understanding,
            questions: None,
        };
        let mut flow = flow;
        flow.questions = self.questions(rf);
        // Unreachable steps (warning).
        let mut seen = BTreeSet::new();
        let mut todo = vec![flow.start];
        if let Some(q) = &flow.questions {
            todo.extend([q.resume, q.decline, q.unresolved].into_iter().flatten());
        }
        while let Some(s) = todo.pop() {
            if !seen.insert(s) {
                continue;
            }
            if let Some(st) = flow.step(s) {
                todo.extend(st.kind.edges().into_iter().map(|(_, t)| t));
            }
        }
        for (i, (k, _)) in order.iter().enumerate() {
            let sid = StepId {
                flow: id,
                step: i as u32,
            };
            if !seen.contains(&sid) {
                self.ctx.warn(
                    self.src,
                    k.span().start,
                    format!("step `{}` is unreachable", k.get_ref()),
                    Some(format!(
                        "no step goes to it from `{}`; remove it or add a goto",
                        flow.name_of(flow.start)
                    )),
                );
            }
        }
        // Loops that never wait for the caller.
        for (i, (k, _)) in order.iter().enumerate() {
            let sid = StepId {
                flow: id,
                step: i as u32,
            };
            if let Some(cycle) = busy_cycle(&flow, sid) {
                self.err(
                    k.span().start,
                    format!(
                        "steps loop without asking the caller: {}",
                        cycle
                            .iter()
                            .map(|s| flow.name_of(*s))
                            .collect::<Vec<_>>()
                            .join(" -> ")
                    ),
                    Some("put a gather in the loop or end it with hangup/transfer".into()),
                );
                break;
            }
        }
        // Not understood twice -> DTMF or a human.
        for (g, (_, raw)) in flow.steps.iter().zip(&order) {
            if let StepKind::Gather(gt) = &g.kind {
                if let Some(nm) = gt.no_match {
                    if !has_keys(gt) && !offers_dtmf_or_human(&flow, nm) {
                        let at = raw
                            .get_ref()
                            .no_match
                            .as_ref()
                            .map_or(0, |x| x.span().start);
                        self.err(at, format!("`no_match` of `{}` goes to `{}`, which offers neither keys nor a human", g.name, flow.name_of(nm)), Some("a caller not understood twice must reach a gather with DTMF keys or a transfer".into()));
                    }
                }
            }
        }
        flow
    }

    /// The flow's `[understanding]` table, defaults for what it leaves out.
    fn understanding(&mut self, u: Option<&RawUnderstanding>) -> Understanding {
        let mut out = Understanding::default();
        let Some(u) = u else {
            return out;
        };
        for (v, field, slot) in [
            (&u.accept, "accept", &mut out.accept),
            (&u.margin, "margin", &mut out.margin),
        ] {
            if let Some(x) = v {
                if (0.0..=1.0).contains(x.get_ref()) {
                    *slot = *x.get_ref();
                } else {
                    self.err(
                        x.span().start,
                        format!("[understanding] {field} = {} is outside 0..1", x.get_ref()),
                        Some(format!(
                            "the defaults are accept = {}, margin = {}",
                            crate::intents::DEFAULT_ACCEPT,
                            crate::intents::DEFAULT_MARGIN
                        )),
                    );
                }
            }
        }
        if let Some(c) = u.clarify {
            out.clarify = c;
        }
        if let Some(a) = u.auto_intents {
            out.auto_intents = a;
        }
        out
    }

    /// The flow's `[questions]` table (see `docs/knowledge.md`).
    fn questions(&mut self, rf: &RawFlow) -> Option<Questions> {
        let q = rf.questions.as_ref()?.get_ref();
        if q.answer == Some(false) {
            return None;
        }
        Some(Questions {
            resume: self.opt_target(&q.resume),
            decline: self.opt_target(&q.decline),
            unresolved: self.opt_target(&q.unresolved),
        })
    }

    fn step(&mut self, name: &S<String>, s: &RawStep) -> Option<StepKind> {
        let verb = s.r#do.get_ref().as_str();
        let at = name.span().start;
        let Some((_, allowed)) = VERBS.iter().find(|(v, _)| *v == verb) else {
            let hint = closest(verb, VERBS.iter().map(|(v, _)| *v))
                .map(|k| format!("did you mean `{k}`?"));
            self.err(
                s.r#do.span().start,
                format!("unknown verb `{verb}`"),
                hint.or(Some(format!(
                    "verbs: {}",
                    VERBS.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
                ))),
            );
            return None;
        };
        for (field, pos) in s.present() {
            let pos = pos.unwrap_or_else(|| key_pos(self.src, at, field));
            if !allowed.contains(&field) {
                self.err(
                    pos,
                    format!("`{field}` is not a field of `{verb}`"),
                    Some(format!("`{verb}` takes: {}", allowed.join(", "))),
                );
            }
        }
        let step_name = name.get_ref().clone();
        Some(match verb {
            "say" => {
                if s.text.is_none() && s.audio.is_none() {
                    self.err(
                        at,
                        "`say` step needs `text` or `audio`",
                        Some("add text = { da = \"...\", en = \"...\" }".into()),
                    );
                }
                let personal = self.personal(s);
                let text = s
                    .text
                    .as_ref()
                    .map(|t| self.text(t, &format!("step `{step_name}`"), at, "text"))
                    .map(|t| t.marked_personal(personal));
                let next = self.required_target(&s.next, "next", verb, at);
                StepKind::Say {
                    text,
                    audio: s.audio.as_ref().map(|a| a.get_ref().clone()),
                    next,
                }
            }
            "gather" => StepKind::Gather(Box::new(self.gather(&step_name, s, at)?)),
            "branch" => {
                let mut when = Vec::new();
                for c in s.when.iter().flat_map(|w| w.get_ref().iter()) {
                    when.push(self.cond(c));
                }
                let otherwise = self.required_target(&s.otherwise, "else", verb, at);
                StepKind::Branch { when, otherwise }
            }
            "set" => {
                let mut vars = Vec::new();
                if let Some(vs) = self.required(&s.vars, "vars", verb, at) {
                    for (k, v) in vs.get_ref() {
                        let t = self.template(v.get_ref(), v.span().start);
                        vars.push((VarName(k.clone()), t));
                    }
                }
                let next = self.required_target(&s.next, "next", verb, at);
                StepKind::Set { vars, next }
            }
            "transfer" => {
                let department = self
                    .required(&s.department, "department", verb, at)
                    .map(|d| {
                        self.department(d.get_ref(), d.span().start);
                        d.get_ref().clone()
                    })?;
                let mut context = Vec::new();
                for (k, v) in s.context.iter().flat_map(|c| c.get_ref().iter()) {
                    let t = self.template(v.get_ref(), v.span().start);
                    context.push((k.clone(), t));
                }
                StepKind::Transfer {
                    department,
                    context,
                    if_closed: self.opt_target(&s.if_closed),
                    if_failed: self.opt_target(&s.if_failed),
                }
            }
            "callback" => {
                let department = self
                    .required(&s.department, "department", verb, at)
                    .map(|d| {
                        self.department(d.get_ref(), d.span().start);
                        d.get_ref().clone()
                    })?;
                let topic = match &s.topic {
                    Some(t) => self.template(t.get_ref(), t.span().start),
                    None => self.template("{intent}", at),
                };
                let number_var = match &s.number {
                    Some(n) => {
                        let name = n
                            .get_ref()
                            .trim()
                            .trim_matches(['{', '}'])
                            .trim()
                            .to_string();
                        self.var(&name, n.span().start)
                    }
                    None => VarName("caller".into()),
                };
                let next = self.required_target(&s.next, "next", verb, at);
                StepKind::Callback {
                    department,
                    topic,
                    number_var,
                    next,
                    on_error: self.opt_target(&s.on_error),
                }
            }
            "mail" => {
                let mut to = Vec::new();
                if let Some(t) = self.required(&s.to, "to", verb, at) {
                    let pos = t.span().start;
                    for r in t.get_ref() {
                        let r = r.trim();
                        if let Some(name) = r.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                            to.push(Ref::Var(self.var(name.trim(), pos)));
                        } else if r.contains('@') {
                            to.push(Ref::Fixed(r.to_string()));
                        } else {
                            // A department: its mailbox, resolved now.
                            self.department(r, pos);
                            match self.departments.get(r).map(|d| d.mail.clone()) {
                                Some(Some(m)) => to.push(Ref::Fixed(m)),
                                Some(None) => self.err(
                                    pos,
                                    format!("department `{r}` has no `mail` address"),
                                    Some(
                                        "add mail = \"...\" to the department in municipality.toml"
                                            .into(),
                                    ),
                                ),
                                None => {}
                            }
                        }
                    }
                }
                let subject = s
                    .subject
                    .as_ref()
                    .map(|t| self.template(t.get_ref(), t.span().start));
                let body = s
                    .body
                    .as_ref()
                    .map(|t| self.template(t.get_ref(), t.span().start));
                if subject.is_none() || body.is_none() {
                    self.err(
                        at,
                        "`mail` step needs `subject` and `body`",
                        Some("add subject = \"...\" and body = \"...\"".into()),
                    );
                }
                let next = self.required_target(&s.next, "next", verb, at);
                StepKind::Mail {
                    kind: s.kind.as_ref().map(|k| k.get_ref().clone()),
                    to,
                    subject: subject?,
                    body: body?,
                    next,
                    on_error: self.opt_target(&s.on_error),
                }
            }
            "frontdesk" => {
                let op = match self
                    .required(&s.op, "op", verb, at)
                    .map(|o| (o.get_ref().as_str(), o.span().start))
                {
                    Some(("slots", _)) => FrontdeskOp::Slots,
                    Some(("book", _)) => FrontdeskOp::Book,
                    Some(("cancel", _)) => FrontdeskOp::Cancel,
                    Some((other, p)) => {
                        self.err(
                            p,
                            format!("unknown frontdesk op `{other}`"),
                            Some("op = \"slots\", \"book\" or \"cancel\"".into()),
                        );
                        return None;
                    }
                    None => return None,
                };
                let raw_queue = self.required(&s.queue, "queue", verb, at)?;
                let queue = self.var_or_fixed(raw_queue);
                if let Ref::Fixed(q) = &queue {
                    if !self.lenient && !self.queues.contains_key(q) {
                        let hint = closest(q, self.queues.keys().map(String::as_str))
                            .map(|k| format!("did you mean `{k}`?"));
                        self.err(
                            raw_queue.span().start,
                            format!("unknown queue `{q}`"),
                            hint.or(Some("add [queue.NAME] to municipality.toml".into())),
                        );
                    }
                }
                if op == FrontdeskOp::Book && s.slot.is_none() {
                    self.err(
                        at,
                        "`frontdesk` op `book` needs `slot` (the variable with the chosen slot)",
                        Some("slot = \"chosen\"".into()),
                    );
                }
                let next = self.required_target(&s.next, "next", verb, at);
                let mut var_field = |v: &Option<S<String>>| {
                    v.as_ref().map(|x| self.var(x.get_ref(), x.span().start))
                };
                let (slot_var, cpr_var, date_var) =
                    (var_field(&s.slot), var_field(&s.cpr), var_field(&s.date));
                StepKind::Frontdesk {
                    op,
                    queue,
                    slot_var,
                    cpr_var,
                    date_var,
                    next,
                    on_taken: self.opt_target(&s.on_taken),
                    on_empty: self.opt_target(&s.on_empty),
                    on_unavailable: self.opt_target(&s.on_unavailable),
                    on_error: self.opt_target(&s.on_error),
                }
            }
            "goto" => StepKind::Goto(
                self.required(&s.goto, "goto", verb, at)
                    .map(|n| self.target(n))?,
            ),
            "call" => {
                let flow = self.required(&s.flow, "flow", verb, at)?;
                let id = match self.flows.get(flow.get_ref()) {
                    Some(id) => *id,
                    None => {
                        let hint = closest(flow.get_ref(), self.flows.keys().map(String::as_str))
                            .map(|k| format!("did you mean `{k}`?"));
                        self.err(flow.span().start, format!("unknown flow `{}`", flow.get_ref()), hint.or(Some("flows are the .toml files of the municipality folder and of flows/shared/".into())));
                        FlowId(0)
                    }
                };
                let next = self
                    .required(&s.next, "next", verb, at)
                    .map(|n| self.target(n))?;
                StepKind::Call {
                    flow: FlowRef {
                        id,
                        name: flow.get_ref().clone(),
                    },
                    next,
                }
            }
            "return" => StepKind::Return,
            "hangup" => {
                let personal = self.personal(s);
                let text = s
                    .text
                    .as_ref()
                    .map(|t| self.text(t, &format!("step `{step_name}`"), at, "text"))
                    .map(|t| t.marked_personal(personal));
                let outcome = match s.outcome.as_ref() {
                    None => Outcome::Resolved,
                    Some(o) => match Outcome::parse(o.get_ref()) {
                        Some(x) => x,
                        None => {
                            self.err(o.span().start, format!("unknown outcome `{}`", o.get_ref()), Some("resolved, callback_ordered, mail_sent, booked, cancelled, abandoned, failed".into()));
                            Outcome::Resolved
                        }
                    },
                };
                StepKind::Hangup { text, outcome }
            }
            _ => return None,
        })
    }

    fn gather(&mut self, step: &str, s: &RawStep, at: usize) -> Option<Gather> {
        let Some(raw_prompt) = &s.prompt else {
            self.err(
                at,
                "`gather` step needs `prompt`",
                Some("add prompt.da = \"...\" and prompt.en = \"...\"".into()),
            );
            return None;
        };
        let personal = self.personal(s);
        let prompt = self
            .text(raw_prompt, &format!("step `{step}`"), at, "prompt")
            .marked_personal(personal);
        let reprompt = s
            .reprompt
            .as_ref()
            .map(|p| self.text(p, &format!("step `{step}` reprompt"), at, "reprompt"))
            .map(|t| t.marked_personal(personal));
        let (mut speech, mut dtmf) = (true, true);
        if let Some(i) = &s.input {
            speech = false;
            dtmf = false;
            for x in i.get_ref() {
                match x.as_str() {
                    "speech" => speech = true,
                    "dtmf" => dtmf = true,
                    other => self.err(
                        i.span().start,
                        format!("unknown input `{other}`"),
                        Some("input = [\"speech\", \"dtmf\"]".into()),
                    ),
                }
            }
        }
        let expect = match &s.expect {
            None => Expect::Intent,
            Some(e) => match Expect::parse(e.get_ref()) {
                Some(x) => x,
                None => {
                    self.err(
                        e.span().start,
                        format!("unknown expect `{}`", e.get_ref()),
                        Some("intent, yesno, number, date, time, cpr, phone, digits, text".into()),
                    );
                    Expect::Intent
                }
            },
        };
        let retries = match &s.retries {
            Some(r) if *r.get_ref() > 1 => {
                self.err(
                    r.span().start,
                    format!(
                        "retries = {} lets a caller go unheard more than twice",
                        r.get_ref()
                    ),
                    Some(
                        "use retries = 0 or 1; after that `no_match` must offer keys or a human"
                            .into(),
                    ),
                );
                1
            }
            Some(r) => *r.get_ref(),
            None => 1,
        };
        let mut intents = Vec::new();
        let mut keys = BTreeSet::new();
        for ri in s.intent.iter().flat_map(|v| v.get_ref().iter()) {
            let r = ri.get_ref();
            let mut matcher: BTreeMap<Lang, IntentMatcher> = BTreeMap::new();
            let terms = crate::lexical::Terms::default();
            let mut keywords: BTreeMap<Lang, Vec<String>> = BTreeMap::new();
            for (field, map) in [("examples", &r.examples), ("keywords", &r.keywords)] {
                if let Some(m) = map {
                    for (k, words) in m {
                        let Some(l) = lang_of(k) else {
                            self.err(
                                r.name.span().start,
                                format!("unknown language `{k}`"),
                                Some("known: da, en".into()),
                            );
                            continue;
                        };
                        if field == "keywords" {
                            keywords
                                .entry(l)
                                .or_default()
                                .extend(words.iter().map(|w| w.trim().to_string()));
                        }
                        let e = matcher.entry(l).or_default();
                        if field == "examples" {
                            e.add(l, words, &[], &terms);
                        } else {
                            e.add(l, &[], words, &terms);
                        }
                    }
                }
            }
            let clarify = r.clarify.as_ref().map(|c| {
                self.text(
                    c,
                    &format!("intent `{}` clarify", r.name.get_ref()),
                    r.name.span().start,
                    "clarify",
                )
            });
            let builtin =
                expect == Expect::YesNo && matches!(r.name.get_ref().as_str(), "yes" | "no");
            if expect == Expect::YesNo && !builtin {
                self.err(
                    r.name.span().start,
                    format!(
                        "a yesno gather has intents `yes` and `no`, not `{}`",
                        r.name.get_ref()
                    ),
                    None,
                );
            }
            if speech && !builtin {
                let langs = self.langs;
                for &l in langs {
                    if !matcher.contains_key(&l) {
                        self.err(
                            r.name.span().start,
                            format!(
                                "intent `{}` has no examples or keywords in `{l}`",
                                r.name.get_ref()
                            ),
                            Some(format!("add keywords.{l} = [\"...\"]")),
                        );
                    }
                }
            }
            if let Some(d) = &r.dtmf {
                if d.get_ref().is_empty()
                    || !d
                        .get_ref()
                        .chars()
                        .all(|c| ivr_core::Dtmf::from_char(c).is_ok())
                {
                    self.err(
                        d.span().start,
                        format!("`{}` is not a key sequence", d.get_ref()),
                        Some("use keys 0-9, * and #".into()),
                    );
                }
                if !keys.insert(d.get_ref().clone()) {
                    self.err(
                        d.span().start,
                        format!("key `{}` is used by two intents", d.get_ref()),
                        None,
                    );
                }
            } else if dtmf && !speech {
                self.err(
                    r.name.span().start,
                    format!(
                        "intent `{}` has no `dtmf` key in a keys-only gather",
                        r.name.get_ref()
                    ),
                    Some("add dtmf = \"1\"".into()),
                );
            }
            let goto = self.target(&r.goto);
            intents.push(Intent {
                name: r.name.get_ref().clone(),
                matcher,
                keywords,
                dtmf: r.dtmf.as_ref().map(|d| d.get_ref().clone()),
                goto,
                clarify,
                origin: IntentOrigin::Flow,
                vectors: Default::default(),
            });
        }
        let is_choice = matches!(expect, Expect::Intent | Expect::YesNo);
        if is_choice && intents.is_empty() {
            self.err(
                at,
                format!("gather `{step}` expects an intent but has none"),
                Some("add [[step.NAME.intent]] tables, or expect = \"number\"/\"date\"/...".into()),
            );
        }
        if !is_choice && s.next.is_none() {
            self.err(
                at,
                format!("gather `{step}` needs `next` for the value it collects"),
                Some("add next = \"...\"".into()),
            );
        }
        if !speech && !dtmf {
            self.err(
                at,
                format!("gather `{step}` listens to nothing"),
                Some("input = [\"speech\", \"dtmf\"]".into()),
            );
        }
        let mut hints = BTreeMap::new();
        if let Some(h) = &s.hints {
            for (k, v) in h {
                match lang_of(k) {
                    Some(l) => {
                        hints.insert(l, v.clone());
                    }
                    None => self.err(
                        key_pos(self.src, at, "hints"),
                        format!("unknown language `{k}`"),
                        Some("known: da, en".into()),
                    ),
                }
            }
        }
        if let Some(t) = &s.timeout {
            if *t.get_ref() == 0 || *t.get_ref() > 60 {
                self.err(
                    t.span().start,
                    format!("timeout = {} s is outside 1-60", t.get_ref()),
                    Some("callers get 5-8 seconds in most flows".into()),
                );
            }
        }
        let max_digits = s
            .max_digits
            .as_ref()
            .map(|m| *m.get_ref())
            .unwrap_or(match expect {
                Expect::Cpr => 10,
                Expect::Phone => 8,
                Expect::Date => 8,
                Expect::Time => 4,
                Expect::Intent | Expect::YesNo => {
                    keys.iter().map(String::len).max().unwrap_or(1) as u32
                }
                _ => 12,
            });
        let prefill = match &s.prefill {
            None => Prefill::default_for(expect),
            Some(p) => match Prefill::parse(p.get_ref()) {
                Some(x) => x,
                None => {
                    self.err(
                        p.span().start,
                        format!("unknown prefill `{}`", p.get_ref()),
                        Some("confirm, use or off".into()),
                    );
                    Prefill::Off
                }
            },
        };
        let prefill_prompt = s.prefill_prompt.as_ref().map(|p| {
            self.text(
                p,
                &format!("step `{step}` prefill_prompt"),
                at,
                "prefill_prompt",
            )
            .marked_personal(personal)
        });
        if let Some(p) = &s.prefill {
            if prefill != Prefill::Off && !speech {
                self.err(
                    p.span().start,
                    format!(
                        "gather `{step}` listens to keys only: nothing said earlier can answer it"
                    ),
                    Some("remove `prefill`, or add \"speech\" to `input`".into()),
                );
            }
            let no_value = matches!(expect, Expect::Intent | Expect::YesNo) || s.save_as.is_none();
            if prefill == Prefill::Confirm && no_value && prefill_prompt.is_none() {
                self.err(
                    p.span().start,
                    format!("gather `{step}` confirms an earlier answer but has no `prefill_prompt` to say what it heard"),
                    Some("add prefill_prompt.da = \"Du vil ..., er det rigtigt?\" (and .en), or use prefill = \"use\"".into()),
                );
            }
        }
        if prefill_prompt.is_some() && prefill != Prefill::Confirm {
            self.err(
                key_pos(self.src, at, "prefill_prompt"),
                format!(
                    "gather `{step}` has a `prefill_prompt` but does not confirm earlier answers"
                ),
                Some("add prefill = \"confirm\"".into()),
            );
        }
        Some(Gather {
            prefill,
            prefill_prompt,
            prompt,
            reprompt,
            speech,
            dtmf,
            hints,
            timeout_secs: s.timeout.as_ref().map_or(6, |t| *t.get_ref()),
            retries,
            barge_in: s.barge_in.as_ref().is_none_or(|b| *b.get_ref()),
            expect,
            intents,
            save_as: s.save_as.as_ref().map(|x| VarName(x.get_ref().clone())),
            next: self.opt_target(&s.next),
            max_digits,
            no_input: self.opt_target(&s.no_input),
            no_match: self.opt_target(&s.no_match),
            auto_intents: s.auto_intents.as_ref().map(|a| *a.get_ref()),
            questions: s.questions.as_ref().is_none_or(|q| *q.get_ref()),
        })
    }

    fn cond(&mut self, c: &S<RawCond>) -> Cond {
        let r = c.get_ref();
        let time = |v: &Option<S<String>>, me: &mut Self| -> Option<NaiveTime> {
            v.as_ref()
                .and_then(|t| match NaiveTime::parse_from_str(t.get_ref(), "%H:%M") {
                    Ok(x) => Some(x),
                    Err(_) => {
                        me.err(
                            t.span().start,
                            format!("`{}` is not a time", t.get_ref()),
                            Some("write HH:MM".into()),
                        );
                        None
                    }
                })
        };
        let before = time(&r.before, self);
        let after = time(&r.after, self);
        for d in [&r.open, &r.closed].into_iter().flatten() {
            self.department(d.get_ref(), d.span().start);
        }
        let lang = r.lang.as_ref().and_then(|l| {
            let x = lang_of(l.get_ref());
            if x.is_none() {
                self.err(
                    l.span().start,
                    format!("unknown language `{}`", l.get_ref()),
                    Some("known: da, en".into()),
                );
            }
            x
        });
        let weekday = r.weekday.as_ref().map(|w| {
            w.get_ref()
                .iter()
                .filter_map(|d| {
                    let x = weekday_key(d);
                    if x.is_none() {
                        self.err(
                            w.span().start,
                            format!("`{d}` is not a weekday"),
                            Some("use mon, tue, wed, thu, fri, sat, sun".into()),
                        );
                    }
                    x
                })
                .collect()
        });
        let heard = r
            .heard
            .as_ref()
            .and_then(|h| match Expect::parse(h.get_ref()) {
                Some(e @ (Expect::Date | Expect::Time | Expect::Phone | Expect::Cpr)) => Some(e),
                _ => {
                    self.err(
                        h.span().start,
                        format!("`heard` cannot test for `{}`", h.get_ref()),
                        Some("heard = \"date\", \"time\", \"phone\" or \"cpr\"".into()),
                    );
                    None
                }
            });
        if r.equals.is_some() && r.var.is_none() {
            self.err(
                c.span().start,
                "`equals` without `var`",
                Some("add var = \"...\"".into()),
            );
        }
        Cond {
            open: r.open.as_ref().map(|x| x.get_ref().clone()),
            closed: r.closed.as_ref().map(|x| x.get_ref().clone()),
            lang,
            caller_prefix: r
                .caller_prefix
                .as_ref()
                .map(|x| normalize_number(x.get_ref())),
            var: r
                .var
                .as_ref()
                .map(|x| self.var(x.get_ref(), x.span().start)),
            equals: r.equals.as_ref().map(|x| normalize(x.get_ref())),
            before,
            after,
            weekday,
            holiday: r.holiday,
            heard,
            goto: self.target(&r.goto),
        }
    }
}

/// Steps that move on without waiting for the caller or an integration.
fn instant_edges(k: &StepKind) -> Vec<StepId> {
    match k {
        StepKind::Say { .. }
        | StepKind::Set { .. }
        | StepKind::Goto(_)
        | StepKind::Branch { .. } => k.edges().into_iter().map(|(_, t)| t).collect(),
        _ => Vec::new(),
    }
}

/// A loop of steps from `from` back to it that never waits, if there is one.
fn busy_cycle(flow: &Flow, from: StepId) -> Option<Vec<StepId>> {
    fn dfs(flow: &Flow, path: &mut Vec<StepId>, seen: &mut BTreeSet<StepId>) -> bool {
        let Some(st) = path.last().and_then(|cur| flow.step(*cur)) else {
            return false;
        };
        for n in instant_edges(&st.kind) {
            if Some(&n) == path.first() {
                path.push(n);
                return true;
            }
            if seen.insert(n) {
                path.push(n);
                if dfs(flow, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from];
    let mut seen = BTreeSet::new();
    dfs(flow, &mut path, &mut seen).then_some(path)
}

/// The gather itself accepts keys for every choice (a yes/no gather takes 1/2).
fn has_keys(g: &Gather) -> bool {
    g.dtmf
        && (g.expect == Expect::YesNo
            || !matches!(g.expect, Expect::Intent)
            || g.intents.iter().all(|i| i.dtmf.is_some()))
}

fn offers_dtmf_or_human(flow: &Flow, from: StepId) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from];
    while let Some(s) = todo.pop() {
        if !seen.insert(s) {
            continue;
        }
        match flow.step(s).map(|x| &x.kind) {
            Some(StepKind::Transfer { .. }) | Some(StepKind::Callback { .. }) => return true,
            Some(StepKind::Gather(g)) if has_keys(g) => return true,
            // A sub-flow is trusted to end in a transfer or keys (its own gathers are checked).
            Some(StepKind::Call { .. }) => return true,
            Some(k) => todo.extend(instant_edges(k)),
            None => {}
        }
    }
    false
}

/// Parses a flow file on its own (for `ivr graph`), with placeholder context:
/// departments and variables are not checked.
pub fn parse_flow_file(path: &Path) -> Result<Flow, Vec<Diagnostic>> {
    let mut ctx = Ctx { diags: Vec::new() };
    let Some(src) = read(path, &mut ctx) else {
        return Err(ctx.diags);
    };
    let Some(raw) = parse_toml::<RawFlow>(&src, &mut ctx) else {
        return Err(ctx.diags);
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut departments = BTreeMap::new();
    let mut queues = BTreeMap::new();
    for s in raw.step.values() {
        let s = s.get_ref();
        if let Some(d) = &s.department {
            departments.insert(
                d.get_ref().clone(),
                Department {
                    id: d.get_ref().clone(),
                    name: BTreeMap::new(),
                    target: String::new(),
                    mail: Some(String::new()),
                    hours: OpeningHours::default(),
                    synonyms: BTreeMap::new(),
                },
            );
        }
        if let Some(q) = &s.queue {
            queues.insert(
                q.get_ref().clone(),
                Queue {
                    id: q.get_ref().clone(),
                    name: BTreeMap::new(),
                    department: String::new(),
                    slot_minutes: 15,
                },
            );
        }
        for c in s.when.iter().flat_map(|w| w.get_ref().iter()) {
            for d in [&c.get_ref().open, &c.get_ref().closed]
                .into_iter()
                .flatten()
            {
                departments.insert(
                    d.get_ref().clone(),
                    Department {
                        id: d.get_ref().clone(),
                        name: BTreeMap::new(),
                        target: String::new(),
                        mail: None,
                        hours: OpeningHours::default(),
                        synonyms: BTreeMap::new(),
                    },
                );
            }
        }
        for r in s.to.iter().flat_map(|t| t.get_ref().iter()) {
            departments.insert(
                r.clone(),
                Department {
                    id: r.clone(),
                    name: BTreeMap::new(),
                    target: String::new(),
                    mail: Some(String::new()),
                    hours: OpeningHours::default(),
                    synonyms: BTreeMap::new(),
                },
            );
        }
    }
    // The flow is 0; the flows it calls get stand-in ids after it.
    let mut flows: BTreeMap<String, FlowId> = BTreeMap::new();
    for s in raw.step.values() {
        if let Some(f) = &s.get_ref().flow {
            let next = FlowId(flows.len() as u32 + 1);
            flows.entry(f.get_ref().clone()).or_insert(next);
        }
    }
    let vars = BTreeSet::new();
    let langs: Vec<Lang> = Vec::new();
    let flow = {
        let mut v = Validator::new(&src, &langs, &departments, &queues, &flows, &vars, &mut ctx);
        v.lenient = true;
        v.flow(FlowId(0), &name, &raw)
    };
    if ctx.diags.iter().any(Diagnostic::is_error) {
        Err(ctx.diags)
    } else {
        Ok(flow)
    }
}
