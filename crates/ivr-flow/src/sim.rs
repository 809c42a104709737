//! Simulation: deterministic stand-ins for the integrations, one-line
//! renderings of actions, and the conversation-script runner used by
//! `ivr simulate` and the tests in `tests/conversations/`.
//!
//! "Simulated integrations" are NOT the integration stand-in servers: they
//! answer in-process so a flow can be tried without any service running.
//! Frontdesk slots are generated from the queue department's opening hours
//! (every `slot_minutes`, every third one taken); callbacks and mails are
//! kept in memory and printed; bookings get references `SIM-0001`, ...

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Europe::Copenhagen;
use ivr_core::{Dtmf, Lang, Pii, Speech};

use crate::{
    interp::{Action, CallContext, Event, Interpreter, Request, Response, Route, Slot},
    model::Municipality,
    store::FlowStore,
};

/// In-memory integrations with deterministic answers.
#[derive(Debug, Default)]
pub struct SimulatedIntegrations {
    /// Callbacks stored (request as printed).
    pub callbacks: Vec<String>,
    /// Mails sent (request as printed).
    pub mails: Vec<String>,
    /// Bookings made (reference, slot id).
    pub bookings: Vec<(String, String)>,
    /// Answers forced for the next requests (e.g. `Unavailable`), in order.
    pub forced: VecDeque<Response>,
}

impl SimulatedIntegrations {
    /// Answers one request.
    pub fn handle(&mut self, muni: &Municipality, req: &Request) -> Response {
        if let Some(r) = self.forced.pop_front() {
            return r;
        }
        match req {
            Request::StoreCallback { .. } => {
                self.callbacks.push(request_line(req));
                Response::Ok
            }
            Request::SendMail { .. } => {
                self.mails.push(request_line(req));
                Response::Ok
            }
            Request::FrontdeskSlots {
                queue, from, count, ..
            } => Response::Slots(self.slots(muni, queue, *from, *count)),
            Request::FrontdeskBook { slot, .. } => {
                let reference = format!("SIM-{:04}", self.bookings.len() + 1);
                self.bookings.push((reference.clone(), slot.id.clone()));
                Response::Booked {
                    reference,
                    start: slot.start,
                }
            }
            Request::FrontdeskCancel { date, .. } => {
                let start = date.and_then(|d| {
                    d.and_hms_opt(10, 30, 0)
                        .and_then(|n| n.and_local_timezone(Copenhagen).earliest())
                        .map(|t| t.with_timezone(&Utc))
                });
                Response::Cancelled { start }
            }
        }
    }

    /// Free slots from the day after `from`, inside the queue department's
    /// opening hours; every third slot is taken.
    pub fn slots(
        &self,
        muni: &Municipality,
        queue: &str,
        from: DateTime<Utc>,
        count: usize,
    ) -> Vec<Slot> {
        let Some(q) = muni.queues.get(queue) else {
            return Vec::new();
        };
        let Some(d) = muni.departments.get(&q.department) else {
            return Vec::new();
        };
        let step = Duration::minutes(i64::from(q.slot_minutes.max(5)));
        let mut out = Vec::new();
        let first_day = from.with_timezone(&Copenhagen).date_naive() + Duration::days(1);
        let mut n = 0u32;
        for off in 0..30 {
            let date = first_day + Duration::days(off);
            for iv in d.hours.day(date).0 {
                let mut t = iv.start;
                while t + step <= iv.end || (t < iv.end && iv.end.signed_duration_since(t) >= step)
                {
                    n += 1;
                    if !n.is_multiple_of(3) {
                        if let Some(start) =
                            date.and_time(t).and_local_timezone(Copenhagen).earliest()
                        {
                            out.push(Slot {
                                id: format!("{queue}-{}", start.format("%Y%m%dT%H%M")),
                                start: start.with_timezone(&Utc),
                            });
                            if out.len() >= count {
                                return out;
                            }
                        }
                    }
                    let (nt, wrapped) = t.overflowing_add_signed(step);
                    if wrapped != 0 {
                        break;
                    }
                    t = nt;
                }
            }
        }
        out
    }
}

fn local(t: &DateTime<Utc>) -> String {
    t.with_timezone(&Copenhagen)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\n', "\\n"))
}

/// One line for a request. Shows personal data: for operators' simulator
/// output and tests only, never for logs.
pub fn request_line(r: &Request) -> String {
    match r {
        Request::StoreCallback {
            department,
            number,
            topic,
            window_start,
            window_end,
            lang,
            ..
        } => format!(
            "callback department={department} number={} window={}..{} lang={lang} topic={}",
            number.expose(),
            local(window_start),
            local(window_end),
            quote(topic.expose())
        ),
        Request::SendMail {
            kind,
            to,
            subject,
            body,
            ..
        } => format!(
            "mail to={} subject={} body={}{}",
            to.join(","),
            quote(subject.expose()),
            quote(body.expose()),
            kind.as_ref()
                .map(|k| format!(" kind={k}"))
                .unwrap_or_default()
        ),
        Request::FrontdeskSlots {
            queue, from, count, ..
        } => format!(
            "frontdesk.slots queue={queue} from={} count={count}",
            local(from)
        ),
        Request::FrontdeskBook {
            queue, slot, cpr, ..
        } => format!(
            "frontdesk.book queue={queue} slot={} at={}{}",
            slot.id,
            local(&slot.start),
            cpr.as_ref()
                .map(|c| format!(" cpr={}", c.expose()))
                .unwrap_or_default()
        ),
        Request::FrontdeskCancel {
            queue, cpr, date, ..
        } => format!(
            "frontdesk.cancel queue={queue}{}{}",
            cpr.as_ref()
                .map(|c| format!(" cpr={}", c.expose()))
                .unwrap_or_default(),
            date.map(|d| format!(" date={d}")).unwrap_or_default()
        ),
    }
}

/// One line for a response.
pub fn response_line(r: &Response) -> String {
    match r {
        Response::Ok => "ok".into(),
        Response::Slots(s) => format!(
            "slots {}",
            s.iter()
                .map(|s| local(&s.start))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Response::Booked { reference, start } => format!("booked {reference} at {}", local(start)),
        Response::Cancelled { start } => format!(
            "cancelled{}",
            start.map(|s| format!(" {}", local(&s))).unwrap_or_default()
        ),
        Response::SlotTaken => "slot taken".into(),
        Response::NotFound => "not found".into(),
        Response::Unavailable => "unavailable".into(),
        Response::Error => "error".into(),
    }
}

/// One line for an action (shows personal data: simulator and tests only).
pub fn action_line(a: &Action) -> String {
    match a {
        Action::Say { speech, lang, .. } => match speech {
            Speech::Static(t) => format!("say[{lang}]: {t}"),
            Speech::Personal(t) => format!("say[{lang}]: {} (personal)", t.expose()),
        },
        Action::Play { file, .. } => format!("play: {file}"),
        Action::Gather {
            speech,
            dtmf,
            hints,
            candidates: _,
            lang,
            timeout,
            max_digits,
            barge_in,
            identify,
        } => {
            let mut modes = Vec::new();
            if *speech {
                modes.push("speech");
            }
            if *dtmf {
                modes.push("dtmf");
            }
            format!(
                "listen[{lang}]: {} timeout={}s max_digits={max_digits}{}{}{}",
                modes.join("+"),
                timeout.as_secs(),
                if *barge_in { "" } else { " no-barge-in" },
                if hints.is_empty() {
                    String::new()
                } else {
                    format!(" hints={}", hints.join(","))
                },
                if identify.is_empty() {
                    String::new()
                } else {
                    format!(
                        " identify={}",
                        identify
                            .iter()
                            .map(|l| l.code())
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                }
            )
        }
        Action::RecognizeAgain { among } => format!(
            "recognize again among {}",
            among.iter().map(|l| l.code()).collect::<Vec<_>>().join(",")
        ),
        Action::SetLanguage(l) => format!("language: {l}"),
        Action::Transfer {
            department,
            target,
            context,
        } => format!(
            "transfer: {department} -> {target} {{{}}}",
            context
                .iter()
                .map(|(k, v)| format!("{k}={}", v.expose()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::Invoke(r) => format!("invoke: {}", request_line(r)),
        Action::Hangup { outcome } => format!("hangup: {}", outcome.as_str()),
    }
}

/// A caller turn as typed in a script or at the simulator prompt:
/// text is speech; `dtmf:12#` keys; `(silence)` no input; `(hangup)`;
/// `(transfer failed)` the transfer under way was refused (`(transfer
/// timeout)`: no answer in time); `(stt busy)` the caller spoke but the
/// recogniser could not take it (its queue was full). `[en] text` is speech whose language was
/// identified as English (what the engine feeds after language
/// identification).
pub fn parse_turn(line: &str, default_lang: Lang) -> Vec<Event> {
    let l = line.trim();
    if l.is_empty() || l == "(silence)" {
        return vec![Event::NoInput];
    }
    if l == "(hangup)" {
        return vec![Event::Hangup];
    }
    if l == "(transfer failed)" {
        return vec![Event::TransferFailed { status: Some(486) }];
    }
    if l == "(transfer timeout)" {
        return vec![Event::TransferFailed { status: None }];
    }
    if l == "(stt busy)" {
        return vec![Event::SpeechUnavailable];
    }
    if let Some(keys) = l.strip_prefix("dtmf:") {
        let mut ev: Vec<Event> = keys
            .trim()
            .chars()
            .filter_map(|c| Dtmf::from_char(c).ok())
            .map(Event::Dtmf)
            .collect();
        // A key entry without '#' ends by the inter-digit timeout.
        if !keys.trim().ends_with('#') && ev.len() > 1 {
            ev.push(Event::NoInput);
        }
        return ev;
    }
    let _ = default_lang;
    if let Some((code, text)) = l
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(c, t)| c.parse::<Lang>().ok().map(|c| (c, t)))
    {
        return vec![Event::Speech {
            text: Pii::new(text.trim().to_string()),
            confidence: 0.9,
            lang: Some(code),
            identified: true,
        }];
    }
    vec![Event::Speech {
        text: Pii::new(l.to_string()),
        confidence: 0.9,
        lang: None,
        identified: false,
    }]
}

/// A conversation driven by text turns, with simulated integrations answered
/// in place. Each call to [`Conversation::turn`] returns the printed lines.
#[derive(Debug)]
pub struct Conversation {
    /// The interpreter.
    pub interp: Interpreter,
    /// The municipality.
    pub muni: std::sync::Arc<Municipality>,
    /// The integrations.
    pub integrations: SimulatedIntegrations,
    /// Current time.
    pub now: DateTime<Utc>,
    /// The last speech turn, fed again (as identified) on `RecognizeAgain`.
    last_speech: Option<Event>,
}

impl Conversation {
    /// Starts a conversation; returns it and the first lines.
    pub fn start(
        route: Route,
        ctx: CallContext,
        now: DateTime<Utc>,
        integrations: SimulatedIntegrations,
    ) -> (Self, Vec<String>) {
        let muni = route.municipality.clone();
        let interp = Interpreter::new(route, ctx);
        let mut c = Self {
            interp,
            muni,
            integrations,
            now,
            last_speech: None,
        };
        let actions = c.interp.start(now);
        let lines = c.drive(actions);
        (c, lines)
    }

    /// Feeds one typed turn. During a transfer, any turn but `(transfer
    /// failed)` / `(transfer timeout)` means the transfer went through (the
    /// call leaves the bot).
    pub fn turn(&mut self, line: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for ev in parse_turn(line, self.interp.lang()) {
            if self.interp.is_done() {
                break;
            }
            let ev = match ev {
                Event::TransferFailed { .. } => ev,
                _ if self.interp.is_transferring() => Event::Hangup,
                _ => ev,
            };
            lines.extend(self.hear(ev));
        }
        lines
    }

    /// Feeds one event as it is (e.g. speech with its identified language);
    /// returns the printed lines.
    pub fn hear(&mut self, ev: Event) -> Vec<String> {
        if let Event::Speech {
            text,
            confidence,
            lang,
            ..
        } = &ev
        {
            self.last_speech = Some(Event::Speech {
                text: text.clone(),
                confidence: *confidence,
                lang: *lang,
                identified: true,
            });
        }
        let actions = self.interp.handle(ev, self.now);
        self.drive(actions)
    }

    fn drive(&mut self, mut actions: Vec<Action>) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..50 {
            let mut next = Vec::new();
            for a in &actions {
                lines.push(action_line(a));
                match a {
                    Action::Invoke(r) => {
                        let resp = self.integrations.handle(&self.muni, r);
                        lines.push(format!("result[simulated]: {}", response_line(&resp)));
                        next.extend(self.interp.handle(Event::Result(resp), self.now));
                    }
                    // The simulator has no audio to recognise again: the
                    // typed words stand, with no language identified.
                    Action::RecognizeAgain { .. } => {
                        if let Some(ev) = self.last_speech.take() {
                            next.extend(self.interp.handle(ev, self.now));
                        }
                    }
                    Action::Say { .. }
                    | Action::Play { .. }
                    | Action::Gather { .. }
                    | Action::SetLanguage(_)
                    | Action::Transfer { .. }
                    | Action::Hangup { .. } => {}
                }
            }
            if next.is_empty() {
                break;
            }
            actions = next;
        }
        lines
    }
}

/// A failed script expectation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// A header line is wrong.
    #[error("line {line}: {message}")]
    Header {
        /// Line number.
        line: usize,
        /// What.
        message: String,
    },
    /// An expected action did not come.
    #[error("line {line}: expected an action containing `{expected}`, got:\n{got}")]
    Missing {
        /// Line number.
        line: usize,
        /// Expected substring.
        expected: String,
        /// What came (remaining lines).
        got: String,
    },
    /// An action that must not come after the last caller turn came.
    #[error(
        "line {line}: no action after the last turn may contain `{unexpected}`, but came: {got}"
    )]
    Unexpected {
        /// Line number.
        line: usize,
        /// The forbidden substring.
        unexpected: String,
        /// The action line that contained it.
        got: String,
    },
}

/// Runs a conversation script (see `tests/conversations/README.md`):
///
/// ```text
/// @ municipality nordby          (or: @ number +4570101010)
/// @ at 2026-12-24T16:59:00+01:00
/// @ caller +4522334455
/// @ force unavailable            next integration request answers this
/// < say[da]: Velkommen           an action line containing this, in order
/// ! Vil du bestille              no action line after the last turn contains this
/// > jeg skal have et nyt pas     caller turn (text, dtmf:1#, (silence), (hangup))
/// = outcome transferred          the call record's outcome
/// ```
///
/// Returns the full transcript on success.
pub fn run_script(store: &FlowStore, script: &str) -> Result<Vec<String>, ScriptError> {
    let mut route: Option<Route> = None;
    let mut at: Option<DateTime<Utc>> = None;
    let mut caller = "+4522334455".to_string();
    let mut lang: Option<Lang> = None;
    let mut forced = VecDeque::new();
    let mut conv: Option<Conversation> = None;
    let mut pending: Vec<String> = Vec::new();
    // Everything the last caller turn (or the start) produced.
    let mut last_turn: Vec<String> = Vec::new();
    let mut transcript = Vec::new();
    for (i, raw) in script.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (tag, rest) = line.split_at(1);
        let rest = rest.trim();
        let herr = |m: String| ScriptError::Header {
            line: line_no,
            message: m,
        };
        match tag {
            "@" => {
                let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
                match k {
                    "municipality" => {
                        route = Some(
                            store
                                .municipality(v.trim())
                                .ok_or_else(|| herr(format!("no municipality `{v}`")))?,
                        )
                    }
                    "number" => {
                        route = Some(
                            store
                                .route(v.trim())
                                .ok_or_else(|| herr(format!("no tenant for `{v}`")))?,
                        )
                    }
                    "at" => {
                        at = Some(
                            DateTime::parse_from_rfc3339(v.trim())
                                .map_err(|e| herr(format!("bad time: {e}")))?
                                .with_timezone(&Utc),
                        )
                    }
                    "caller" => caller = v.trim().to_string(),
                    "lang" => lang = Some(v.trim().parse().map_err(|e| herr(format!("{e}")))?),
                    "force" => forced.push_back(match v.trim() {
                        "unavailable" => Response::Unavailable,
                        "error" => Response::Error,
                        "slot_taken" => Response::SlotTaken,
                        "not_found" => Response::NotFound,
                        "no_slots" => Response::Slots(Vec::new()),
                        other => return Err(herr(format!("unknown forced response `{other}`"))),
                    }),
                    other => return Err(herr(format!("unknown header `{other}`"))),
                }
            }
            ">" | "<" | "=" | "!" => {
                if conv.is_none() {
                    let r = route
                        .clone()
                        .ok_or_else(|| herr("no `@ municipality` before the first turn".into()))?;
                    let now = at.ok_or_else(|| herr("no `@ at` before the first turn".into()))?;
                    let integ = SimulatedIntegrations {
                        forced: std::mem::take(&mut forced),
                        ..Default::default()
                    };
                    let (c, lines) = Conversation::start(
                        r,
                        CallContext {
                            caller: Pii::new(caller.clone()),
                            lang,
                        },
                        now,
                        integ,
                    );
                    transcript.extend(lines.iter().cloned());
                    last_turn = lines.clone();
                    pending = lines;
                    conv = Some(c);
                }
                let Some(c) = conv.as_mut() else { continue };
                match tag {
                    ">" => {
                        c.integrations.forced.extend(std::mem::take(&mut forced));
                        transcript.push(format!("> {rest}"));
                        let lines = c.turn(rest);
                        transcript.extend(lines.iter().cloned());
                        last_turn = lines.clone();
                        pending = lines;
                    }
                    "!" => {
                        if let Some(l) = last_turn.iter().find(|l| l.contains(rest)) {
                            return Err(ScriptError::Unexpected {
                                line: line_no,
                                unexpected: rest.to_string(),
                                got: l.clone(),
                            });
                        }
                    }
                    "<" => match pending.iter().position(|l| l.contains(rest)) {
                        Some(p) => {
                            pending.drain(..=p);
                        }
                        None => {
                            return Err(ScriptError::Missing {
                                line: line_no,
                                expected: rest.to_string(),
                                got: transcript.join("\n"),
                            });
                        }
                    },
                    _ => {
                        let want = rest.strip_prefix("outcome").map(str::trim).unwrap_or(rest);
                        let got = c.interp.record().outcome.map_or("(none)", |o| o.as_str());
                        if got != want {
                            return Err(ScriptError::Missing {
                                line: line_no,
                                expected: format!("outcome {want}"),
                                got: format!("outcome {got}\n{}", transcript.join("\n")),
                            });
                        }
                    }
                }
            }
            _ => {
                return Err(ScriptError::Header {
                    line: line_no,
                    message: format!("a line starts with @, >, <, !, = or #, not `{tag}`"),
                })
            }
        }
    }
    Ok(transcript)
}
