//! Validated flows and municipalities: what the loader produces and the
//! interpreter runs. Every name here has been checked (steps exist, departments
//! exist, prompts exist in every language of the municipality).

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

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
    /// Flows by name (file stem), own and shared.
    pub flows: BTreeMap<String, Arc<Flow>>,
    /// Closures and special days.
    pub calendar: Calendar,
    /// Played before every flow when present (crisis preparedness).
    pub announcement: Option<Announcement>,
}

impl Municipality {
    /// The default language.
    pub fn default_lang(&self) -> Lang {
        self.languages.first().copied().unwrap_or(Lang::Da)
    }

    /// Every static prompt (no variables, not marked `personal`) of every
    /// flow, for TTS pre-rendering.
    pub fn static_prompts(&self) -> Vec<(Lang, String)> {
        let mut out: Vec<(Lang, String)> = Vec::new();
        let mut push = |t: &Text| {
            for (l, tpl) in &t.0 {
                if let Some(s) = tpl.as_static() {
                    if !out.iter().any(|(ol, os)| ol == l && os == s) {
                        out.push((*l, s.to_string()));
                    }
                }
            }
        };
        if let Some(a) = &self.announcement {
            push(&a.text);
        }
        for f in self.flows.values() {
            for s in f.steps.values() {
                for t in s.kind.texts() {
                    push(t);
                }
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

/// A flow: named steps and where it starts.
#[derive(Debug, Clone)]
pub struct Flow {
    /// File stem (`main`, `callback`).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// First step.
    pub start: String,
    /// Steps by name.
    pub steps: BTreeMap<String, Step>,
    /// Step names in file order (for `ivr graph`).
    pub order: Vec<String>,
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
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text.
    Lit(String),
    /// `{name}` or `{name|format}`.
    Var {
        /// Variable name.
        name: String,
        /// How to speak it.
        format: Option<Format>,
    },
    /// `{next_open:dept}` / `{window:dept}` / `{department:dept}` / `{queue:q}`.
    Func {
        /// Function.
        func: Func,
        /// Its argument (department or queue id).
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

/// An intent of a gather.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Name (saved in `intent`).
    pub name: String,
    /// Matchers per language.
    pub matcher: BTreeMap<Lang, crate::understand::IntentMatcher>,
    /// Key that selects it.
    pub dtmf: Option<String>,
    /// Where to go.
    pub goto: String,
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
    pub save_as: Option<String>,
    /// Where a value goes (slot gathers).
    pub next: Option<String>,
    /// Most keys of a DTMF entry (`#` ends earlier).
    pub max_digits: u32,
    /// Where to go after the last failed attempt with no input.
    pub no_input: Option<String>,
    /// Where to go after the last failed attempt not understood.
    pub no_match: Option<String>,
}

/// A condition of a `branch`: every field given must hold.
#[derive(Debug, Clone, Default)]
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
    pub var: Option<String>,
    /// Value the variable must have (text compare).
    pub equals: Option<String>,
    /// Local time before (HH:MM).
    pub before: Option<chrono::NaiveTime>,
    /// Local time at or after (HH:MM).
    pub after: Option<chrono::NaiveTime>,
    /// Local weekday is one of.
    pub weekday: Option<Vec<chrono::Weekday>>,
    /// Today is a public holiday (true) / is not (false).
    pub holiday: Option<bool>,
    /// Where to go.
    pub goto: String,
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
        next: String,
    },
    /// Ask and listen.
    Gather(Box<Gather>),
    /// First matching condition wins, else `otherwise`.
    Branch {
        /// Conditions.
        when: Vec<Cond>,
        /// Default.
        otherwise: String,
    },
    /// Set variables from templates (`"{x}"` copies a value with its type).
    Set {
        /// Name -> template.
        vars: Vec<(String, Template)>,
        /// Next step.
        next: String,
    },
    /// Hand the call to a department.
    Transfer {
        /// Department id.
        department: String,
        /// Context fields travelling with the call.
        context: Vec<(String, Template)>,
        /// Where to go when the department is closed (default: say when it
        /// opens and offer nothing more: hang up politely).
        if_closed: Option<String>,
        /// Where to go when the transfer fails (refused, no answer, timed
        /// out). Default: apologise and put the caller through to the
        /// fallback department, or tell them to call again later.
        if_failed: Option<String>,
    },
    /// Store a callback request.
    Callback {
        /// Department that calls back.
        department: String,
        /// Topic.
        topic: Template,
        /// Variable holding the number (default `caller`).
        number_var: String,
        /// After storing.
        next: String,
        /// When storing failed.
        on_error: Option<String>,
    },
    /// Send a mail.
    Mail {
        /// What the mail is (free name passed to the integration).
        kind: Option<String>,
        /// Department ids or addresses.
        to: Vec<String>,
        /// Subject.
        subject: Template,
        /// Body (personal data: sent, never logged).
        body: Template,
        /// After sending.
        next: String,
        /// When sending failed.
        on_error: Option<String>,
    },
    /// Frontdesk booking.
    Frontdesk {
        /// Operation.
        op: FrontdeskOp,
        /// Queue id.
        queue: String,
        /// Variable with the chosen slot (book).
        slot_var: Option<String>,
        /// Variable with the CPR number.
        cpr_var: Option<String>,
        /// Variable with the appointment date (cancel).
        date_var: Option<String>,
        /// On success.
        next: String,
        /// Slot was taken meanwhile (book), or nothing to cancel.
        on_taken: Option<String>,
        /// No free slots (slots).
        on_empty: Option<String>,
        /// Frontdesk unreachable or timed out.
        on_unavailable: Option<String>,
        /// Any other failure.
        on_error: Option<String>,
    },
    /// Jump.
    Goto(String),
    /// Run another flow (own or shared) and come back to `next`.
    Call {
        /// Flow name.
        flow: String,
        /// Where to continue after its `return`.
        next: String,
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

    /// Steps this one can go to, with a label (for reachability and graphs).
    pub fn edges(&self) -> Vec<(String, String)> {
        let mut e: Vec<(String, String)> = Vec::new();
        let mut add = |label: &str, t: &Option<String>| {
            if let Some(t) = t {
                e.push((label.to_string(), t.clone()));
            }
        };
        match self {
            StepKind::Say { next, .. }
            | StepKind::Set { next, .. }
            | StepKind::Call { next, .. } => add("", &Some(next.clone())),
            StepKind::Gather(g) => {
                for i in &g.intents {
                    let label = match &i.dtmf {
                        Some(d) => format!("{} [{}]", i.name, d),
                        None => i.name.clone(),
                    };
                    add(&label, &Some(i.goto.clone()));
                }
                add("value", &g.next);
                add("no input", &g.no_input);
                add("no match", &g.no_match);
            }
            StepKind::Branch { when, otherwise } => {
                for c in when {
                    add(&cond_label(c), &Some(c.goto.clone()));
                }
                add("else", &Some(otherwise.clone()));
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
                add("ok", &Some(next.clone()));
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
                add("ok", &Some(next.clone()));
                add("taken", on_taken);
                add("empty", on_empty);
                add("unavailable", on_unavailable);
                add("error", on_error);
            }
            StepKind::Goto(t) => add("", &Some(t.clone())),
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
    if let Some(h) = c.holiday {
        parts.push(if h {
            "holiday".into()
        } else {
            "not holiday".into()
        });
    }
    parts.join(", ")
}
