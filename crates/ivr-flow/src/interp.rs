//! The interpreter: a pure state machine over a validated flow. Events in
//! ([`Event`]), actions out ([`Action`]), wall-clock time passed in. No I/O,
//! no clock reads, no threads: the engine owns those.
//!
//! ```text
//! let mut it = Interpreter::new(route, CallContext { caller, lang: None });
//! let actions = it.start(now);             // Say..., Gather{..}
//! let actions = it.handle(Event::Speech{..}, now);
//! ```
//!
//! Execution rules the engine relies on:
//! - Actions are performed in order. `Say` queues audio; `Gather` starts
//!   listening once the queued audio has played (or at once with barge-in).
//! - `Transfer` and `Hangup` are performed after queued audio has played.
//! - `Invoke` asks for an integration; the engine answers with
//!   `Event::Result` (a timeout is `Response::Unavailable`).
//! - A caller not understood twice in a gather goes to its `no_match`
//!   (validated to offer keys or a human) or, without one, to a human in the
//!   municipality's fallback department. After [`MAX_MISUNDERSTOOD`] failed
//!   turns in one call the caller is always handed to a human (or, when
//!   closed, told when it opens) whatever the flow says: no endless loops.
//! - After `Transfer` the interpreter waits: `Event::Hangup` means the call
//!   left the bot (outcome `transferred`); `Event::TransferFailed` goes to the
//!   step's `if_failed`, or, without one, the caller hears an apology and is
//!   put through to the fallback department (once, when it is open and was
//!   not the one that failed) or told to call again later (outcome `failed`).
//!
//! # Personal speech
//!
//! Every `Say` carries a [`Speech`]: [`Speech::Static`] may be cached on disk
//! and in memory, [`Speech::Personal`] never is. The rule is safe by default:
//! a prompt is personal when its template is marked `personal = true` in the
//! flow, or when it renders any variable that is not known to be public.
//! Public are only values the engine itself produced from public sources:
//! - built-ins `municipality`, `lang`, `today`, `now`;
//! - template functions `{next_open:..}`, `{window:..}`, `{department:..}`,
//!   `{queue:..}` (opening-hours words, department and queue names);
//! - `intent`, and a `save_as` of an intent or yes/no gather (the intent's
//!   name, chosen from the flow's own list);
//! - `slot_count` and `slot1`..`slot3`: free times Frontdesk offers anyone;
//! - a `set` variable whose template uses only public parts (`queue = "pas"`,
//!   `chosen = "{slot1}"`, `dept_opens = "{next_open:jobcenter}"`).
//!
//! Everything else is personal: `caller`, every value a caller said or keyed
//! (`save_as` of `text`, `cpr`, `phone`, `digits`, `number`, `date`, `time`),
//! the booking reference and time of the caller's own appointment
//! (`booking_ref`, `booked_at`, `cancelled_at`), any `set` variable built
//! from one of them, and any variable not set at all. Built-in prompts
//! ("Sorry, I did not understand that.") and "We open again ..." are static.
//!
//! # Language of the caller
//!
//! When the municipality allows several languages:
//! - until the first speech turn of the call, `Gather::identify` lists them:
//!   the engine identifies the language of that turn among exactly those;
//! - a transcript not understood in the current language and not yet
//!   identified is answered with only `RecognizeAgain` (no failure counted);
//! - an identified transcript in another allowed language switches the
//!   conversation to it (`SetLanguage`) when it is a language request, is
//!   understood in that language, or answers a `RecognizeAgain` after the
//!   current language failed; on the first turn, otherwise, the same audio is
//!   recognised again in the current language (`RecognizeAgain` with only that
//!   language),
//!   because whisper base identifies short or robotic Danish as English often
//!   (`crates/ivr-stt/tests/language_id.rs`) and a wrong switch costs the
//!   caller more than one more recognition;
//! - "English please", "engelsk", "Can I speak English", "dansk tak", "på
//!   dansk" switch in either direction and ask the question again.

use std::{collections::BTreeMap, fmt, sync::Arc, time::Duration};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use chrono_tz::{Europe::Copenhagen, Tz};
use ivr_core::{Dtmf, Lang, Pii, Speech, WallClock};

use crate::model::PUBLIC_BUILTINS;
use crate::{
    carry::Heard,
    hours::holiday_on,
    intents::{self, Decision},
    keys,
    model::*,
    speak,
    understand::{self, normalize},
};

mod meaning;
mod questions;
pub use meaning::{Meaning, MeaningWanted};
pub use questions::QuestionRecord;

/// Slots offered per `frontdesk` `slots` step (`slot1` .. `slot3`).
pub const MAX_SLOTS: usize = 3;
/// Failed turns (no input or not understood) per call before a human takes over.
pub const MAX_MISUNDERSTOOD: u32 = 4;
/// Steps executed without waiting before the interpreter gives up (a guard;
/// the validator already refuses loops that never wait).
const STEP_BUDGET: u32 = 200;
/// Below this STT confidence an utterance counts as not understood (except
/// for `expect = "text"`, whose words are kept as heard).
const MIN_STT_CONFIDENCE: f32 = 0.3;

/// How a call ended, for the call record and statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Settled by the bot (information given).
    Resolved,
    /// Handed to a human queue.
    Transferred,
    /// A callback was ordered.
    CallbackOrdered,
    /// A message/cancellation was mailed.
    MailSent,
    /// A Frontdesk appointment was booked.
    Booked,
    /// A Frontdesk appointment was cancelled.
    Cancelled,
    /// The caller hung up first.
    Abandoned,
    /// The bot could not help and no human was available.
    Failed,
}

impl Outcome {
    /// Parses the TOML name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "resolved" => Self::Resolved,
            "transferred" => Self::Transferred,
            "callback_ordered" => Self::CallbackOrdered,
            "mail_sent" => Self::MailSent,
            "booked" => Self::Booked,
            "cancelled" => Self::Cancelled,
            "abandoned" => Self::Abandoned,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// The TOML name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolved => "resolved",
            Self::Transferred => "transferred",
            Self::CallbackOrdered => "callback_ordered",
            Self::MailSent => "mail_sent",
            Self::Booked => "booked",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
            Self::Failed => "failed",
        }
    }
}

/// A Frontdesk appointment slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Frontdesk's id of the slot.
    pub id: String,
    /// When it starts.
    pub start: DateTime<Utc>,
}

/// An integration request the engine performs and answers with
/// [`Event::Result`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// Store a callback request durably and hand it to the contact centre.
    StoreCallback {
        /// Municipality id.
        municipality: String,
        /// Department that calls back.
        department: String,
        /// Number to call.
        number: Pii<String>,
        /// What it is about.
        topic: Pii<String>,
        /// Earliest time to call.
        window_start: DateTime<Utc>,
        /// Latest time to call.
        window_end: DateTime<Utc>,
        /// Language of the caller.
        lang: Lang,
    },
    /// Send a mail.
    SendMail {
        /// Municipality id.
        municipality: String,
        /// What the mail is (the step's `kind`, e.g. `jobcentre_cancellation`,
        /// `out_of_hours_message`), for integrations that compose mails themselves.
        kind: Option<String>,
        /// Addresses.
        to: Vec<String>,
        /// Subject.
        subject: Pii<String>,
        /// Body.
        body: Pii<String>,
        /// Every variable the subject and body use, plus `caller` and `lang`,
        /// as plain text (dates DD-MM-YYYY, times HH:MM).
        fields: Vec<(String, Pii<String>)>,
    },
    /// Free slots of a queue from an instant.
    FrontdeskSlots {
        /// Municipality id.
        municipality: String,
        /// Queue id.
        queue: String,
        /// Earliest start.
        from: DateTime<Utc>,
        /// How many.
        count: usize,
    },
    /// Book a slot.
    FrontdeskBook {
        /// Municipality id.
        municipality: String,
        /// Queue id.
        queue: String,
        /// The slot.
        slot: Slot,
        /// The citizen's name (the `name` variable, when the flow asked for it).
        name: Option<Pii<String>>,
        /// Who (CPR), when asked for.
        cpr: Option<Pii<String>>,
        /// Caller number.
        phone: Pii<String>,
    },
    /// Cancel a booking.
    FrontdeskCancel {
        /// Municipality id.
        municipality: String,
        /// Queue id.
        queue: String,
        /// Who (CPR), when asked for.
        cpr: Option<Pii<String>>,
        /// Date of the appointment, when asked for.
        date: Option<NaiveDate>,
        /// Caller number.
        phone: Pii<String>,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Response {
    /// Done (callback stored, mail sent).
    Ok,
    /// Free slots (may be empty).
    Slots(Vec<Slot>),
    /// Booked.
    Booked {
        /// Booking reference read back to the caller.
        reference: String,
        /// Start of the appointment.
        start: DateTime<Utc>,
    },
    /// Cancelled.
    Cancelled {
        /// Start of the cancelled appointment, if known.
        start: Option<DateTime<Utc>>,
    },
    /// The slot was taken meanwhile (book).
    SlotTaken,
    /// Nothing to cancel was found.
    NotFound,
    /// The system is unreachable or timed out.
    Unavailable,
    /// Any other failure (kind only; details go to the engine's log).
    Error,
}

/// What the engine tells the interpreter.
///
/// Exhaustive on purpose: every consumer in the workspace matches it, so a new
/// event is a compile error where it must be handled.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A final transcript of the caller's turn.
    Speech {
        /// The words.
        text: Pii<String>,
        /// STT confidence 0..1.
        confidence: f32,
        /// The language the words were transcribed in, if known.
        lang: Option<Lang>,
        /// True when `lang` was identified among the municipality's languages
        /// for this transcript (asked for by [`Action::Gather::identify`] or
        /// [`Action::RecognizeAgain`]); false when the recogniser was told the
        /// language.
        identified: bool,
    },
    /// One key.
    Dtmf(Dtmf),
    /// The caller spoke, but the speech recogniser could not take the
    /// utterance (its queue was full in a peak, or no model is loaded). A
    /// question that takes keys answers with a short notice naming them
    /// ([`crate::keys`]) and listens for keys only, as does every later
    /// question of the call; this is not counted as a failed turn. A
    /// question that takes no keys counts it as not understood (its
    /// `no_match` leads to keys or a human).
    SpeechUnavailable,
    /// Nothing heard before the gather's timeout (also ends a key entry).
    NoInput,
    /// The answer to the last `Invoke`.
    Result(Response),
    /// The transfer asked for by the last [`Action::Transfer`] failed: the
    /// REFER was refused or the target did not answer (`Some(status)`), or no
    /// outcome came in time (`None`). The call is still with the bot.
    TransferFailed {
        /// The SIP status behind the failure, if one came.
        status: Option<u16>,
    },
    /// The caller hung up (after a transfer: the call has left the bot).
    Hangup,
}

/// What the interpreter asks the engine to do.
///
/// Exhaustive on purpose: every consumer in the workspace matches it, so a new
/// action is a compile error in the engine rather than a warning at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Speak (TTS). [`Speech::Static`] may be cached (static prompts are
    /// pre-rendered); [`Speech::Personal`] goes through the non-caching
    /// synthesis only. See the module docs for which is which.
    Say {
        /// What to say.
        speech: Speech,
        /// Voice language.
        lang: Lang,
        /// Caller speech interrupts it.
        barge_in: bool,
    },
    /// Play an audio file (relative to the municipality folder).
    Play {
        /// Path.
        file: String,
        /// Caller speech interrupts it.
        barge_in: bool,
    },
    /// Listen: the question is open once the audio queued before it has
    /// played (keys pressed during that audio already answer it).
    Gather {
        /// Listen for speech.
        speech: bool,
        /// Listen for keys.
        dtmf: bool,
        /// STT hints.
        hints: Vec<String>,
        /// The answers this question expects, for STT to score against the
        /// audio: each intent's name with its keywords in `lang` (yes/no
        /// questions: "yes"/"no" with their words). Empty for free answers
        /// (names, numbers, dates), which stay free.
        candidates: Vec<(String, Vec<String>)>,
        /// Language for STT.
        lang: Lang,
        /// Silence before `NoInput` (also the pause between keys that ends an
        /// entry without `#`, capped by the engine's inter-key limit).
        timeout: Duration,
        /// The most keys of one entry: the interpreter completes the entry
        /// itself at this many keys (or at `#`), so the engine stops the
        /// inter-key timer once it has fed this many keys.
        max_digits: u32,
        /// Whether caller speech (or a key) during the prompts queued before
        /// this gather cuts them; the same value those prompts' `Say` carries.
        barge_in: bool,
        /// Non-empty: recognise this turn with language identification among
        /// exactly these languages (whisper's probabilities restricted to
        /// them) and answer with `Event::Speech { identified: true, .. }`. Set
        /// until the first speech turn of a call whose municipality allows
        /// several languages.
        identify: Vec<Lang>,
    },
    /// The last transcript was not understood in the current language and the
    /// municipality allows several: recognise the SAME utterance again with
    /// language identification among `among` and feed `Event::Speech` again
    /// with `identified = true`. No failure is counted until it arrives.
    /// With only the current language in `among`, the utterance was identified
    /// as another language but not understood in it: recognise it again in the
    /// current language.
    RecognizeAgain {
        /// The languages to identify among (the municipality's, or only the
        /// current one).
        among: Vec<Lang>,
    },
    /// The conversation language changed (STT and voice follow).
    SetLanguage(Lang),
    /// Hand the call to a human queue. The interpreter then waits for
    /// `Event::TransferFailed` (the flow goes on) or `Event::Hangup` (the call
    /// left the bot: transferred).
    Transfer {
        /// Department id.
        department: String,
        /// Target from the department table.
        target: String,
        /// Context fields (intent, language, ...) for SIP headers.
        context: Vec<(String, Pii<String>)>,
    },
    /// Call an integration; answer with `Event::Result`.
    Invoke(Request),
    /// End the call.
    Hangup {
        /// How it ended.
        outcome: Outcome,
    },
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// Caller number (From), as given by the trunk.
    pub caller: Pii<String>,
    /// Language to start in; the municipality's default when `None`.
    pub lang: Option<Lang>,
}

/// Where a called number leads.
#[derive(Debug, Clone)]
pub struct Route {
    /// The municipality snapshot (calls keep theirs across reloads).
    pub municipality: Arc<Municipality>,
    /// Entry flow name.
    pub entry: String,
}

/// A value of a variable. Its `Debug` redacts: variables hold CPR numbers,
/// names and phone numbers.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// Text.
    Text(String),
    /// Whole number.
    Number(u64),
    /// Date.
    Date(NaiveDate),
    /// Time of day.
    Time(NaiveTime),
    /// Local date and time.
    DateTime(NaiveDateTime),
    /// Digits (CPR, phone).
    Digits(String),
    /// A Frontdesk slot.
    Slot(Slot),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Value {
    /// Plain text for mails, context headers and comparisons (ISO dates, HH:MM, digits).
    pub fn plain(&self) -> String {
        match self {
            Value::Text(s) | Value::Digits(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Date(d) => d.format("%d-%m-%Y").to_string(),
            Value::Time(t) => t.format("%H:%M").to_string(),
            Value::DateTime(dt) => dt.format("%d-%m-%Y %H:%M").to_string(),
            Value::Slot(s) => s
                .start
                .with_timezone(&Copenhagen)
                .format("%d-%m-%Y %H:%M")
                .to_string(),
        }
    }
}

/// Steps and outcome of one call, for the call record.
#[derive(Debug, Clone, Default)]
pub struct CallRecord {
    /// Steps run, as `flow/step`.
    pub steps: Vec<String>,
    /// Intents recognised, in order.
    pub intents: Vec<String>,
    /// Failed turns.
    pub misunderstood: u32,
    /// Language at the end.
    pub lang: Option<Lang>,
    /// Set when the call ended.
    pub outcome: Option<Outcome>,
    /// Department transferred to.
    pub transferred_to: Option<String>,
    /// Questions answered from the knowledge base (or declined), in order.
    pub questions: Vec<QuestionRecord>,
}

#[derive(Debug, Clone, PartialEq)]
enum Waiting {
    Nothing,
    /// For the caller, at this gather step.
    Gather(StepId),
    /// For the answer of this step's integration request.
    Result(StepId),
    /// A transfer is under way; `from` is the flow step that asked for it
    /// (`None`: the interpreter's own fallback transfer).
    Transfer {
        from: Option<StepId>,
        department: String,
    },
    /// For a yes/no to an answer of gather `step` taken from what the
    /// caller said earlier; "yes" goes on to `target`.
    Confirm {
        step: StepId,
        target: StepId,
    },
    Done,
}

/// What to restore when the caller rejects an answer taken from earlier.
#[derive(Debug, Clone)]
struct Undo {
    vars: BTreeMap<String, Value>,
    public: std::collections::BTreeSet<String>,
    intents: usize,
}

/// The outcome of trying to answer a gather from earlier utterances.
enum Prefilled {
    /// Answered without a word: go on here.
    Go(StepId),
    /// Answered; the confirmation is asked.
    Confirming,
    /// Nothing earlier answers it: ask.
    Ask,
}

/// Failed transfers per call after which no more transfers are tried.
pub const MAX_TRANSFER_FAILURES: u32 = 3;

/// Which answers [`Interpreter::would_answer`] may take before the end
/// silence (`[turn] end_on_answer`, `end_on_open_answer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// Yes/no, CPR and phone numbers only.
    Closed,
    /// Also a menu's errand and a date, when the words sound finished.
    ClosedAndOpen,
}

/// One call's conversation.
#[derive(Debug, Clone)]
pub struct Interpreter {
    muni: Arc<Municipality>,
    entry: String,
    caller: Pii<String>,
    lang: Lang,
    vars: BTreeMap<String, Value>,
    /// Where each running `call` step continues after its flow returns.
    stack: Vec<StepId>,
    waiting: Waiting,
    attempts: u32,
    dtmf: String,
    achieved: Option<Outcome>,
    record: CallRecord,
    /// A language switch detected while understanding, applied before moving on.
    pending_lang: Option<Lang>,
    /// Variables known to hold no personal data (see the module docs).
    public: std::collections::BTreeSet<String>,
    /// A speech turn has been heard in this call.
    heard_speech: bool,
    /// `RecognizeAgain` was asked for; the identified transcript is awaited.
    recognizing_again: bool,
    /// Departments whose transfer failed in this call, in order.
    failed_transfers: Vec<String>,
    /// A question being answered at the current gather (`questions.rs`).
    question: Option<questions::Pending>,
    /// Everything the caller said in this call (see [`crate::carry`]).
    heard: Heard,
    /// True while an earlier utterance is offered to a gather.
    prefilling: bool,
    /// Restores the variables when a confirmed earlier answer is rejected.
    confirm_undo: Option<Box<Undo>>,
    /// Explanations of decisions (scores, answers from earlier turns), when
    /// asked for (`ivr simulate --explain`). They quote the caller: personal.
    explain: Option<Vec<Pii<String>>>,
    /// The last turn's words and their meaning (the municipality's encoder):
    /// a turn is embedded once, however many of intents, knowledge and the
    /// errand-or-question rule look at it. Call state like the transcript
    /// itself (personal), never kept beyond the call.
    turn_vector: Option<Pii<(String, Arc<[f32]>)>>,
    /// Set on the copy [`Interpreter::meaning_wanted`] runs: which words
    /// would be embedded (none are).
    probe: meaning::Probe,
    /// The clarifying question asked at the current gather: the two intents
    /// (places in its `intents`) the next answer chooses between.
    clarifying: Option<(usize, usize)>,
    /// Set while understanding a turn: two intents scored too close to
    /// choose; the gather asks which one instead of failing.
    clarify_request: Option<(usize, usize)>,
    /// The recogniser could not take an utterance in this call
    /// ([`Event::SpeechUnavailable`]): questions that take keys listen for
    /// keys only and name them. Kept for the rest of the call: a caller is
    /// not switched back and forth, and each call that moves to keys leaves
    /// the recogniser to the others in a peak.
    keys_only: bool,
}

enum Fail {
    NoInput,
    NoMatch,
}

/// Built-in prompts (also pre-rendered: see [`builtin_prompts`]).
fn sys(key: &str, lang: Lang) -> &'static str {
    match (key, lang) {
        ("sorry", Lang::En) => "Sorry, I did not understand that.",
        ("sorry", _) => "Undskyld, det forstod jeg ikke.",
        ("silence", Lang::En) => "Sorry, I did not hear anything.",
        ("silence", _) => "Undskyld, jeg hørte ikke noget.",
        ("to_human", Lang::En) => "I will put you through to a member of staff.",
        ("to_human", _) => "Jeg stiller dig videre til en medarbejder.",
        ("closed", Lang::En) => "We are closed right now.",
        ("closed", _) => "Vi har lukket lige nu.",
        ("goodbye", Lang::En) => "Thank you for calling. Goodbye.",
        ("goodbye", _) => "Tak for opkaldet. Farvel.",
        ("error", Lang::En) => "Sorry, something went wrong.",
        ("error", _) => "Beklager, der gik noget galt.",
        ("transfer_failed", Lang::En) => "Sorry, nobody could take your call just now.",
        ("transfer_failed", _) => "Beklager, ingen kunne tage dit opkald lige nu.",
        ("call_later", Lang::En) => "Please call again later. Goodbye.",
        ("call_later", _) => "Prøv at ringe igen senere. Farvel.",
        ("did_it_answer", Lang::En) => "Did that answer your question?",
        ("did_it_answer", _) => "Fik du svar på dit spørgsmål?",
        ("did_it_answer_keys", Lang::En) => {
            "Did that answer your question? Say yes or no, or press 1 for yes and 2 for no."
        }
        ("did_it_answer_keys", _) => {
            "Fik du svar på dit spørgsmål? Sig ja eller nej, eller tryk 1 for ja og 2 for nej."
        }
        ("glad", Lang::En) => "Good.",
        ("glad", _) => "Godt.",
        ("cannot_answer", Lang::En) => "Sorry, I cannot answer that question.",
        ("cannot_answer", _) => "Det spørgsmål kan jeg desværre ikke svare på.",
        _ => "",
    }
}

/// Every built-in prompt the interpreter may say, per language (pre-render these too).
pub fn builtin_prompts() -> Vec<(Lang, String)> {
    let mut v = Vec::new();
    for l in Lang::ALL {
        for k in [
            "sorry",
            "silence",
            "to_human",
            "closed",
            "goodbye",
            "error",
            "transfer_failed",
            "call_later",
            "did_it_answer",
            "did_it_answer_keys",
            "glad",
            "cannot_answer",
        ] {
            v.push((l, sys(k, l).to_string()));
        }
        v.push((l, keys::busy_notice(l).to_string()));
        v.push((l, keys::yes_no_notice(l).to_string()));
    }
    v
}

impl Interpreter {
    /// A new conversation on a route.
    pub fn new(route: Route, ctx: CallContext) -> Self {
        let lang = ctx
            .lang
            .filter(|l| route.municipality.languages.contains(l))
            .unwrap_or(route.municipality.default_lang());
        let mut vars = BTreeMap::new();
        let caller_digits: String = ctx
            .caller
            .expose()
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        vars.insert(
            "caller".to_string(),
            Value::Digits(national(&caller_digits)),
        );
        vars.insert(
            "municipality".to_string(),
            Value::Text(route.municipality.name.clone()),
        );
        let public = ["municipality".to_string()].into_iter().collect();
        Self {
            muni: route.municipality,
            entry: route.entry,
            caller: Pii::new(caller_digits),
            lang,
            vars,
            stack: Vec::new(),
            waiting: Waiting::Nothing,
            attempts: 0,
            dtmf: String::new(),
            achieved: None,
            record: CallRecord::default(),
            pending_lang: None,
            public,
            heard_speech: false,
            recognizing_again: false,
            failed_transfers: Vec::new(),
            question: None,
            heard: Heard::default(),
            prefilling: false,
            confirm_undo: None,
            explain: None,
            clarifying: None,
            turn_vector: None,
            probe: meaning::Probe::Off,
            clarify_request: None,
            keys_only: false,
        }
    }

    /// Whether the call listens for keys only since the recogniser could not
    /// take an utterance ([`Event::SpeechUnavailable`]).
    pub fn keys_only(&self) -> bool {
        self.keys_only
    }

    /// Keys only from now on, before any utterance was refused: the engine
    /// calls this when the recogniser's queue is already full as the call
    /// goes on, so the next question is asked with its keys from the start
    /// (a caller who speaks would only be refused). Kept for the rest of
    /// the call, as after a refusal.
    pub fn prefer_keys(&mut self) {
        self.keys_only = true;
    }

    /// Collects explanations of each decision from now on (see
    /// [`Interpreter::take_explanations`]); off by default.
    pub fn set_explain(&mut self, on: bool) {
        self.explain = on.then(Vec::new);
    }

    /// The explanations collected since the last call: intent candidates
    /// with their scores, values heard in each turn, answers taken from
    /// earlier turns. They quote the caller (personal): for the simulator
    /// and tests, never for logs.
    pub fn take_explanations(&mut self) -> Vec<Pii<String>> {
        self.explain
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn explain(&mut self, f: impl FnOnce(&Self) -> String) {
        if self.explain.is_some() {
            let line = f(self);
            if let Some(v) = self.explain.as_mut() {
                v.push(Pii::new(line));
            }
        }
    }

    /// What the caller has said in this call.
    pub fn heard(&self) -> &Heard {
        &self.heard
    }

    /// Sets a variable; `public` says it holds no personal data (see the
    /// module docs). Every assignment goes through here.
    fn set_var(&mut self, name: &str, value: Value, public: bool) {
        if public {
            self.public.insert(name.to_string());
        } else {
            self.public.remove(name);
        }
        self.vars.insert(name.to_string(), value);
    }

    fn unset_var(&mut self, name: &str) {
        self.public.remove(name);
        self.vars.remove(name);
    }

    /// Whether rendering `t` may put personal data into the text.
    fn is_personal(&self, t: &Template) -> bool {
        t.personal || t.parts.iter().any(|p| self.is_personal_part(p))
    }

    /// A variable that is not known to be public.
    fn is_personal_part(&self, p: &Part) -> bool {
        match p {
            Part::Lit(_) | Part::Func { .. } => false,
            Part::Var { name, .. } => {
                !(PUBLIC_BUILTINS.contains(&name.as_str()) || self.public.contains(name.as_str()))
            }
        }
    }

    /// The public words of a personal template in front of its first
    /// personal value, spoken on their own ([`crate::model::lead_in`]),
    /// and where the personal rest starts: "You want to cancel your
    /// {queue_name} appointment on {date|date}" leads in with "You want to
    /// cancel your passport appointment on,". The lead-in must end in the
    /// template's own words (not in a value). None for a template marked
    /// `personal` as a whole.
    fn lead_in(&self, tpl: &Template, now: DateTime<Utc>) -> Option<(String, usize)> {
        if tpl.personal {
            return None;
        }
        let k = tpl.parts.iter().position(|p| self.is_personal_part(p))?;
        let Some(Part::Lit(_)) = k.checked_sub(1).and_then(|i| tpl.parts.get(i)) else {
            return None;
        };
        let text = self.render_parts(&tpl.parts[..k], now, Mode::Speech);
        crate::model::lead_in(&text).map(|l| (l, k))
    }

    /// The current language.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// True once the call has ended (hangup, or a transfer that went through).
    pub fn is_done(&self) -> bool {
        self.waiting == Waiting::Done
    }

    /// True while a transfer is under way: the interpreter waits for
    /// `Event::TransferFailed` or `Event::Hangup`.
    pub fn is_transferring(&self) -> bool {
        matches!(self.waiting, Waiting::Transfer { .. })
    }

    /// The record so far.
    pub fn record(&self) -> &CallRecord {
        &self.record
    }

    /// True while the call waits for the answer to a question back: which of
    /// two intents, or which of two knowledge entries, the caller meant.
    pub fn is_asking_back(&self) -> bool {
        self.clarifying.is_some() || self.question.as_ref().is_some_and(|q| q.is_clarify())
    }

    /// A variable (tests and the simulator).
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }

    /// Every variable set, by name (the console's flow debugger; values
    /// are personal data).
    pub fn vars(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Starts the call: the announcement, if any, then the entry flow.
    pub fn start(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(a) = self.muni.announcement.clone() {
            if a.until.is_none_or(|u| now < u) {
                self.say_text(&a.text, false, now, &mut out);
            }
        }
        let Some(start) = self.muni.flow_named(&self.entry).map(|f| f.start) else {
            self.give_up(now, &mut out);
            return out;
        };
        self.run(start, now, &mut out);
        out
    }

    /// [`Interpreter::start`] reading the time from a clock.
    pub fn start_at(&mut self, clock: &dyn WallClock) -> Vec<Action> {
        self.start(clock.now_utc())
    }

    /// [`Interpreter::handle`] reading the time from a clock.
    pub fn handle_at(&mut self, event: Event, clock: &dyn WallClock) -> Vec<Action> {
        self.handle(event, clock.now_utc())
    }

    /// Whether `event` (the caller's answer so far) completely answers what
    /// the call waits for now. Tried on a copy, so nothing of the call
    /// changes (but the turn's meaning, once worked out, is kept for the
    /// turn): true when the copy moves on without counting a failed turn and
    /// without asking to recognise the audio again. The engine's end of turn
    /// uses it (`[turn] end_on_answer`): a transcript of the audio so far
    /// that already answers the question ends the caller's turn at a short
    /// pause.
    ///
    /// Closed answers are taken as they are: a yes/no (a yes/no question, or
    /// the confirmation of an earlier answer), a CPR number (ten checked
    /// digits), a phone number. Open answers are taken only with
    /// [`Answers::ClosedAndOpen`] and only when the words sound finished
    /// ([`crate::ending`]): a menu's errand (the first words of a sentence
    /// can already score an intent: "jeg ringer angående ..." must not end
    /// the turn) and a date (ending on what closes a date, not on its day:
    /// "den femtende ... marts"). Free text (a name), numbers and times are never taken early:
    /// any of their first words pass as an answer.
    pub fn would_answer(&mut self, event: Event, now: DateTime<Utc>, answers: Answers) -> bool {
        let expect = match self.waiting {
            Waiting::Confirm { .. } => Expect::YesNo,
            Waiting::Gather(id) => match self.step(id).map(|st| st.kind) {
                Some(StepKind::Gather(g)) => g.expect,
                _ => return false,
            },
            _ => return false,
        };
        match expect {
            Expect::YesNo | Expect::Cpr | Expect::Phone => {}
            Expect::Intent | Expect::Date if answers == Answers::ClosedAndOpen => {
                let Event::Speech { text, lang, .. } = &event else {
                    return false;
                };
                let lang = lang.unwrap_or(self.lang);
                let heard = text.expose();
                if crate::ending::sounds_unfinished(heard, lang)
                    || (expect == Expect::Date && !crate::ending::date_sounds_finished(heard))
                {
                    return false;
                }
            }
            _ => return false,
        }
        let mut copy = self.clone();
        copy.explain = None;
        let actions = copy.handle(event, now);
        // The same words, heard again as the turn (the caller stays silent),
        // need not be embedded twice.
        if copy.turn_vector.is_some() {
            self.turn_vector = copy.turn_vector.take();
        }
        copy.waiting != self.waiting
            && copy.record.misunderstood == self.record.misunderstood
            && !copy.recognizing_again
            && !actions
                .iter()
                .any(|a| matches!(a, Action::RecognizeAgain { .. }))
    }

    /// Feeds one event; returns what to do next.
    pub fn handle(&mut self, event: Event, now: DateTime<Utc>) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.waiting.clone(), event) {
            (Waiting::Done, _) => {}
            (Waiting::Transfer { .. }, Event::Hangup) => self.finish(Outcome::Transferred),
            (_, Event::Hangup) => self.finish(Outcome::Abandoned),
            (Waiting::Transfer { from, department }, Event::TransferFailed { status }) => {
                let _ = status;
                self.on_transfer_failed(from, &department, now, &mut out)
            }
            (Waiting::Gather(id), ev) => self.on_gather(id, ev, now, &mut out),
            (Waiting::Confirm { step, target }, ev) => {
                self.on_confirm(step, target, ev, now, &mut out)
            }
            (Waiting::Result(id), Event::Result(r)) => self.on_result(id, r, now, &mut out),
            (
                Waiting::Nothing | Waiting::Result(_) | Waiting::Transfer { .. },
                Event::Speech { .. }
                | Event::SpeechUnavailable
                | Event::Dtmf(_)
                | Event::NoInput
                | Event::Result(_)
                | Event::TransferFailed { .. },
            ) => {}
        }
        out
    }

    fn step(&self, id: StepId) -> Option<Step> {
        self.muni.step(id).cloned()
    }

    fn finish(&mut self, outcome: Outcome) {
        self.waiting = Waiting::Done;
        self.record.outcome = Some(outcome);
        self.record.lang = Some(self.lang);
    }

    fn run(&mut self, mut step: StepId, now: DateTime<Utc>, out: &mut Vec<Action>) {
        for _ in 0..STEP_BUDGET {
            let Some(st) = self.step(step) else {
                self.give_up(now, out);
                return;
            };
            self.record.steps.push(self.muni.step_path(step));
            let next: StepId = match &st.kind {
                StepKind::Say { text, audio, next } => {
                    if let Some(a) = audio {
                        out.push(Action::Play {
                            file: a.clone(),
                            barge_in: true,
                        });
                    } else if let Some(t) = text {
                        self.say_text(t, true, now, out);
                    }
                    *next
                }
                StepKind::Gather(g) => {
                    self.attempts = 0;
                    self.dtmf.clear();
                    match self.prefill(step, g, now, out) {
                        Prefilled::Go(target) => target,
                        Prefilled::Confirming => return,
                        Prefilled::Ask => {
                            self.ask(g, &g.prompt, None, now, out);
                            self.waiting = Waiting::Gather(step);
                            return;
                        }
                    }
                }
                StepKind::Branch { when, otherwise } => when
                    .iter()
                    .find(|c| self.cond(c, now))
                    .map_or(*otherwise, |c| c.goto),
                StepKind::Set { vars, next } => {
                    for (k, t) in vars {
                        let v = self.eval(t, now);
                        let public = !self.is_personal(t);
                        if k.as_str() == "lang" {
                            if let Ok(l) = v.plain().parse::<Lang>() {
                                if l != self.lang && self.muni.languages.contains(&l) {
                                    self.lang = l;
                                    out.push(Action::SetLanguage(l));
                                }
                            }
                        }
                        self.set_var(k.as_str(), v, public);
                    }
                    *next
                }
                StepKind::Transfer {
                    department,
                    context,
                    if_closed,
                    ..
                } => {
                    if self.failed_transfers.len() as u32 >= MAX_TRANSFER_FAILURES {
                        self.say_sys("call_later", out);
                        self.hangup(Outcome::Failed, out);
                        return;
                    }
                    let open = self
                        .muni
                        .departments
                        .get(department)
                        .is_some_and(|d| d.hours.is_open(now));
                    if open {
                        self.transfer(department, context, Some(step), now, out);
                        return;
                    }
                    match if_closed {
                        Some(t) => *t,
                        None => {
                            self.say_closed(department, now, out);
                            self.hangup(Outcome::Resolved, out);
                            return;
                        }
                    }
                }
                StepKind::Callback {
                    department,
                    topic,
                    number_var,
                    ..
                } => {
                    let (ws, we) = self.window(department, now);
                    let number = self
                        .vars
                        .get(number_var.as_str())
                        .map(Value::plain)
                        .unwrap_or_default();
                    let topic = self.render(topic, now, Mode::Plain);
                    out.push(Action::Invoke(Request::StoreCallback {
                        municipality: self.muni.id.clone(),
                        department: department.clone(),
                        number: Pii::new(number),
                        topic: Pii::new(topic),
                        window_start: ws,
                        window_end: we,
                        lang: self.lang,
                    }));
                    self.waiting = Waiting::Result(step);
                    return;
                }
                StepKind::Mail {
                    kind,
                    to,
                    subject,
                    body,
                    ..
                } => {
                    let to = to
                        .iter()
                        .filter_map(|r| match r {
                            Ref::Fixed(address) => Some(address.clone()),
                            Ref::Var(v) => self.vars.get(v.as_str()).map(Value::plain),
                        })
                        .filter(|a| !a.trim().is_empty())
                        .collect();
                    let mut fields: Vec<(String, Pii<String>)> = Vec::new();
                    let mut names =
                        vec![VarName("caller".to_string()), VarName("lang".to_string())];
                    for p in subject.parts.iter().chain(body.parts.iter()) {
                        if let Part::Var { name, .. } = p {
                            if !names.contains(name) {
                                names.push(name.clone());
                            }
                        }
                    }
                    let today = now.with_timezone(&Copenhagen).date_naive();
                    for n in names {
                        let v = self
                            .var_value(&n, now)
                            .map(|v| self.speak_value(&v, None, Mode::Plain, today))
                            .unwrap_or_default();
                        fields.push((n.0, Pii::new(v)));
                    }
                    let subject = Pii::new(self.render(subject, now, Mode::Plain));
                    let body = Pii::new(self.render(body, now, Mode::Plain));
                    out.push(Action::Invoke(Request::SendMail {
                        municipality: self.muni.id.clone(),
                        kind: kind.clone(),
                        to,
                        subject,
                        body,
                        fields,
                    }));
                    self.waiting = Waiting::Result(step);
                    return;
                }
                StepKind::Frontdesk {
                    op,
                    queue,
                    slot_var,
                    cpr_var,
                    date_var,
                    ..
                } => {
                    // A fixed queue was checked at load; a variable's value now.
                    let queue = match queue {
                        Ref::Fixed(q) => q.clone(),
                        Ref::Var(v) => self
                            .vars
                            .get(v.as_str())
                            .map(Value::plain)
                            .unwrap_or_default(),
                    };
                    if !self.muni.queues.contains_key(&queue) {
                        self.say_sys("error", out);
                        self.give_up(now, out);
                        return;
                    }
                    let queue = &queue;
                    let cpr = cpr_var
                        .as_ref()
                        .and_then(|v| self.vars.get(v.as_str()))
                        .map(|v| Pii::new(v.plain()));
                    let phone = Pii::new(self.caller.expose().clone());
                    let req = match op {
                        FrontdeskOp::Slots => Request::FrontdeskSlots {
                            municipality: self.muni.id.clone(),
                            queue: queue.clone(),
                            from: now,
                            count: MAX_SLOTS,
                        },
                        FrontdeskOp::Book => {
                            let Some(Value::Slot(slot)) = slot_var
                                .as_ref()
                                .and_then(|v| self.vars.get(v.as_str()))
                                .cloned()
                            else {
                                self.give_up(now, out);
                                return;
                            };
                            Request::FrontdeskBook {
                                municipality: self.muni.id.clone(),
                                queue: queue.clone(),
                                slot,
                                name: self.vars.get("name").map(|v| Pii::new(v.plain())),
                                cpr,
                                phone,
                            }
                        }
                        FrontdeskOp::Cancel => {
                            let date = date_var
                                .as_ref()
                                .and_then(|v| self.vars.get(v.as_str()))
                                .and_then(|v| match v {
                                    Value::Date(d) => Some(*d),
                                    Value::DateTime(dt) => Some(dt.date()),
                                    _ => None,
                                });
                            Request::FrontdeskCancel {
                                municipality: self.muni.id.clone(),
                                queue: queue.clone(),
                                cpr,
                                date,
                                phone,
                            }
                        }
                    };
                    out.push(Action::Invoke(req));
                    self.waiting = Waiting::Result(step);
                    return;
                }
                StepKind::Goto(t) => *t,
                StepKind::Call { flow: sub, next } => {
                    let Some(start) = self.muni.flow(sub.id).map(|f| f.start) else {
                        self.give_up(now, out);
                        return;
                    };
                    self.stack.push(*next);
                    start
                }
                StepKind::Return => match self.stack.pop() {
                    Some(back) => back,
                    None => {
                        self.say_sys("goodbye", out);
                        self.hangup(Outcome::Resolved, out);
                        return;
                    }
                },
                StepKind::Hangup { text, outcome } => {
                    if let Some(t) = text {
                        self.say_text(t, false, now, out);
                    }
                    let o = match (outcome, self.achieved) {
                        (Outcome::Resolved, Some(a)) => a,
                        (o, _) => *o,
                    };
                    self.hangup(o, out);
                    return;
                }
            };
            step = next;
        }
        self.give_up(now, out);
    }

    fn hangup(&mut self, outcome: Outcome, out: &mut Vec<Action>) {
        out.push(Action::Hangup { outcome });
        self.finish(outcome);
    }

    fn transfer(
        &mut self,
        department: &str,
        context: &[(String, Template)],
        from: Option<StepId>,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        let target = self
            .muni
            .departments
            .get(department)
            .map(|d| d.target.clone())
            .unwrap_or_default();
        let mut ctx: Vec<(String, Pii<String>)> =
            vec![("lang".into(), Pii::new(self.lang.code().to_string()))];
        if let Some(i) = self.record.intents.last() {
            ctx.push(("intent".into(), Pii::new(i.clone())));
        }
        for (k, t) in context {
            let v = self.render(t, now, Mode::Plain);
            ctx.retain(|(ck, _)| ck != k);
            ctx.push((k.clone(), Pii::new(v)));
        }
        out.push(Action::Transfer {
            department: department.to_string(),
            target,
            context: ctx,
        });
        self.record.transferred_to = Some(department.to_string());
        self.record.outcome = Some(Outcome::Transferred);
        self.record.lang = Some(self.lang);
        self.waiting = Waiting::Transfer {
            from,
            department: department.to_string(),
        };
    }

    /// The transfer did not go through: the step's `if_failed`, or an
    /// apology and [`Self::give_up`] (which does not try a department that
    /// failed again).
    fn on_transfer_failed(
        &mut self,
        from: Option<StepId>,
        department: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        self.failed_transfers.push(department.to_string());
        self.record.transferred_to = None;
        self.record.outcome = None;
        self.waiting = Waiting::Nothing;
        if (self.failed_transfers.len() as u32) < MAX_TRANSFER_FAILURES {
            if let Some(StepKind::Transfer {
                if_failed: Some(t), ..
            }) = from.and_then(|id| self.muni.step(id)).map(|s| &s.kind)
            {
                let t = *t;
                self.run(t, now, out);
                return;
            }
        }
        self.say_sys("transfer_failed", out);
        self.give_up(now, out);
    }

    /// The caller cannot be helped by the flow: a human in the fallback
    /// department, or when it is closed, when it opens.
    fn give_up(&mut self, now: DateTime<Utc>, out: &mut Vec<Action>) {
        let fb = self.muni.fallback.clone();
        let open = self
            .muni
            .departments
            .get(&fb)
            .is_some_and(|d| d.hours.is_open(now));
        let may_transfer = !self.failed_transfers.contains(&fb)
            && (self.failed_transfers.len() as u32) < MAX_TRANSFER_FAILURES;
        if open && may_transfer {
            self.say_sys("to_human", out);
            self.transfer(&fb, &[], None, now, out);
        } else if !open {
            self.say_closed(&fb, now, out);
            self.hangup(Outcome::Failed, out);
        } else {
            self.say_sys("call_later", out);
            self.hangup(Outcome::Failed, out);
        }
    }

    fn say_closed(&mut self, department: &str, now: DateTime<Utc>, out: &mut Vec<Action>) {
        self.say_sys("closed", out);
        let when = self.next_open_words(department, now);
        let text = match self.lang {
            Lang::En => format!("We open again {when}."),
            _ => format!("Vi åbner igen {when}."),
        };
        // Opening-hours words: public, cacheable.
        out.push(Action::Say {
            speech: Speech::Static(text),
            lang: self.lang,
            barge_in: false,
        });
    }

    fn say_sys(&self, key: &str, out: &mut Vec<Action>) {
        out.push(Action::Say {
            speech: Speech::Static(sys(key, self.lang).to_string()),
            lang: self.lang,
            barge_in: false,
        });
    }

    /// A built-in sentence that holds no personal data (keys cut it, the
    /// caller's voice does not).
    fn say_static(&self, text: &str, out: &mut Vec<Action>) {
        out.push(Action::Say {
            speech: Speech::Static(text.to_string()),
            lang: self.lang,
            barge_in: false,
        });
    }

    fn say_text(&self, t: &Text, barge_in: bool, now: DateTime<Utc>, out: &mut Vec<Action>) {
        let Some(tpl) = t.get(self.lang) else {
            return;
        };
        if !self.is_personal(tpl) {
            out.push(Action::Say {
                speech: Speech::Static(self.render(tpl, now, Mode::Speech)),
                lang: self.lang,
                barge_in,
            });
            return;
        }
        match self.lead_in(tpl, now) {
            Some((lead, k)) => {
                let rest = self.render_parts(&tpl.parts[k..], now, Mode::Speech);
                self.say_personal(Some(lead), rest, barge_in, out);
            }
            None => self.say_personal(None, self.render(tpl, now, Mode::Speech), barge_in, out),
        }
    }

    /// Personal speech, after its public lead-in when it has one
    /// ([`Self::lead_in`]): the lead-in is a prompt of its own, played
    /// from the cache at once, and the personal rest is synthesised (never
    /// cached) while it plays, so the caller hears the reply start without
    /// waiting for a synthesis.
    fn say_personal(
        &self,
        lead: Option<String>,
        rest: String,
        barge_in: bool,
        out: &mut Vec<Action>,
    ) {
        if let Some(lead) = lead {
            out.push(Action::Say {
                speech: Speech::Static(lead),
                lang: self.lang,
                barge_in,
            });
        }
        out.push(Action::Say {
            speech: Speech::Personal(Pii::new(rest)),
            lang: self.lang,
            barge_in,
        });
    }

    fn ask(
        &mut self,
        g: &Gather,
        prompt: &Text,
        prefix: Option<&str>,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        // Keys only in this call: a question written for speech names its
        // keys after its prompt (a keys-only question's prompt already does),
        // and the caller's voice no longer cuts the prompts (keys still do).
        let notice = (self.keys_only && g.speech)
            .then(|| keys::keys_notice(g, self.lang))
            .flatten();
        let speech = g.speech && notice.is_none();
        let barge_in = g.barge_in && speech;
        if let Some(p) = prefix {
            self.say_sys(p, out);
        }
        self.say_text(prompt, barge_in, now, out);
        if let Some(n) = notice {
            out.push(Action::Say {
                speech: Speech::Static(n),
                lang: self.lang,
                barge_in,
            });
        }
        // Until the caller has spoken once, the turn could be in any of the
        // municipality's languages.
        let identify = if speech && !self.heard_speech && self.muni.languages.len() > 1 {
            self.muni.languages.clone()
        } else {
            Vec::new()
        };
        out.push(Action::Gather {
            speech,
            dtmf: g.dtmf,
            hints: g.hints.get(&self.lang).cloned().unwrap_or_default(),
            candidates: candidates(g, self.lang),
            lang: self.lang,
            timeout: Duration::from_secs(u64::from(g.timeout_secs)),
            max_digits: g.max_digits,
            barge_in,
            identify,
        });
    }

    fn on_gather(&mut self, id: StepId, ev: Event, now: DateTime<Utc>, out: &mut Vec<Action>) {
        let Some(st) = self.step(id) else {
            return;
        };
        let StepKind::Gather(g) = &st.kind else {
            return;
        };
        if self.question.is_some() {
            self.on_question_reply(id, g, ev, now, out);
            return;
        }
        match ev {
            Event::Speech {
                text,
                confidence,
                lang,
                identified,
            } => {
                if !g.speech {
                    return;
                }
                self.heard_speech = true;
                let again = std::mem::take(&mut self.recognizing_again);
                let heard = text.expose();
                // The language was identified for this very utterance as
                // another allowed one. Identification alone does not switch
                // the call: whisper base calls much robotic or short Danish
                // English. The transcript (made in that language) must be a
                // language request or be understood in it; otherwise the same
                // audio is recognised again in the current language.
                let foreign = lang
                    .filter(|l| identified && *l != self.lang && self.muni.languages.contains(l));
                if let Some(l) = understand::language_request(heard) {
                    if self.muni.languages.contains(&l) {
                        if l != self.lang {
                            self.lang = l;
                            out.push(Action::SetLanguage(l));
                        }
                        self.dtmf.clear();
                        self.clarifying = None;
                        self.ask(g, &g.prompt, None, now, out);
                        return;
                    }
                }
                // "Gentag" / "repeat": ask again without counting a failure.
                if matches!(g.expect, Expect::Intent | Expect::YesNo)
                    && understand::repeat_request(heard)
                {
                    self.dtmf.clear();
                    match self.clarifying.take() {
                        Some((a, b)) => self.ask_clarification(g, a, b, now, out),
                        None => self.ask(g, &g.prompt, None, now, out),
                    }
                    return;
                }
                // Kept for the questions still to come in this call.
                if confidence >= MIN_STT_CONFIDENCE {
                    let l = lang
                        .filter(|l| self.muni.languages.contains(l))
                        .unwrap_or(self.lang);
                    if self.heard.keep(&text, l, now, id, g.expect, again) {
                        self.explain_turn(id);
                    }
                }
                // Free text (a name, a message) is passed on as heard to a
                // person who reads it: whisper is rarely sure of names, and
                // refusing an unsure transcript only makes the caller say it
                // again, no clearer. Everything the flow must understand
                // itself needs a confident transcript.
                // A question the knowledge base answers (questions.rs).
                if self.question_first(
                    id,
                    g,
                    heard,
                    confidence,
                    foreign.unwrap_or(self.lang),
                    now,
                    out,
                ) {
                    return;
                }
                if let Some(l) = foreign {
                    let current = self.lang;
                    let understood = if confidence < MIN_STT_CONFIDENCE || g.expect == Expect::Text
                    {
                        None
                    } else {
                        self.understand_speech(g, heard, l, now)
                    };
                    self.pending_lang = None;
                    let clarify = self.clarify_request.take();
                    match understood {
                        Some(target) => {
                            self.lang = l;
                            out.push(Action::SetLanguage(l));
                            self.waiting_then_run(target, now, out);
                        }
                        // Understood in that language, between two intents:
                        // ask which, in it.
                        None if clarify.is_some() => {
                            self.lang = l;
                            out.push(Action::SetLanguage(l));
                            if let Some((a, b)) = clarify {
                                self.ask_clarification(g, a, b, now, out);
                            }
                        }
                        // A question in that language the knowledge base
                        // cannot answer: declined in it (questions.rs).
                        None if self.question_last_in(id, g, heard, confidence, l, now, out) => {}
                        // Identified on the first turn, with no transcript in
                        // the current language yet: make one.
                        None if !again => {
                            self.recognizing_again = true;
                            out.push(Action::RecognizeAgain {
                                among: vec![current],
                            });
                        }
                        // Already not understood in the current language, and
                        // identified as this one: the caller speaks it; ask
                        // again in it.
                        None => {
                            self.lang = l;
                            out.push(Action::SetLanguage(l));
                            self.fail(g, Fail::NoMatch, now, out);
                        }
                    }
                    return;
                }
                let understood = if confidence < MIN_STT_CONFIDENCE && g.expect != Expect::Text {
                    None
                } else {
                    self.understand_speech(g, heard, self.lang, now)
                };
                if let Some(l) = self.pending_lang.take() {
                    if l != self.lang {
                        self.lang = l;
                        out.push(Action::SetLanguage(l));
                    }
                }
                let clarify = self.clarify_request.take();
                match understood {
                    Some(target) => self.waiting_then_run(target, now, out),
                    // Two intents too close to choose: ask which.
                    None if clarify.is_some() => {
                        if let Some((a, b)) = clarify {
                            self.ask_clarification(g, a, b, now, out);
                        }
                    }
                    // Not understood in this language: perhaps it was
                    // another one. Same audio again, with identification.
                    None if !identified
                        && !again
                        && self.muni.languages.len() > 1
                        && !heard.trim().is_empty() =>
                    {
                        self.recognizing_again = true;
                        out.push(Action::RecognizeAgain {
                            among: self.muni.languages.clone(),
                        });
                    }
                    None if self.question_last(id, g, heard, confidence, now, out) => {}
                    None => self.fail(g, Fail::NoMatch, now, out),
                }
            }
            Event::Dtmf(k) => {
                if !g.dtmf {
                    return;
                }
                self.recognizing_again = false;
                self.clarifying = None;
                match k {
                    // A lone '#' (e.g. after an entry already complete) is not an entry.
                    Dtmf::Hash if self.dtmf.is_empty() => return,
                    Dtmf::Hash => {}
                    Dtmf::Star => {
                        self.dtmf.clear();
                        return;
                    }
                    k => self.dtmf.push(k.as_char()),
                }
                let complete = k == Dtmf::Hash || self.dtmf.len() as u32 >= g.max_digits || {
                    matches!(g.expect, Expect::Intent | Expect::YesNo)
                        && g.intents
                            .iter()
                            .any(|i| i.dtmf.as_deref() == Some(self.dtmf.as_str()))
                        && !g.intents.iter().any(|i| {
                            i.dtmf.as_deref().is_some_and(|d| {
                                d.len() > self.dtmf.len() && d.starts_with(self.dtmf.as_str())
                            })
                        })
                };
                if complete {
                    self.complete_dtmf(g, now, out);
                }
            }
            Event::NoInput => {
                self.recognizing_again = false;
                self.clarifying = None;
                if !self.dtmf.is_empty() {
                    self.complete_dtmf(g, now, out);
                } else {
                    self.fail(g, Fail::NoInput, now, out);
                }
            }
            Event::SpeechUnavailable => {
                if !g.speech {
                    return;
                }
                self.recognizing_again = false;
                self.clarifying = None;
                self.speech_unavailable(id, g, now, out);
            }
            Event::Result(_) | Event::TransferFailed { .. } | Event::Hangup => {}
        }
    }

    /// The recogniser could not take the caller's answer to `g`: keys from
    /// now on, announced with what to press; without keys for this
    /// question, it was not understood.
    fn speech_unavailable(
        &mut self,
        id: StepId,
        g: &Gather,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        let Some(notice) = keys::keys_notice(g, self.lang) else {
            self.fail(g, Fail::NoMatch, now, out);
            return;
        };
        self.keys_only = true;
        self.dtmf.clear();
        self.explain(|me| format!("{}: speech unavailable: keys", me.muni.step_path(id)));
        // Not cut by the caller's voice (keys still cut it).
        for text in [keys::busy_notice(self.lang).to_string(), notice] {
            out.push(Action::Say {
                speech: Speech::Static(text),
                lang: self.lang,
                barge_in: false,
            });
        }
        out.push(Action::Gather {
            speech: false,
            dtmf: true,
            hints: Vec::new(),
            candidates: Vec::new(),
            lang: self.lang,
            timeout: Duration::from_secs(u64::from(g.timeout_secs)),
            max_digits: g.max_digits,
            barge_in: false,
            identify: Vec::new(),
        });
    }

    fn explain_turn(&mut self, at: StepId) {
        self.explain(|me| {
            let Some(u) = me.heard.all().last() else {
                return String::new();
            };
            let values: Vec<String> = u
                .values
                .iter()
                .map(|(k, v)| format!("{}={}", k.as_str(), v.expose()))
                .collect();
            format!(
                "turn {} at {} [{}]: \"{}\"{}",
                u.turn,
                me.muni.step_path(at),
                u.lang,
                u.text.expose(),
                if values.is_empty() {
                    String::new()
                } else {
                    format!(" heard {}", values.join(" "))
                }
            )
        });
    }

    fn undo_point(&self) -> Undo {
        Undo {
            vars: self.vars.clone(),
            public: self.public.clone(),
            intents: self.record.intents.len(),
        }
    }

    fn restore(&mut self, u: Undo) {
        self.vars = u.vars;
        self.public = u.public;
        self.record.intents.truncate(u.intents);
    }

    /// What gather `g` took as its answer, for explanations.
    fn answer_words(&self, g: &Gather) -> String {
        match g.expect {
            Expect::Intent | Expect::YesNo => {
                self.record.intents.last().cloned().unwrap_or_default()
            }
            _ => g
                .save_as
                .as_ref()
                .and_then(|n| self.vars.get(n.as_str()))
                .map(Value::plain)
                .unwrap_or_default(),
        }
    }

    /// Before gather `step` asks: the newest earlier utterance of the call
    /// that the gather's own understanding reads as an answer, taken without
    /// a word or confirmed (`prefill`, see [`crate::carry`]).
    fn prefill(
        &mut self,
        step: StepId,
        g: &Gather,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) -> Prefilled {
        if g.prefill == Prefill::Off || !g.speech {
            return Prefilled::Ask;
        }
        for i in self.heard.candidates(step) {
            let Some(u) = self.heard.get(i).cloned() else {
                continue;
            };
            let undo = self.undo_point();
            // Understood as an answer at this gather (per-flow settings
            // are read from the gather waited at).
            let before = std::mem::replace(&mut self.waiting, Waiting::Gather(step));
            self.prefilling = true;
            let got = self.understand_speech(g, u.text.expose(), u.lang, u.at);
            self.prefilling = false;
            self.pending_lang = None;
            self.waiting = before;
            let Some(target) = got else {
                self.restore(undo);
                continue;
            };
            self.heard.mark_used(i, step);
            let confirm = g.prefill == Prefill::Confirm
                && (g.prefill_prompt.is_some() || self.spoken_answer(g, now).is_some());
            self.explain(|me| {
                format!(
                    "{}: answered from turn {}: {}{}",
                    me.muni.step_path(step),
                    u.turn,
                    me.answer_words(g),
                    if confirm { " (asking to confirm)" } else { "" }
                )
            });
            if !confirm {
                return Prefilled::Go(target);
            }
            self.confirm_undo = Some(Box::new(undo));
            self.ask_confirm(g, now, out);
            self.waiting = Waiting::Confirm { step, target };
            return Prefilled::Confirming;
        }
        Prefilled::Ask
    }

    /// The value gather `g` saved, as spoken ("mandag den 7. december").
    fn spoken_answer(&self, g: &Gather, now: DateTime<Utc>) -> Option<String> {
        let v = self.vars.get(g.save_as.as_ref()?.as_str())?;
        let format = match g.expect {
            Expect::Date => Format::Date,
            Expect::Time => Format::Time,
            Expect::Phone => Format::Phone,
            Expect::Cpr => Format::Cpr,
            Expect::Number => Format::Number,
            Expect::Digits => Format::Digits,
            Expect::Intent | Expect::YesNo | Expect::Text => return None,
        };
        let today = now.with_timezone(&Copenhagen).date_naive();
        Some(self.speak_value(v, Some(format), Mode::Speech, today))
    }

    /// "Du vil aflyse din tid til pas mandag den 7. december, er det
    /// rigtigt?" (the gather's `prefill_prompt`) or "Jeg hørte ... Er det
    /// rigtigt?", then a yes/no listen (1 = yes, 2 = no).
    fn ask_confirm(&mut self, g: &Gather, now: DateTime<Utc>, out: &mut Vec<Action>) {
        match &g.prefill_prompt {
            Some(t) => self.say_text(t, g.barge_in, now, out),
            None => {
                let mut v = self.spoken_answer(g, now).unwrap_or_default();
                if g.expect == Expect::Time && self.lang == Lang::Da {
                    v = format!("klokken {v}");
                }
                let rest = match self.lang {
                    Lang::En => format!("{v}. Is that correct?"),
                    _ => format!("{v}. Er det rigtigt?"),
                };
                let lead = crate::model::lead_in(confirm_lead_in(self.lang));
                self.say_personal(lead, rest, g.barge_in, out);
            }
        }
        let keys_only = self.keys_only && g.dtmf;
        if keys_only {
            self.say_static(keys::yes_no_notice(self.lang), out);
        }
        out.push(Action::Gather {
            speech: !keys_only,
            dtmf: g.dtmf,
            hints: Vec::new(),
            // "Jeg hørte ... Er det rigtigt?": yes or no. Without hints no
            // prompt is given, so the answers found are kept unchecked.
            candidates: yes_no_candidates(self.lang),
            lang: self.lang,
            timeout: Duration::from_secs(u64::from(g.timeout_secs)),
            max_digits: 1,
            barge_in: g.barge_in,
            identify: Vec::new(),
        });
    }

    /// The caller's answer to a confirmation of an earlier answer: "ja"
    /// goes on; "nej" (or anything else) undoes it and asks the question,
    /// unless the same words answer it ("nej, på tirsdag").
    fn on_confirm(
        &mut self,
        step: StepId,
        target: StepId,
        ev: Event,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        let Some(st) = self.step(step) else {
            return;
        };
        let StepKind::Gather(g) = &st.kind else {
            return;
        };
        let mut said = None;
        let yes = match &ev {
            Event::Speech {
                text,
                confidence,
                lang,
                ..
            } => {
                self.heard_speech = true;
                let heard = text.expose();
                if let Some(l) = understand::language_request(heard) {
                    if self.muni.languages.contains(&l) {
                        if l != self.lang {
                            self.lang = l;
                            out.push(Action::SetLanguage(l));
                        }
                        self.ask_confirm(g, now, out);
                        return;
                    }
                }
                if understand::repeat_request(heard) {
                    self.ask_confirm(g, now, out);
                    return;
                }
                let l = lang
                    .filter(|l| self.muni.languages.contains(l))
                    .unwrap_or(self.lang);
                if *confidence >= MIN_STT_CONFIDENCE {
                    said = Some((text.clone(), l));
                    understand::parse_yes_no(heard)
                } else {
                    None
                }
            }
            Event::Dtmf(Dtmf::D1) if g.dtmf => Some(true),
            Event::Dtmf(Dtmf::D2) if g.dtmf => Some(false),
            Event::SpeechUnavailable if g.dtmf => {
                // The confirmation is asked again, on keys.
                self.keys_only = true;
                self.say_static(keys::busy_notice(self.lang), out);
                self.ask_confirm(g, now, out);
                return;
            }
            Event::Dtmf(_) | Event::NoInput | Event::SpeechUnavailable => None,
            Event::Result(_) | Event::TransferFailed { .. } | Event::Hangup => return,
        };
        self.waiting = Waiting::Nothing;
        let undo = self.confirm_undo.take();
        if let Some((text, l)) = &said {
            if self.heard.keep(text, *l, now, step, g.expect, false) {
                self.explain_turn(step);
            }
        }
        if yes == Some(true) {
            self.explain(|me| format!("{}: confirmed", me.muni.step_path(step)));
            self.run(target, now, out);
            return;
        }
        if let Some(u) = undo {
            self.restore(*u);
        }
        self.explain(|me| format!("{}: not confirmed: asking", me.muni.step_path(step)));
        // "Nej, på tirsdag": the same words may answer the question.
        if let Some((text, l)) = said {
            if g.expect != Expect::YesNo {
                if let Some(t) = self.understand_speech(g, text.expose(), l, now) {
                    self.run(t, now, out);
                    return;
                }
            }
        }
        self.attempts = 0;
        self.dtmf.clear();
        self.ask(g, &g.prompt, None, now, out);
        self.waiting = Waiting::Gather(step);
    }

    fn complete_dtmf(&mut self, g: &Gather, now: DateTime<Utc>, out: &mut Vec<Action>) {
        let keys = std::mem::take(&mut self.dtmf);
        match self.understand_keys(g, &keys, now) {
            Some(target) => self.waiting_then_run(target, now, out),
            None => self.fail(g, Fail::NoMatch, now, out),
        }
    }

    fn waiting_then_run(&mut self, target: StepId, now: DateTime<Utc>, out: &mut Vec<Action>) {
        self.waiting = Waiting::Nothing;
        self.run(target, now, out);
    }

    fn choose(&mut self, g: &Gather, i: &Intent) -> StepId {
        let name = i.name.clone();
        self.record.intents.push(name.clone());
        // The intent's name comes from the flow: public.
        if matches!(g.expect, Expect::Intent) {
            self.set_var("intent", Value::Text(name.clone()), true);
        }
        if let Some(s) = &g.save_as {
            self.set_var(s.as_str(), Value::Text(name), true);
        }
        i.goto
    }

    /// Keeps what the caller said or keyed: personal.
    fn save(&mut self, g: &Gather, v: Value) -> Option<StepId> {
        if let Some(s) = &g.save_as {
            self.set_var(s.as_str(), v, false);
        }
        g.next
    }

    /// The meaning of `text` (its vector by the municipality's encoder), made
    /// once per text: `None` without an encoder or when it fails (the words
    /// alone decide then).
    fn meaning_of(&mut self, text: &str) -> Option<Arc<[f32]>> {
        if let Some(tv) = &self.turn_vector {
            let (t, v) = tv.expose();
            if t == text {
                return Some(v.clone());
            }
        }
        // (The copy of `meaning_wanted` only notes which words.)
        if self.probed(text) {
            return None;
        }
        let v: Arc<[f32]> = self
            .muni
            .encoder
            .as_ref()?
            .embed(text, crate::semantic::Role::Query)
            .ok()?
            .into();
        self.turn_vector = Some(Pii::new((text.to_string(), v.clone())));
        Some(v)
    }

    /// What `heard` answers, read as `lang` (the call's language, or the
    /// one a transcript was identified in).
    fn understand_speech(
        &mut self,
        g: &Gather,
        heard: &str,
        lang: Lang,
        now: DateTime<Utc>,
    ) -> Option<StepId> {
        let today = now.with_timezone(&Copenhagen).date_naive();
        let norm = normalize(heard);
        match g.expect {
            Expect::Intent => {
                // The turn's meaning, once (the municipality's encoder; a
                // failure to embed leaves the words alone to decide).
                // What the caller corrected to, as the words are read.
                let query = self.meaning_of(crate::understand::corrected(heard));
                if self.probe_found() {
                    // A copy finding out which words it would embed: it knows.
                    return None;
                }
                let langs = self.muni.languages.clone();
                // (Words said earlier are no answer to a clarifying question.)
                if let Some((a, b)) = self.clarifying.take().filter(|_| !self.prefilling) {
                    let picked = intents::resolve_clarification(
                        g,
                        a,
                        b,
                        heard,
                        lang,
                        &langs,
                        query.as_deref(),
                    );
                    return picked
                        .and_then(|i| g.intents.get(i))
                        .map(|i| self.choose(g, i));
                }
                let scored = intents::score(g, heard, lang, &langs, query.as_deref());
                let understanding = match &self.waiting {
                    Waiting::Gather(id) => self
                        .muni
                        .flow(id.flow)
                        .map(|f| f.understanding)
                        .unwrap_or_default(),
                    _ => Understanding::default(),
                };
                self.explain(|me| {
                    let at = match &me.waiting {
                        Waiting::Gather(id) => me.muni.step_path(*id),
                        _ => String::from("?"),
                    };
                    let shown: Vec<String> = scored
                        .iter()
                        .filter(|s| s.score > 0.0 || s.cosine.is_some())
                        .take(5)
                        .filter_map(|s| {
                            let name = &g.intents.get(s.intent)?.name;
                            Some(match s.cosine {
                                Some(c) => format!(
                                    "{name} {:.2} (words {:.2}, meaning {c:.2})",
                                    s.score, s.lexical
                                ),
                                None => format!("{name} {:.2} (words)", s.score),
                            })
                        })
                        .collect();
                    format!(
                        "{at}: intent scores [{lang}]{}: {}",
                        if me.prefilling { " (earlier turn)" } else { "" },
                        if shown.is_empty() {
                            "none".to_string()
                        } else {
                            shown.join(", ")
                        }
                    )
                });
                // Words said earlier answer a question only when they pick
                // one of its intents clearly (a close runner-up to another
                // destination: the question is asked).
                if self.prefilling {
                    let goto = |x: &intents::Scored| g.intents.get(x.intent).map(|i| i.goto);
                    if let Some(best) = scored.first() {
                        let close = scored.iter().skip(1).find(|x| goto(x) != goto(best));
                        if close.is_some_and(|r| best.score - r.score < understanding.margin) {
                            return None;
                        }
                    }
                }
                let out_of_scope = intents::out_of_scope_similarity(&self.muni, query.as_deref());
                match intents::decide(&scored, g, &understanding, out_of_scope) {
                    Decision::Chosen { intent, lang } => {
                        if let Some(i) = g.intents.get(intent) {
                            if let Some(l) = lang {
                                self.pending_lang = Some(l);
                            }
                            return Some(self.choose(g, i));
                        }
                    }
                    Decision::Clarify { first, second } => {
                        if !self.prefilling {
                            self.clarify_request = Some((first, second));
                        }
                        return None;
                    }
                    Decision::NotUnderstood => {}
                }
                // "et" / "one" / "tryk 1" for a menu key (an answer to this
                // question, not words said earlier).
                if !self.prefilling && norm.split(' ').count() <= 3 {
                    if let Some(n) = understand::parse_number(&norm) {
                        let key = n.to_string();
                        if let Some(i) = g
                            .intents
                            .iter()
                            .find(|i| i.dtmf.as_deref() == Some(key.as_str()))
                        {
                            return Some(self.choose(g, i));
                        }
                    }
                }
                None
            }
            Expect::YesNo => {
                let yes = understand::parse_yes_no(heard)?;
                let name = if yes { "yes" } else { "no" };
                let i = g.intents.iter().find(|i| i.name == name)?;
                Some(self.choose(g, i))
            }
            Expect::Number => {
                understand::parse_number(heard).and_then(|n| self.save(g, Value::Number(n)))
            }
            Expect::Date => {
                understand::parse_date(heard, today).and_then(|d| self.save(g, Value::Date(d)))
            }
            Expect::Time => {
                understand::parse_time(heard).and_then(|t| self.save(g, Value::Time(t)))
            }
            Expect::Cpr => understand::parse_cpr(heard)
                .ok()
                .and_then(|c| self.save(g, Value::Digits(c.digits.into_inner()))),
            Expect::Phone => understand::parse_phone(heard)
                .and_then(|p| self.save(g, Value::Digits(p.into_inner()))),
            Expect::Digits => {
                let d = understand::spoken_digits(heard);
                if d.is_empty() {
                    None
                } else {
                    self.save(g, Value::Digits(d))
                }
            }
            Expect::Text => {
                if heard.trim().is_empty() {
                    None
                } else {
                    self.save(g, Value::Text(heard.trim().to_string()))
                }
            }
        }
    }

    fn understand_keys(&mut self, g: &Gather, keys: &str, now: DateTime<Utc>) -> Option<StepId> {
        let today = now.with_timezone(&Copenhagen).date_naive();
        match g.expect {
            Expect::Intent | Expect::YesNo => {
                if let Some(i) = g.intents.iter().find(|i| i.dtmf.as_deref() == Some(keys)) {
                    return Some(self.choose(g, i));
                }
                if g.expect == Expect::YesNo {
                    let name = match keys {
                        "1" => "yes",
                        "2" => "no",
                        _ => return None,
                    };
                    let i = g.intents.iter().find(|i| i.name == name)?;
                    return Some(self.choose(g, i));
                }
                None
            }
            Expect::Number => keys
                .parse()
                .ok()
                .and_then(|n| self.save(g, Value::Number(n))),
            Expect::Date => {
                let n = |r: std::ops::Range<usize>| keys.get(r).and_then(|s| s.parse::<u32>().ok());
                let d = match keys.len() {
                    4 => n(0..2)
                        .zip(n(2..4))
                        .and_then(|(d, m)| understand::parse_date(&format!("{d}/{m}"), today)),
                    8 => n(0..2)
                        .zip(n(2..4))
                        .zip(n(4..8))
                        .and_then(|((d, m), y)| NaiveDate::from_ymd_opt(y as i32, m, d)),
                    _ => None,
                }?;
                self.save(g, Value::Date(d))
            }
            Expect::Time => {
                let t = if keys.len() == 4 {
                    NaiveTime::parse_from_str(keys, "%H%M").ok()
                } else {
                    None
                }?;
                self.save(g, Value::Time(t))
            }
            Expect::Cpr => understand::parse_cpr(keys)
                .ok()
                .and_then(|c| self.save(g, Value::Digits(c.digits.into_inner()))),
            Expect::Phone => understand::parse_phone(keys)
                .and_then(|p| self.save(g, Value::Digits(p.into_inner()))),
            Expect::Digits | Expect::Text => self.save(g, Value::Digits(keys.to_string())),
        }
    }

    /// Asks which of two close intents the caller meant, and listens again
    /// at the same gather for the answer.
    fn ask_clarification(
        &mut self,
        g: &Gather,
        first: usize,
        second: usize,
        now: DateTime<Utc>,
        out: &mut Vec<Action>,
    ) {
        let q = intents::clarify_question(g, first, second, self.lang);
        let text = Text(
            [(
                self.lang,
                Template {
                    source: q.clone(),
                    parts: vec![Part::Lit(q)],
                    personal: false,
                },
            )]
            .into_iter()
            .collect(),
        );
        self.dtmf.clear();
        self.clarifying = Some((first, second));
        self.ask(g, &text, None, now, out);
    }

    fn fail(&mut self, g: &Gather, why: Fail, now: DateTime<Utc>, out: &mut Vec<Action>) {
        self.attempts += 1;
        self.record.misunderstood += 1;
        self.dtmf.clear();
        if self.record.misunderstood >= MAX_MISUNDERSTOOD {
            self.waiting = Waiting::Nothing;
            self.give_up(now, out);
            return;
        }
        if self.attempts <= g.retries {
            let prefix = match why {
                Fail::NoInput => "silence",
                Fail::NoMatch => "sorry",
            };
            let prompt = g.reprompt.clone().unwrap_or_else(|| g.prompt.clone());
            self.ask(g, &prompt, Some(prefix), now, out);
            return;
        }
        let target = match why {
            Fail::NoInput => g.no_input.or(g.no_match),
            Fail::NoMatch => g.no_match,
        };
        self.waiting = Waiting::Nothing;
        match target {
            Some(t) => {
                let prefix = match why {
                    Fail::NoInput => "silence",
                    Fail::NoMatch => "sorry",
                };
                self.say_sys(prefix, out);
                self.run(t, now, out)
            }
            None => self.give_up(now, out),
        }
    }

    fn on_result(&mut self, id: StepId, r: Response, now: DateTime<Utc>, out: &mut Vec<Action>) {
        let Some(st) = self.step(id) else {
            return;
        };
        self.waiting = Waiting::Nothing;
        let fallback_err = |on_error: &Option<StepId>| *on_error;
        let target: Option<StepId> = match (&st.kind, r) {
            (StepKind::Callback { next, .. }, Response::Ok) => {
                self.achieved = Some(Outcome::CallbackOrdered);
                Some(*next)
            }
            (StepKind::Callback { on_error, .. }, _) => fallback_err(on_error),
            (StepKind::Mail { next, .. }, Response::Ok) => {
                self.achieved = Some(Outcome::MailSent);
                Some(*next)
            }
            (StepKind::Mail { on_error, .. }, _) => fallback_err(on_error),
            (
                StepKind::Frontdesk {
                    next,
                    on_empty,
                    on_error,
                    ..
                },
                Response::Slots(slots),
            ) => {
                if slots.is_empty() {
                    (*on_empty).or(*on_error)
                } else {
                    // Free times offered to anyone: public.
                    for i in 1..=MAX_SLOTS {
                        self.unset_var(&format!("slot{i}"));
                    }
                    self.set_var(
                        "slot_count",
                        Value::Number(slots.len().min(MAX_SLOTS) as u64),
                        true,
                    );
                    for (i, s) in slots.into_iter().take(MAX_SLOTS).enumerate() {
                        self.set_var(&format!("slot{}", i + 1), Value::Slot(s), true);
                    }
                    Some(*next)
                }
            }
            (StepKind::Frontdesk { next, .. }, Response::Booked { reference, start }) => {
                self.achieved = Some(Outcome::Booked);
                // The caller's own appointment: personal.
                self.set_var("booking_ref", Value::Text(reference), false);
                self.set_var(
                    "booked_at",
                    Value::Slot(Slot {
                        id: String::new(),
                        start,
                    }),
                    false,
                );
                Some(*next)
            }
            (StepKind::Frontdesk { next, .. }, Response::Cancelled { start }) => {
                self.achieved = Some(Outcome::Cancelled);
                if let Some(s) = start {
                    self.set_var(
                        "cancelled_at",
                        Value::Slot(Slot {
                            id: String::new(),
                            start: s,
                        }),
                        false,
                    );
                }
                Some(*next)
            }
            (
                StepKind::Frontdesk {
                    on_taken, on_error, ..
                },
                Response::SlotTaken | Response::NotFound,
            ) => (*on_taken).or(*on_error),
            (
                StepKind::Frontdesk {
                    on_unavailable,
                    on_error,
                    ..
                },
                Response::Unavailable,
            ) => (*on_unavailable).or(*on_error),
            (StepKind::Frontdesk { on_error, .. }, _) => *on_error,
            _ => None,
        };
        match target {
            Some(t) => self.run(t, now, out),
            None => {
                self.say_sys("error", out);
                self.give_up(now, out)
            }
        }
    }

    fn cond(&self, c: &Cond, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&Copenhagen);
        let dept_open = |d: &str| {
            self.muni
                .departments
                .get(d)
                .is_some_and(|d| d.hours.is_open(now))
        };
        c.open.as_ref().is_none_or(|d| dept_open(d))
            && c.closed.as_ref().is_none_or(|d| !dept_open(d))
            && c.lang.is_none_or(|l| l == self.lang)
            && c.caller_prefix.as_ref().is_none_or(|p| {
                self.caller.expose().starts_with(p.as_str())
                    || national(self.caller.expose()).starts_with(p.as_str())
            })
            && c.var
                .as_ref()
                .is_none_or(|v| match (self.vars.get(v.as_str()), &c.equals) {
                    (Some(val), Some(e)) => normalize(&val.plain()) == *e,
                    (Some(_), None) => true,
                    (None, _) => false,
                })
            && c.before.is_none_or(|t| local.time() < t)
            && c.after.is_none_or(|t| local.time() >= t)
            && c.weekday
                .as_ref()
                .is_none_or(|w| w.contains(&local.weekday()))
            && c.holiday
                .is_none_or(|h| holiday_on(local.date_naive()).is_some() == h)
            && c.heard.is_none_or(|e| self.heard.has(e))
    }

    /// Evaluates a `set` template: `"{x}"` copies the value with its type.
    fn eval(&self, t: &Template, now: DateTime<Utc>) -> Value {
        if let [Part::Var { name, format: None }] = t.parts.as_slice() {
            if let Some(v) = self.vars.get(name.as_str()) {
                return v.clone();
            }
        }
        Value::Text(self.render(t, now, Mode::Plain))
    }

    fn window(&self, department: &str, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let Some(d) = self.muni.departments.get(department) else {
            return (now, now);
        };
        let start = d
            .hours
            .next_open(now)
            .map_or(now, |t| t.with_timezone(&Utc));
        let end = d
            .hours
            .closes_at(start)
            .map_or(start, |t| t.with_timezone(&Utc));
        (start, end)
    }

    fn next_open_words(&self, department: &str, now: DateTime<Utc>) -> String {
        let today = now.with_timezone(&Copenhagen).date_naive();
        match self
            .muni
            .departments
            .get(department)
            .and_then(|d| d.hours.next_open(now))
        {
            Some(t) => speak::datetime_words(t.date_naive(), t.time(), self.lang, Some(today)),
            None => match self.lang {
                Lang::En => "later".into(),
                _ => "senere".into(),
            },
        }
    }

    /// A variable's value, the computed ones (`lang`, `today`, `now`) included.
    fn var_value(&self, name: &VarName, now: DateTime<Utc>) -> Option<Value> {
        let local = now.with_timezone(&Copenhagen);
        match name.as_str() {
            "lang" => Some(Value::Text(self.lang.code().into())),
            "today" => Some(Value::Date(local.date_naive())),
            "now" => Some(Value::DateTime(local.naive_local())),
            other => self.vars.get(other).cloned(),
        }
    }

    fn render(&self, t: &Template, now: DateTime<Utc>, mode: Mode) -> String {
        self.render_parts(&t.parts, now, mode)
    }

    fn render_parts(&self, parts: &[Part], now: DateTime<Utc>, mode: Mode) -> String {
        let mut s = String::new();
        let today = now.with_timezone(&Copenhagen).date_naive();
        for p in parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Var { name, format } => {
                    if let Some(v) = self.var_value(name, now) {
                        s.push_str(&self.speak_value(&v, *format, mode, today));
                    }
                }
                Part::Func { func, arg } => s.push_str(&match func {
                    Func::NextOpen => self.next_open_words(arg, now),
                    Func::Window => {
                        let (a, b) = self.window(arg, now);
                        let (a, b) = (a.with_timezone(&Copenhagen), b.with_timezone(&Copenhagen));
                        let day = speak::relative_date_words(a.date_naive(), self.lang, today);
                        match self.lang {
                            Lang::En => format!(
                                "{day} between {} and {}",
                                speak::time_words(a.time(), self.lang),
                                speak::time_words(b.time(), self.lang)
                            ),
                            _ => format!(
                                "{day} mellem klokken {} og klokken {}",
                                speak::time_words(a.time(), self.lang),
                                speak::time_words(b.time(), self.lang)
                            ),
                        }
                    }
                    Func::Department => self
                        .muni
                        .departments
                        .get(arg)
                        .and_then(|d| d.name.get(&self.lang).cloned())
                        .unwrap_or_default(),
                    Func::Queue => self
                        .muni
                        .queues
                        .get(arg)
                        .and_then(|q| q.name.get(&self.lang).cloned())
                        .unwrap_or_default(),
                }),
            }
        }
        s
    }

    fn speak_value(
        &self,
        v: &Value,
        format: Option<Format>,
        mode: Mode,
        today: NaiveDate,
    ) -> String {
        let lang = self.lang;
        let local = |s: &Slot| -> DateTime<Tz> { s.start.with_timezone(&Copenhagen) };
        match (v, format, mode) {
            (Value::Number(n), Some(Format::Number), _)
            | (Value::Number(n), None, Mode::Speech) => speak::number_words(*n, lang),
            (Value::Digits(d), Some(Format::Cpr), _) => speak::cpr_words(d, lang),
            (Value::Digits(d), Some(Format::Phone | Format::Digits), _)
            | (Value::Digits(d), None, Mode::Speech) => speak::digit_pairs(d, lang),
            (Value::Date(d), Some(Format::Date), _) | (Value::Date(d), None, Mode::Speech) => {
                speak::date_words(*d, lang, Some(today))
            }
            (Value::Time(t), Some(Format::Time), _) | (Value::Time(t), None, Mode::Speech) => {
                speak::time_words(*t, lang)
            }
            (Value::DateTime(dt), Some(Format::DateTime | Format::Date), _)
            | (Value::DateTime(dt), None, Mode::Speech) => {
                speak::datetime_words(dt.date(), dt.time(), lang, Some(today))
            }
            (Value::Slot(s), Some(Format::Time), _) => speak::time_words(local(s).time(), lang),
            (Value::Slot(s), Some(Format::Date), _) => {
                speak::date_words(local(s).date_naive(), lang, Some(today))
            }
            (Value::Slot(s), Some(Format::DateTime), _) | (Value::Slot(s), None, Mode::Speech) => {
                let l = local(s);
                speak::datetime_words(
                    l.date_naive(),
                    NaiveTime::from_hms_opt(l.hour(), l.minute(), 0).unwrap_or_default(),
                    lang,
                    None,
                )
            }
            (v, _, _) => v.plain(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Speech,
    Plain,
}

/// "+4512345678" -> "12345678"; other numbers unchanged.
fn national(n: &str) -> String {
    let d = n
        .strip_prefix("+45")
        .or_else(|| n.strip_prefix("0045"))
        .unwrap_or(n);
    d.to_string()
}

/// What a gather expects, as [`Action::Gather::candidates`] says.
fn candidates(g: &Gather, lang: Lang) -> Vec<(String, Vec<String>)> {
    match g.expect {
        Expect::Intent => g
            .intents
            .iter()
            .filter_map(|i| {
                let words = i.keywords.get(&lang)?.clone();
                (!words.is_empty()).then(|| (i.name.clone(), words))
            })
            .collect(),
        Expect::YesNo => yes_no_candidates(lang),
        _ => Vec::new(),
    }
}

/// Yes and no as expected answers in `lang`.
fn yes_no_candidates(lang: Lang) -> Vec<(String, Vec<String>)> {
    let (yes, no): (&[&str], &[&str]) = match lang {
        Lang::Da => (
            &["ja", "jo", "ja tak", "det er rigtigt"],
            &["nej", "nej tak", "forkert"],
        ),
        _ => (
            &["yes", "yeah", "yes please", "that's right"],
            &["no", "no thanks", "wrong"],
        ),
    };
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
    vec![("yes".into(), words(yes)), ("no".into(), words(no))]
}

/// The words before the answer a confirmation reads back ("I heard {answer}.
/// Is that correct?"), spoken as their own lead-in ([`crate::model::lead_in`]).
pub fn confirm_lead_in(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "I heard ",
        _ => "Jeg hørte ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine moves an interpreter into a per-call task.
    #[test]
    fn interpreter_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Interpreter>();
        check::<Action>();
        check::<Event>();
    }
}
