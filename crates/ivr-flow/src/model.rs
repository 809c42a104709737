//! Validated flows and municipalities: what the loader produces and the
//! interpreter runs. Every reference here has been resolved or checked at
//! load: step targets are [`StepId`]s, sub-flows [`FlowId`]s, departments and
//! queues exist, a value that may come from a variable is a [`Ref`], prompts
//! exist in every language of the municipality. Nothing parses `{…}` at run
//! time.

use std::{collections::BTreeMap, fmt, path::PathBuf, sync::Arc};

use chrono::{DateTime, Utc};
use ivr_core::Lang;

use crate::hours::{Calendar, OpeningHours};

/// A municipality: its departments, queues, flows and announcement.
#[derive(Debug, Clone)]
pub struct Municipality {
    /// Folder name under `flows/` (e.g. `nordby`).
    pub id: String,
    /// Display name ("Nordby Kommune").
    pub name: String,
    /// Languages every prompt must exist in; the first is the default.
    pub languages: Vec<Lang>,
    /// Department a caller who cannot be helped is transferred to.
    pub fallback: String,
    /// Departments by id.
    pub departments: BTreeMap<String, Department>,
    /// Frontdesk queues by id.
    pub queues: BTreeMap<String, Queue>,
    /// Flows, own and shared, sorted by name (file stem); a flow's
    /// [`FlowId`] is its place here.
    pub flows: Vec<Arc<Flow>>,
    /// Closures and special days.
    pub calendar: Calendar,
    /// Played before every flow when present (crisis preparedness).
    pub announcement: Option<Announcement>,
    /// The sentence encoder the intents' example vectors were made with
    /// (see [`crate::intents`]); `None`: intents are recognised by their
    /// words alone. Set by [`crate::FlowStore::load_with`].
    pub encoder: Option<Arc<dyn crate::semantic::SentenceEncoder>>,
    /// Vectors of [`crate::intents::OUT_OF_SCOPE_EXAMPLES`], made with
    /// [`Self::encoder`] (empty without one).
    pub out_of_scope: crate::intents::ExampleVectors,
    /// Answers to general questions (`knowledge/*.toml`; empty when none).
    pub knowledge: Arc<crate::knowledge::KnowledgeBase>,
}

impl Municipality {
    /// The default language.
    pub fn default_lang(&self) -> Lang {
        self.languages.first().copied().unwrap_or(Lang::Da)
    }

    /// A flow by id.
    pub fn flow(&self, id: FlowId) -> Option<&Arc<Flow>> {
        self.flows.get(id.index())
    }

    /// A flow by name (file stem).
    pub fn flow_named(&self, name: &str) -> Option<&Arc<Flow>> {
        self.flows.iter().find(|f| f.name == name)
    }

    /// A step by id.
    pub fn step(&self, id: StepId) -> Option<&Step> {
        self.flow(id.flow)?.step(id)
    }

    /// `flow/step` for traces and the call record.
    pub fn step_path(&self, id: StepId) -> String {
        match self.flow(id.flow) {
            Some(f) => format!("{}/{}", f.name, f.name_of(id)),
            None => String::from("?"),
        }
    }

    /// Every static prompt (no variables, not marked `personal`) of every
    /// flow, the lead-in of every template with variables
    /// ([`Template::lead_in`]), the read-back lead-ins of confirmations
    /// ([`crate::interp::confirm_lead_in`]), and each question's keys notice
    /// ([`crate::keys`]), for TTS pre-rendering.
    pub fn static_prompts(&self) -> Vec<(Lang, String)> {
        let mut out: Vec<(Lang, String)> = Vec::new();
        let add = |out: &mut Vec<(Lang, String)>, l: Lang, s: String| {
            if !out.iter().any(|(ol, os)| *ol == l && *os == s) {
                out.push((l, s));
            }
        };
        let push = |out: &mut Vec<(Lang, String)>, t: &Text| {
            for (l, tpl) in &t.0 {
                for s in tpl
                    .as_static()
                    .map(str::to_string)
                    .into_iter()
                    .chain(tpl.lead_in())
                {
                    add(out, *l, s);
                }
            }
        };
        if let Some(a) = &self.announcement {
            push(&mut out, &a.text);
        }
        for f in &self.flows {
            for s in &f.steps {
                for t in s.kind.texts() {
                    push(&mut out, t);
                }
            }
        }
        // What each question says when the call falls back to keys.
        for f in &self.flows {
            for s in &f.steps {
                let StepKind::Gather(g) = &s.kind else {
                    continue;
                };
                for l in &self.languages {
                    if let Some(n) = crate::keys::keys_notice(g, *l) {
                        add(&mut out, *l, n);
                    }
                }
            }
        }
        for l in &self.languages {
            if let Some(n) = lead_in(crate::interp::confirm_lead_in(*l)) {
                add(&mut out, *l, n);
            }
        }
        out
    }
}

/// The announcement put in front of every flow of a municipality.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// What is said.
    pub text: Text,
    /// Stops playing after this instant, if set.
    pub until: Option<DateTime<Utc>>,
}

/// A department calls can be transferred to.
#[derive(Debug, Clone)]
pub struct Department {
    /// Id used in flows.
    pub id: String,
    /// Spoken name per language.
    pub name: BTreeMap<Lang, String>,
    /// Where a transfer goes (SIP URI or queue id understood by the engine).
    pub target: String,
    /// Mailbox for messages and cancellations.
    pub mail: Option<String>,
    /// Opening hours.
    pub hours: OpeningHours,
    /// Other words citizens use for it, per language (`synonyms` in
    /// municipality.toml): with [`Department::name`] they make it an intent
    /// of menu gathers (see [`crate::intents`]).
    pub synonyms: BTreeMap<Lang, Vec<String>>,
}

/// A Frontdesk queue (appointment type).
#[derive(Debug, Clone)]
pub struct Queue {
    /// Id used in flows and sent to Frontdesk.
    pub id: String,
    /// Spoken name per language.
    pub name: BTreeMap<Lang, String>,
    /// Department whose opening hours bound the appointments.
    pub department: String,
    /// Appointment length in minutes.
    pub slot_minutes: u32,
}

/// A flow of a municipality, resolved at load: its place in
/// [`Municipality::flows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub(crate) u32);

impl FlowId {
    /// The place in [`Municipality::flows`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A step resolved at load: its flow and its place in that flow's
/// [`Flow::steps`]. Targets of steps (`next`, `goto`, `no_match`, ...) are
/// these, so running a flow never looks a step up by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepId {
    /// The flow.
    pub flow: FlowId,
    pub(crate) step: u32,
}

impl StepId {
    /// The place in the flow's [`Flow::steps`].
    pub fn index(self) -> usize {
        self.step as usize
    }
}

/// The name of a variable as a flow writes it (without braces), checked at
/// load to be set somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarName(pub(crate) String);

impl VarName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value the flow fixes (checked at load) or reads from a variable when
/// the step runs (`queue = "{queue}"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref<T> {
    /// Given in the flow.
    Fixed(T),
    /// The value of this variable.
    Var(VarName),
}

impl<T: fmt::Display> fmt::Display for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Fixed(v) => v.fmt(f),
            Ref::Var(v) => write!(f, "{{{v}}}"),
        }
    }
}

/// A sub-flow a `call` step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRef {
    /// Resolved at load.
    pub id: FlowId,
    /// Its name (file stem), for graphs and traces.
    pub name: String,
}

/// How a flow's intent gathers decide (the flow's `[understanding]` table;
/// see [`crate::intents`] and docs/flows.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Understanding {
    /// The best intent needs at least this score (0..1) to be chosen.
    pub accept: f32,
    /// When the runner-up (another destination) scores within this much of
    /// the best, the caller is asked which of the two they meant.
    pub margin: f32,
    /// Ask that question (false: take the best).
    pub clarify: bool,
    /// Departments and Frontdesk queues of the municipality are intents of
    /// this flow's menu gathers (a gather's `auto_intents` overrides).
    pub auto_intents: bool,
    /// Reject a turn that is closer in meaning to the generic out-of-scope
    /// examples ([`crate::intents::OUT_OF_SCOPE_EXAMPLES`]: pizza, taxis,
    /// the weather, a wrong number) than to the best intent's examples,
    /// unless that intent's own words vouch for it ([`Self::words_vouch`]).
    pub out_of_scope: bool,
    /// How much closer (cosine) the best intent's examples must be than the
    /// out-of-scope examples for the turn to be taken as in scope.
    pub out_of_scope_margin: f32,
    /// A words score (keywords, examples' stemmed words) at or above which
    /// the intent is taken even when the meaning leans out of scope.
    pub words_vouch: f32,
}

impl Default for Understanding {
    fn default() -> Self {
        Understanding {
            accept: crate::intents::DEFAULT_ACCEPT,
            margin: crate::intents::DEFAULT_MARGIN,
            clarify: true,
            auto_intents: true,
            out_of_scope: true,
            out_of_scope_margin: crate::intents::DEFAULT_OUT_OF_SCOPE_MARGIN,
            words_vouch: crate::intents::DEFAULT_WORDS_VOUCH,
        }
    }
}

/// A flow: steps in file order and where it starts.
#[derive(Debug, Clone)]
pub struct Flow {
    /// File stem (`main`, `callback`).
    pub name: String,
    /// Its place in [`Municipality::flows`].
    pub id: FlowId,
    /// The file it came from.
    pub file: PathBuf,
    /// First step.
    pub start: StepId,
    /// Steps in file order; a [`StepId`] of this flow indexes it. Steps the
    /// loader adds (a transfer for a department intent) come last.
    pub steps: Vec<Step>,
    /// Thresholds of its intent gathers.
    pub understanding: Understanding,
    /// Whether callers' questions are answered at this flow's gathers, and
    /// where the flow goes on (`[questions]`; `None`: not answered here).
    pub questions: Option<Questions>,
}

/// A flow's `[questions]` table: questions asked at its gathers are
/// answered from the knowledge base (see `docs/knowledge.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Questions {
    /// After an answer the caller confirmed (default: the interrupted
    /// question is asked again).
    pub resume: Option<StepId>,
    /// A question the bot cannot answer (default: a human in the fallback
    /// department, or when closed, when it opens).
    pub decline: Option<StepId>,
    /// The caller said the answer did not help (default: the entry's
    /// department, when open; otherwise as `decline`).
    pub unresolved: Option<StepId>,
}

impl Flow {
    /// A step of this flow by id.
    pub fn step(&self, id: StepId) -> Option<&Step> {
        if id.flow != self.id {
            return None;
        }
        self.steps.get(id.index())
    }

    /// A step by name (tools and tests; the interpreter uses ids).
    pub fn step_named(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The name of a step of this flow (`?` for an id of another flow).
    pub fn name_of(&self, id: StepId) -> &str {
        self.step(id).map_or("?", |s| s.name.as_str())
    }

    /// The steps a step can go to, with a label, by name (for graphs).
    pub fn edges(&self, step: &Step) -> Vec<(String, &str)> {
        step.kind
            .edges()
            .into_iter()
            .map(|(label, to)| (label, self.name_of(to)))
            .collect()
    }
}

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Name.
    pub name: String,
    /// Line in the file (1-based), for traces.
    pub line: usize,
    /// What it does.
    pub kind: StepKind,
}

/// Text per language.
#[derive(Debug, Clone, Default)]
pub struct Text(pub BTreeMap<Lang, Template>);

impl Text {
    /// The template for a language, falling back to any.
    pub fn get(&self, lang: Lang) -> Option<&Template> {
        self.0.get(&lang).or_else(|| self.0.values().next())
    }

    /// The same text, every language marked personal when `personal`.
    pub fn marked_personal(mut self, personal: bool) -> Self {
        if personal {
            for t in self.0.values_mut() {
                t.personal = true;
            }
        }
        self
    }
}

/// A prompt with `{variables}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The source text.
    pub source: String,
    /// Parsed pieces.
    pub parts: Vec<Part>,
    /// The flow marks it `personal = true`: spoken as personal speech (never
    /// cached) whatever its variables hold.
    pub personal: bool,
}

impl Template {
    /// The text when it has no variables and is not marked personal (a
    /// prompt that can be pre-rendered and cached).
    pub fn as_static(&self) -> Option<&str> {
        (!self.personal && self.parts.iter().all(|p| matches!(p, Part::Lit(_))))
            .then_some(self.source.as_str())
    }

    /// The literal words in front of the template's first value, as they
    /// are spoken on their own ([`lead_in`]), when that value is a variable
    /// that may be personal and the template is not marked `personal` as a
    /// whole: what a read-back ("The appointment is on {date|date}.")
    /// starts with, from the prompt cache, while the personal rest is
    /// synthesised; pre-rendered. The interpreter says these words alone
    /// exactly when that variable is personal in the call; when it turns out
    /// public, the lead-in runs on through it and is cached when first said.
    /// A template whose first value is always public (`{next_open:dept}`,
    /// `{window:dept}`, `{today}`) never leads in with its literal words
    /// alone, so none is pre-rendered for it.
    pub fn lead_in(&self) -> Option<String> {
        if self.personal {
            return None;
        }
        match self.parts.as_slice() {
            [Part::Lit(l), Part::Var { name, .. }, ..]
                if !PUBLIC_BUILTINS.contains(&name.as_str()) =>
            {
                lead_in(l)
            }
            _ => None,
        }
    }
}

/// Variables every call has that hold no personal data: the call's
/// language and the date and time.
pub(crate) const PUBLIC_BUILTINS: &[&str] = &["lang", "today", "now"];

/// Words a lead-in needs to be worth a piece of speech of its own (a single
/// word sounds clipped).
pub const LEAD_IN_MIN_WORDS: usize = 2;

/// `text` (the literal words before a spoken value) as a piece of speech of
/// its own: trimmed, with a comma when it ends inside a sentence, so the
/// voice keeps a continuing intonation ("Jeg hørte," then "nul et, nul
/// to."). `None` when it has fewer than [`LEAD_IN_MIN_WORDS`] words or is
/// glued to the value ("kl.{time}", "{n}-cifret": no space before it).
pub fn lead_in(text: &str) -> Option<String> {
    if !text.ends_with(char::is_whitespace) {
        return None;
    }
    let t = text.trim();
    if t.split_whitespace().count() < LEAD_IN_MIN_WORDS {
        return None;
    }
    Some(if t.ends_with(['.', ',', ';', ':', '!', '?']) {
        t.to_string()
    } else {
        format!("{t},")
    })
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text.
    Lit(String),
    /// `{name}` or `{name|format}`.
    Var {
        /// Variable name.
        name: VarName,
        /// How to speak it.
        format: Option<Format>,
    },
    /// `{next_open:dept}` / `{window:dept}` / `{department:dept}` / `{queue:q}`.
    Func {
        /// Function.
        func: Func,
        /// Its argument (department or queue id, checked at load).
        arg: String,
    },
}

/// How a variable is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// "tirsdag den 3. december".
    Date,
    /// "halv elleve".
    Time,
    /// "tirsdag den 3. december klokken halv elleve".
    DateTime,
    /// "fireogtyve".
    Number,
    /// Digits in pairs.
    Digits,
    /// A phone number in pairs.
    Phone,
    /// A CPR number in pairs.
    Cpr,
}

impl Format {
    /// Parses a formatter name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "date" => Self::Date,
            "time" => Self::Time,
            "datetime" => Self::DateTime,
            "number" => Self::Number,
            "digits" => Self::Digits,
            "phone" => Self::Phone,
            "cpr" => Self::Cpr,
            _ => return None,
        })
    }
}

/// Computed template values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// When the department opens next ("i morgen klokken otte").
    NextOpen,
    /// The callback window of the department.
    Window,
    /// The department's spoken name.
    Department,
    /// The queue's spoken name.
    Queue,
}

/// What a gather listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One of the step's intents.
    Intent,
    /// Yes/no (intents named `yes` and `no`).
    YesNo,
    /// A whole number.
    Number,
    /// A date.
    Date,
    /// A time of day.
    Time,
    /// A CPR number (checked).
    Cpr,
    /// A Danish phone number.
    Phone,
    /// Any digits.
    Digits,
    /// Free text (e.g. a name or a message).
    Text,
}

impl Expect {
    /// Parses the `expect` value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "intent" => Self::Intent,
            "yesno" => Self::YesNo,
            "number" => Self::Number,
            "date" => Self::Date,
            "time" => Self::Time,
            "cpr" => Self::Cpr,
            "phone" => Self::Phone,
            "digits" => Self::Digits,
            "text" => Self::Text,
            _ => return None,
        })
    }
}

impl Expect {
    /// The name in the flow language (`expect = "..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intent => "intent",
            Self::YesNo => "yesno",
            Self::Number => "number",
            Self::Date => "date",
            Self::Time => "time",
            Self::Cpr => "cpr",
            Self::Phone => "phone",
            Self::Digits => "digits",
            Self::Text => "text",
        }
    }
}

/// What a gather does when the caller already said its answer earlier in
/// the call (`prefill = "..."`; see `docs/flows.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefill {
    /// Take the earlier answer and ask "..., er det rigtigt?" instead of the
    /// question; "nej" asks the question. Default for dates, times, phone
    /// and CPR numbers.
    Confirm,
    /// Take the earlier answer without a word (a later step confirms it, or
    /// it is a choice the caller made plainly). Default for intents.
    Use,
    /// Always ask. Default for yes/no, free text, numbers and digits, whose
    /// earlier words seldom answer this question.
    Off,
}

impl Prefill {
    /// Parses the `prefill` value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "confirm" => Self::Confirm,
            "use" => Self::Use,
            "off" => Self::Off,
            _ => return None,
        })
    }

    /// The default for a gather expecting `e`.
    pub fn default_for(e: Expect) -> Self {
        match e {
            Expect::Intent => Self::Use,
            Expect::Date | Expect::Time | Expect::Phone | Expect::Cpr => Self::Confirm,
            Expect::YesNo | Expect::Number | Expect::Digits | Expect::Text => Self::Off,
        }
    }
}

/// An intent of a gather.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Name (saved in `intent`).
    pub name: String,
    /// Matchers per language.
    pub matcher: BTreeMap<Lang, crate::understand::IntentMatcher>,
    /// The keywords per language as the flow writes them (with `æøå`):
    /// what speech-to-text scores against the audio.
    pub keywords: BTreeMap<Lang, Vec<String>>,
    /// Key that selects it.
    pub dtmf: Option<String>,
    /// Where to go.
    pub goto: StepId,
    /// What the option is called in a clarifying question ("aflyse en aftale
    /// i jobcentret"), per language: the flow's `clarify`, or made from the
    /// department or queue it leads to.
    pub clarify: Option<Text>,
    /// Where the intent comes from.
    pub origin: IntentOrigin,
    /// Embeddings of its examples and keywords, made once per load when an
    /// encoder is present.
    pub vectors: crate::intents::ExampleVectors,
    /// Heard together with another errand's words, this intent wins (the
    /// flow's `precedence = true`): a caller who asks to be called back
    /// about their housing benefit wants the callback, the topic travels
    /// with it.
    pub precedence: bool,
}

/// Where an intent of a gather comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentOrigin {
    /// Written in the flow (it may also carry the words of the department or
    /// queue it leads to).
    Flow,
    /// Added for a department of the municipality (named after its id).
    Department(String),
    /// Added for a Frontdesk queue (named after its id).
    Queue(String),
}

/// A `gather` step.
#[derive(Debug, Clone)]
pub struct Gather {
    /// Asked first.
    pub prompt: Text,
    /// Asked after a failed attempt (default: a short apology plus the prompt).
    pub reprompt: Option<Text>,
    /// Listens for speech.
    pub speech: bool,
    /// Listens for keys.
    pub dtmf: bool,
    /// Words passed to STT as hints, per language.
    pub hints: BTreeMap<Lang, Vec<String>>,
    /// Seconds of silence before no-input.
    pub timeout_secs: u32,
    /// Extra attempts after the first (0 or 1).
    pub retries: u32,
    /// Whether caller speech interrupts the prompt.
    pub barge_in: bool,
    /// What is listened for.
    pub expect: Expect,
    /// Intents (for `intent`/`yesno`).
    pub intents: Vec<Intent>,
    /// Variable that receives the value.
    pub save_as: Option<VarName>,
    /// Where a value goes (slot gathers).
    pub next: Option<StepId>,
    /// Most keys of a DTMF entry (`#` ends earlier).
    pub max_digits: u32,
    /// Where to go after the last failed attempt with no input.
    pub no_input: Option<StepId>,
    /// Where to go after the last failed attempt not understood.
    pub no_match: Option<StepId>,
    /// Questions are answered here when the flow answers questions
    /// (`questions = false` turns it off for this gather).
    pub questions: bool,
    /// What to do when the caller already said the answer earlier.
    pub prefill: Prefill,
    /// Said instead of the prompt when an earlier answer is confirmed
    /// (default: "Jeg hørte ... Er det rigtigt?").
    pub prefill_prompt: Option<Text>,
    /// The gather's `auto_intents` (`None`: the flow's setting, for menus).
    pub auto_intents: Option<bool>,
}

/// A condition of a `branch`: every field given must hold.
#[derive(Debug, Clone)]
pub struct Cond {
    /// Department open now.
    pub open: Option<String>,
    /// Department closed now.
    pub closed: Option<String>,
    /// Conversation language.
    pub lang: Option<Lang>,
    /// Caller number starts with.
    pub caller_prefix: Option<String>,
    /// Variable compared with `equals`, or tested for being set.
    pub var: Option<VarName>,
    /// Value the variable must have (compared normalised: case, æøå,
    /// punctuation; normalised at load).
    pub equals: Option<String>,
    /// Local time before (HH:MM).
    pub before: Option<chrono::NaiveTime>,
    /// Local time at or after (HH:MM).
    pub after: Option<chrono::NaiveTime>,
    /// Local weekday is one of.
    pub weekday: Option<Vec<chrono::Weekday>>,
    /// Today is a public holiday (true) / is not (false).
    pub holiday: Option<bool>,
    /// The caller has said a value of this kind (date, time, phone, cpr)
    /// earlier in the call.
    pub heard: Option<Expect>,
    /// Where to go.
    pub goto: StepId,
}

/// Frontdesk operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontdeskOp {
    /// List free slots.
    Slots,
    /// Book a slot.
    Book,
    /// Cancel a booking.
    Cancel,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Speak (or play a file) and continue.
    Say {
        /// Text to speak.
        text: Option<Text>,
        /// Audio file to play instead (relative to the municipality folder).
        audio: Option<String>,
        /// Next step.
        next: StepId,
    },
    /// Ask and listen.
    Gather(Box<Gather>),
    /// First matching condition wins, else `otherwise`.
    Branch {
        /// Conditions.
        when: Vec<Cond>,
        /// Default.
        otherwise: StepId,
    },
    /// Set variables from templates (`"{x}"` copies a value with its type).
    Set {
        /// Name -> template.
        vars: Vec<(VarName, Template)>,
        /// Next step.
        next: StepId,
    },
    /// Hand the call to a department.
    Transfer {
        /// Department id (checked at load).
        department: String,
        /// Context fields travelling with the call.
        context: Vec<(String, Template)>,
        /// Where to go when the department is closed (default: say when it
        /// opens and offer nothing more: hang up politely).
        if_closed: Option<StepId>,
        /// Where to go when the transfer fails (refused, no answer, timed
        /// out). Default: apologise and put the caller through to the
        /// fallback department, or tell them to call again later.
        if_failed: Option<StepId>,
    },
    /// Store a callback request.
    Callback {
        /// Department that calls back (checked at load).
        department: String,
        /// Topic.
        topic: Template,
        /// Variable holding the number (default `caller`).
        number_var: VarName,
        /// After storing.
        next: StepId,
        /// When storing failed.
        on_error: Option<StepId>,
    },
    /// Send a mail.
    Mail {
        /// What the mail is (free name passed to the integration).
        kind: Option<String>,
        /// Addresses: given in the flow (a department's `mail`, resolved at
        /// load, or an address) or read from a variable.
        to: Vec<Ref<String>>,
        /// Subject.
        subject: Template,
        /// Body (personal data: sent, never logged).
        body: Template,
        /// After sending.
        next: StepId,
        /// When sending failed.
        on_error: Option<StepId>,
    },
    /// Frontdesk booking.
    Frontdesk {
        /// Operation.
        op: FrontdeskOp,
        /// Queue id (a fixed one is checked at load; a variable's value when
        /// the step runs).
        queue: Ref<String>,
        /// Variable with the chosen slot (book).
        slot_var: Option<VarName>,
        /// Variable with the CPR number.
        cpr_var: Option<VarName>,
        /// Variable with the appointment date (cancel).
        date_var: Option<VarName>,
        /// On success.
        next: StepId,
        /// Slot was taken meanwhile (book), or nothing to cancel.
        on_taken: Option<StepId>,
        /// No free slots (slots).
        on_empty: Option<StepId>,
        /// Frontdesk unreachable or timed out.
        on_unavailable: Option<StepId>,
        /// Any other failure.
        on_error: Option<StepId>,
    },
    /// Jump.
    Goto(StepId),
    /// Run another flow (own or shared) and come back to `next`.
    Call {
        /// The flow.
        flow: FlowRef,
        /// Where to continue after its `return`.
        next: StepId,
    },
    /// Return from a called flow.
    Return,
    /// End the call.
    Hangup {
        /// Goodbye.
        text: Option<Text>,
        /// Outcome for the record.
        outcome: crate::interp::Outcome,
    },
}

impl StepKind {
    /// The verb as written in TOML.
    pub fn verb(&self) -> &'static str {
        match self {
            StepKind::Say { .. } => "say",
            StepKind::Gather(_) => "gather",
            StepKind::Branch { .. } => "branch",
            StepKind::Set { .. } => "set",
            StepKind::Transfer { .. } => "transfer",
            StepKind::Callback { .. } => "callback",
            StepKind::Mail { .. } => "mail",
            StepKind::Frontdesk { .. } => "frontdesk",
            StepKind::Goto(_) => "goto",
            StepKind::Call { .. } => "call",
            StepKind::Return => "return",
            StepKind::Hangup { .. } => "hangup",
        }
    }

    /// Steps this one can go to, with a label (for reachability and graphs;
    /// names through [`Flow::edges`]).
    pub fn edges(&self) -> Vec<(String, StepId)> {
        let mut e: Vec<(String, StepId)> = Vec::new();
        let mut add = |label: &str, t: &Option<StepId>| {
            if let Some(t) = t {
                e.push((label.to_string(), *t));
            }
        };
        match self {
            StepKind::Say { next, .. }
            | StepKind::Set { next, .. }
            | StepKind::Call { next, .. } => add("", &Some(*next)),
            StepKind::Gather(g) => {
                for i in &g.intents {
                    let label = match &i.dtmf {
                        Some(d) => format!("{} [{}]", i.name, d),
                        None => i.name.clone(),
                    };
                    add(&label, &Some(i.goto));
                }
                add("value", &g.next);
                add("no input", &g.no_input);
                add("no match", &g.no_match);
            }
            StepKind::Branch { when, otherwise } => {
                for c in when {
                    add(&cond_label(c), &Some(c.goto));
                }
                add("else", &Some(*otherwise));
            }
            StepKind::Transfer {
                if_closed,
                if_failed,
                ..
            } => {
                add("closed", if_closed);
                add("failed", if_failed);
            }
            StepKind::Callback { next, on_error, .. } | StepKind::Mail { next, on_error, .. } => {
                add("ok", &Some(*next));
                add("error", on_error);
            }
            StepKind::Frontdesk {
                next,
                on_taken,
                on_empty,
                on_unavailable,
                on_error,
                ..
            } => {
                add("ok", &Some(*next));
                add("taken", on_taken);
                add("empty", on_empty);
                add("unavailable", on_unavailable);
                add("error", on_error);
            }
            StepKind::Goto(t) => add("", &Some(*t)),
            StepKind::Return | StepKind::Hangup { .. } => {}
        }
        e
    }

    /// Prompts of this step.
    pub fn texts(&self) -> Vec<&Text> {
        match self {
            StepKind::Say { text: Some(t), .. } | StepKind::Hangup { text: Some(t), .. } => vec![t],
            StepKind::Gather(g) => {
                let mut v = vec![&g.prompt];
                if let Some(r) = &g.reprompt {
                    v.push(r);
                }
                if let Some(r) = &g.prefill_prompt {
                    v.push(r);
                }
                v
            }
            _ => Vec::new(),
        }
    }
}

/// A short label for a condition (graphs and traces).
pub fn cond_label(c: &Cond) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &c.open {
        parts.push(format!("open {d}"));
    }
    if let Some(d) = &c.closed {
        parts.push(format!("closed {d}"));
    }
    if let Some(l) = &c.lang {
        parts.push(format!("lang {l}"));
    }
    if let Some(p) = &c.caller_prefix {
        parts.push(format!("caller {p}*"));
    }
    match (&c.var, &c.equals) {
        (Some(v), Some(e)) => parts.push(format!("{v} = {e}")),
        (Some(v), None) => parts.push(format!("{v} set")),
        _ => {}
    }
    if let Some(t) = &c.before {
        parts.push(format!("before {}", t.format("%H:%M")));
    }
    if let Some(t) = &c.after {
        parts.push(format!("after {}", t.format("%H:%M")));
    }
    if let Some(w) = &c.weekday {
        parts.push(format!("{w:?}"));
    }
    if let Some(e) = c.heard {
        parts.push(format!("heard {}", e.as_str()));
    }
    if let Some(h) = c.holiday {
        parts.push(if h {
            "holiday".into()
        } else {
            "not holiday".into()
        });
    }
    parts.join(", ")
}

#[cfg(test)]
mod lead_in_tests {
    use super::{lead_in, Func, Part, Template, VarName};

    fn tpl(parts: Vec<Part>) -> Template {
        Template {
            source: String::new(),
            parts,
            personal: false,
        }
    }

    fn lit(s: &str) -> Part {
        Part::Lit(s.into())
    }

    fn var(name: &str) -> Part {
        Part::Var {
            name: VarName(name.into()),
            format: None,
        }
    }

    /// A template's literal words are pre-rendered only when the interpreter
    /// may say them alone: its first value is a variable that may be
    /// personal. "Vi ringer dig op {window:borgerservice}." is said whole
    /// (every part public), so "Vi ringer dig op," would never be said.
    #[test]
    fn only_words_in_front_of_a_possibly_personal_variable_are_pre_rendered() {
        let read_back = tpl(vec![
            lit("Jeg hørte "),
            var("cpr"),
            lit(". Er det rigtigt?"),
        ]);
        assert_eq!(read_back.lead_in().as_deref(), Some("Jeg hørte,"));
        let window = tpl(vec![
            lit("Vi ringer dig op "),
            Part::Func {
                func: Func::Window,
                arg: "borgerservice".into(),
            },
            lit("."),
        ]);
        assert_eq!(window.lead_in(), None);
        let stamped = tpl(vec![
            lit("Besked modtaget "),
            var("now"),
            lit(": "),
            var("message"),
        ]);
        assert_eq!(
            stamped.lead_in(),
            None,
            "{{now}} is public: the lead-in runs on through it"
        );
        let marked = Template {
            personal: true,
            ..read_back.clone()
        };
        assert_eq!(
            marked.lead_in(),
            None,
            "a template marked personal is never split"
        );
    }

    #[test]
    fn a_lead_in_is_two_words_or_more_ending_before_a_space() {
        assert_eq!(lead_in("Jeg hørte ").as_deref(), Some("Jeg hørte,"));
        assert_eq!(
            lead_in("Tak. Du sagde: ").as_deref(),
            Some("Tak. Du sagde:"),
            "its own punctuation is kept"
        );
        assert_eq!(lead_in("Tak, ").as_deref(), None, "one word sounds clipped");
        assert_eq!(lead_in("Klokken er kl."), None, "glued to the value");
        assert_eq!(lead_in("   "), None);
    }
}
