//! `ivr simulate`: a text conversation with a municipality's flow. Caller
//! turns come from stdin, one per line: text is speech, `dtmf:12#` keys,
//! an empty line or `(silence)` no input, `(hangup)` ends the call. Each bot
//! action is printed on its own line (`say[da]: ...`, `listen[da]: ...`,
//! `transfer: ...`, `invoke: ...`, `hangup: ...`), so the command works both
//! interactively and in scripts.
//!
//! Integrations: requests go through the [`Integrations`] trait, chosen with
//! `--integrations`:
//! - `standins` (default), [`StandIns`]: the engine's own integration path
//!   ([`ivr_engine::services::Services::execute`]) against local stand-ins.
//!   The Frontdesk stand-in server runs in-process on `127.0.0.1:0` and the
//!   REST client talks to it over loopback; callbacks and mails go to the
//!   SQLite callback store and mail outbox in a temporary directory (or
//!   `--db URL`). No SMTP server is contacted: mails stay queued. Results
//!   print as `result[stand-in]: ...`, and after the call a summary of what
//!   the stand-ins hold (counts, departments, mail kinds and states; never
//!   phone or CPR numbers).
//! - `simulated`, [`Simulated`]: deterministic in-process answers of
//!   `ivr-flow` (`result[simulated]: ...`). Frontdesk slots come from the
//!   queue department's opening hours, callbacks and mails are kept in memory.
//!
//! Both run on the simulation clock (`--at`): it is "now" for the flow, for
//! the Frontdesk stand-in's free slots and for the stored records.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ivr_core::{CallId, FixedClock, Lang, Pii, WallClock};
use ivr_engine::services::{start_frontdesk_standin, Caller, Services};
use ivr_flow::{
    model::Municipality,
    sim::{action_line, parse_turn, response_line, SimulatedIntegrations},
    Action, CallContext, Event, FlowStore, Interpreter, Request, Response,
};
use ivr_integrations::{
    callback::ListFilter, outbox::OutboxState, standin::frontdesk::FrontdeskStandin,
};

/// Arguments of `ivr simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Municipality folder name (e.g. `nordby`).
    #[arg(long, required_unless_present_any = ["number", "script"])]
    municipality: Option<String>,
    /// Called number instead of a municipality (routes through tenants.toml).
    #[arg(long)]
    number: Option<String>,
    /// Language to start in.
    #[arg(long)]
    lang: Option<Lang>,
    /// Wall-clock time of the call (RFC 3339); default now.
    #[arg(long)]
    at: Option<DateTime<chrono::FixedOffset>>,
    /// Caller number.
    #[arg(long, default_value = "+4522334455")]
    caller: String,
    /// Deployment folder.
    #[arg(long, default_value = "flows")]
    flows: PathBuf,
    /// Sentence-embedding model for intents, as the engine uses it
    /// (`[understanding] model`); when it cannot be loaded, intents are
    /// recognised by their words alone and a note says so.
    #[arg(long, default_value = "models/e5-small/e5-small-q4.bin")]
    model: PathBuf,
    /// Where integration requests go: `standins` runs the engine's
    /// integrations against local stand-ins (an in-process Frontdesk server,
    /// callback store and mail outbox on SQLite; mails are queued, never
    /// sent); `simulated` answers in-process without them.
    #[arg(long, value_enum, default_value_t = IntegrationsKind::Standins)]
    integrations: IntegrationsKind,
    /// Database of the callback store and mail outbox with
    /// `--integrations standins` (`sqlite:PATH`, `postgres://...`); default a
    /// fresh SQLite file in a temporary directory, removed afterwards. The
    /// summary after the call counts everything in that database.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// Run conversation scripts instead of reading turns from stdin
    /// (format: `crates/ivr-flow/tests/conversations/README.md`; each script
    /// names its municipality and time), against simulated integrations.
    /// Prints each transcript; exit 1 when an expectation of any fails.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["municipality", "number"])]
    script: Vec<PathBuf>,
    /// Print the reasons behind each decision as `explain:` lines: intent
    /// candidates with their scores, the values heard in each turn, and
    /// answers taken from what the caller said earlier.
    #[arg(long)]
    explain: bool,
}

/// Choice of `--integrations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum IntegrationsKind {
    /// The engine's integrations against local stand-ins.
    Standins,
    /// Deterministic in-process answers.
    Simulated,
}

/// Where the simulator sends integration requests.
pub(crate) trait Integrations {
    /// Shown in the output beside each result.
    fn label(&self) -> &'static str;
    /// Answers a request made at `now` by a call speaking `lang`.
    fn handle(
        &mut self,
        muni: &Municipality,
        req: &Request,
        lang: Lang,
        now: DateTime<Utc>,
    ) -> Response;
    /// What the integrations hold after the call, one line each (no
    /// personal data).
    fn summary(&mut self) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// In-process, deterministic answers (see the module docs).
pub(crate) struct Simulated(SimulatedIntegrations);

impl Integrations for Simulated {
    fn label(&self) -> &'static str {
        "simulated"
    }
    fn handle(
        &mut self,
        muni: &Municipality,
        req: &Request,
        _lang: Lang,
        _now: DateTime<Utc>,
    ) -> Response {
        self.0.handle(muni, req)
    }
}

/// The engine's integrations ([`Services`]) against local stand-ins (see the
/// module docs).
pub(crate) struct StandIns {
    rt: tokio::runtime::Runtime,
    /// `None` only while dropping (see the `Drop` impl).
    services: Option<Services>,
    frontdesk: FrontdeskStandin,
    call_ref: CallId,
    /// Where the callback store and outbox live, when not `--db`; removed
    /// on drop.
    _dir: Option<tempfile::TempDir>,
}

impl StandIns {
    /// Starts the Frontdesk stand-in (serving the realistic municipalities
    /// plus every municipality of the deployment with its own queues),
    /// opens the callback store and outbox, and points the engine's services
    /// at them. `now` is the simulation clock.
    pub(crate) fn start(
        munis: &[Arc<Municipality>],
        db: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (dir, url) = match db {
            Some(u) => (None, u.to_string()),
            None => {
                let dir = tempfile::Builder::new().prefix("ivr-simulate-").tempdir()?;
                let url = format!("sqlite:{}", dir.path().join("simulate.db").display());
                (Some(dir), url)
            }
        };
        let clock: Arc<dyn WallClock> = Arc::new(FixedClock(now));
        let (frontdesk, services) = rt.block_on(async {
            let frontdesk =
                start_frontdesk_standin(munis.iter().map(|m| &**m), clock.clone()).await?;
            // The engine's integrations, minus the workers: nothing is
            // handed to Puzzel and no mail is sent.
            let mut cfg = ivr_integrations::Config {
                database_url: url.clone(),
                ..Default::default()
            };
            cfg.frontdesk.base_url = frontdesk.base_url();
            cfg.callbacks.handoff = false;
            let integrations = ivr_integrations::Integrations::start(&cfg, clock)
                .await
                .map_err(|e| anyhow::anyhow!("integrations on {}: {e}", redact_url(&url)))?;
            anyhow::Ok((frontdesk, Services::new(Arc::new(integrations))))
        })?;
        Ok(Self {
            rt,
            services: Some(services),
            frontdesk,
            call_ref: CallId::new(format!("sim-{}", now.timestamp())),
            _dir: dir,
        })
    }

    /// The Frontdesk stand-in's base URL.
    pub(crate) fn frontdesk_url(&self) -> String {
        self.frontdesk.base_url()
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        if let Some(services) = self.services.take() {
            // Close the database; the integrations' SMTP pool spawns a task
            // when dropped, so they are dropped inside the runtime.
            self.rt.block_on(services.integrations().shutdown());
            let _inside = self.rt.enter();
            drop(services);
        }
    }
}

/// A database URL without its user and password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://...{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

impl Integrations for StandIns {
    fn label(&self) -> &'static str {
        "stand-in"
    }
    fn handle(
        &mut self,
        muni: &Municipality,
        req: &Request,
        lang: Lang,
        now: DateTime<Utc>,
    ) -> Response {
        let who = Caller {
            call_ref: &self.call_ref,
            municipality: &muni.id,
            lang,
        };
        match &self.services {
            Some(services) => self.rt.block_on(services.execute(who, req.clone(), now)),
            None => Response::Error,
        }
    }
    fn summary(&mut self) -> anyhow::Result<Vec<String>> {
        let (callbacks, mails) = self.rt.block_on(async {
            let integrations = self
                .services
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("the stand-ins are stopped"))?
                .integrations();
            let callbacks = integrations
                .callbacks()
                .list(&ListFilter::default())
                .await?;
            let mails = integrations.outbox().list(None).await?;
            anyhow::Ok((callbacks, mails))
        })?;
        let queued = mails
            .iter()
            .filter(|m| m.state == OutboxState::Pending)
            .count();
        let mut lines = vec![format!(
            "stand-ins: callbacks stored={} mails queued={} frontdesk bookings={}",
            callbacks.len(),
            queued,
            self.frontdesk.booking_count()
        )];
        for c in &callbacks {
            lines.push(format!(
                "stand-in callback: municipality={} department={} state={}",
                c.request.municipality,
                c.request.topic,
                c.state.as_str()
            ));
        }
        for m in &mails {
            lines.push(format!(
                "stand-in mail: kind={} state={} (queued, not sent: simulate contacts no SMTP server)",
                m.mail.kind.as_str(),
                m.state.as_str()
            ));
        }
        Ok(lines)
    }
}

fn emit(
    out: &mut impl Write,
    it: &mut Interpreter,
    integ: &mut dyn Integrations,
    muni: &Municipality,
    now: DateTime<Utc>,
    mut actions: Vec<Action>,
    last_speech: &mut Option<Event>,
) -> std::io::Result<()> {
    while !actions.is_empty() {
        explain(out, it)?;
        let mut next = Vec::new();
        for a in &actions {
            writeln!(out, "{}", action_line(a))?;
            match a {
                Action::Invoke(r) => {
                    let resp = integ.handle(muni, r, it.lang(), now);
                    writeln!(out, "result[{}]: {}", integ.label(), response_line(&resp))?;
                    next.extend(it.handle(Event::Result(resp), now));
                }
                // No audio to recognise again: the typed words stand, with
                // no language identified (type `[en] words` for that).
                Action::RecognizeAgain { .. } => {
                    if let Some(Event::Speech {
                        text,
                        confidence,
                        lang,
                        ..
                    }) = last_speech.take()
                    {
                        next.extend(it.handle(
                            Event::Speech {
                                text,
                                confidence,
                                lang,
                                identified: true,
                            },
                            now,
                        ));
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
        actions = next;
    }
    explain(out, it)?;
    out.flush()
}

/// `--script FILE...`: runs conversation scripts (the flows loaded once);
/// exit 1 when any fails.
fn run_script_files(store: &FlowStore, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for file in files {
        let script = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        match ivr_flow::sim::run_script(store, &script) {
            Ok(transcript) => {
                for l in transcript {
                    println!("{l}");
                }
                println!("ok: {}", file.display());
            }
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        eprintln!("error: {failed} of {} scripts failed", files.len());
        Ok(ExitCode::FAILURE)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// The interpreter's explanations so far (only with `--explain`).
fn explain(out: &mut impl Write, it: &mut Interpreter) -> std::io::Result<()> {
    for l in it.take_explanations() {
        writeln!(out, "explain: {}", l.expose())?;
    }
    Ok(())
}

/// Runs `ivr simulate`.
/// Loads the deployment as the engine does (intents by meaning when the
/// sentence encoder at `model` loads, by words alone otherwise, with a note);
/// warnings go to stderr.
pub(crate) fn load_store(
    flows: &std::path::Path,
    model: &std::path::Path,
) -> anyhow::Result<FlowStore> {
    let encoder = crate::cmd::check::encoder_or_note(model);
    let (store, warnings) = match FlowStore::load_with(flows, encoder) {
        Ok(s) => s,
        Err(ivr_flow::StoreError::Invalid(diags)) => {
            for d in diags {
                eprintln!("{d}");
            }
            anyhow::bail!("the flows in {} do not pass `ivr check`", flows.display());
        }
        Err(e) => return Err(e.into()),
    };
    for w in warnings {
        eprintln!("{w}");
    }
    Ok(store)
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = load_store(&args.flows, &args.model)?;
    if !args.script.is_empty() {
        return run_script_files(&store, &args.script);
    }
    let route = match (&args.municipality, &args.number) {
        (Some(m), _) => store
            .municipality(m)
            .ok_or_else(|| anyhow::anyhow!("no municipality `{m}` in {}", args.flows.display()))?,
        (None, Some(n)) => store
            .route(n)
            .ok_or_else(|| anyhow::anyhow!("no tenant for number `{n}`"))?,
        (None, None) => anyhow::bail!("give --municipality or --number"),
    };
    let now = args.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let muni = route.municipality.clone();
    let (mut integ, what): (Box<dyn Integrations>, String) = match args.integrations {
        IntegrationsKind::Simulated => (
            Box::new(Simulated(SimulatedIntegrations::default())),
            "simulated integrations".into(),
        ),
        IntegrationsKind::Standins => {
            let munis: Vec<_> = store.snapshot().municipalities.values().cloned().collect();
            let s = StandIns::start(&munis, args.db.as_deref(), now)?;
            let what = format!(
                "integrations against local stand-ins (Frontdesk at {}, mails queued, not sent)",
                s.frontdesk_url()
            );
            (Box::new(s), what)
        }
    };
    eprintln!(
        "simulating {} ({}) at {} with {what}; type caller turns (text, [en] text = language identified, dtmf:1#, empty line = silence, (hangup), (transfer failed))",
        muni.name,
        route.entry,
        now.with_timezone(&chrono_tz::Europe::Copenhagen).format("%Y-%m-%d %H:%M %Z")
    );
    let mut it = Interpreter::new(
        route,
        CallContext {
            caller: Pii::new(args.caller.clone()),
            lang: args.lang,
        },
    );
    it.set_explain(args.explain);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut last_speech = None;
    let first = it.start(now);
    emit(
        &mut out,
        &mut it,
        integ.as_mut(),
        &muni,
        now,
        first,
        &mut last_speech,
    )?;
    let interactive = std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    while !it.is_done() {
        if interactive {
            eprint!("> ");
        }
        let Some(line) = lines.next() else {
            // End of input: the caller hangs up.
            it.handle(Event::Hangup, now);
            break;
        };
        let line = line?;
        if !interactive {
            writeln!(out, "> {line}")?;
        }
        for ev in parse_turn(&line, it.lang()) {
            if it.is_done() {
                break;
            }
            // During a transfer, anything but `(transfer failed)` means it
            // went through: the call leaves the bot.
            let ev = match ev {
                Event::TransferFailed { .. } => ev,
                _ if it.is_transferring() => Event::Hangup,
                _ => ev,
            };
            if matches!(ev, Event::Speech { .. }) {
                last_speech = Some(ev.clone());
            }
            let actions = it.handle(ev, now);
            emit(
                &mut out,
                &mut it,
                integ.as_mut(),
                &muni,
                now,
                actions,
                &mut last_speech,
            )?;
        }
    }
    let rec = it.record();
    writeln!(
        out,
        "record: outcome={} steps={} intents=[{}] misunderstood={}",
        rec.outcome.map_or("(none)", |o| o.as_str()),
        rec.steps.len(),
        rec.intents.join(","),
        rec.misunderstood
    )?;
    if !rec.questions.is_empty() {
        // The knowledge entry that answered each question (or `declined`)
        // and whether the caller said it helped.
        let q: Vec<String> = rec
            .questions
            .iter()
            .map(|q| {
                let helped = match q.confirmed {
                    Some(true) => " helped",
                    Some(false) => " did not help",
                    None => "",
                };
                format!("{}{helped}", q.entry.as_deref().unwrap_or("declined"))
            })
            .collect();
        writeln!(out, "questions: {}", q.join("; "))?;
    }
    for line in integ.summary()? {
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_database_password_never_appears_in_an_error_message() {
        assert_eq!(
            redact_url("postgres://ivr:secret@db.example:5432/ivr"),
            "postgres://...@db.example:5432/ivr"
        );
        assert_eq!(redact_url("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
    }
}
