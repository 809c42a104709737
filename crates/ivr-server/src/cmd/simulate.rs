//! `ivr simulate`: a text conversation with a municipality's flow. Caller
//! turns come from stdin, one per line: text is speech, `dtmf:12#` keys,
//! an empty line or `(silence)` no input, `(hangup)` ends the call. Each bot
//! action is printed on its own line (`say[da]: ...`, `listen[da]: ...`,
//! `transfer: ...`, `invoke: ...`, `hangup: ...`), so the command works both
//! interactively and in scripts.
//!
//! Integrations: requests go through the [`Integrations`] trait. The only
//! implementation today is [`Simulated`]: deterministic in-process answers
//! ("simulated integrations", printed as `result[simulated]: ...`). Frontdesk
//! slots come from the queue department's opening hours, callbacks and mails
//! are kept in memory and printed. Wiring the trait to the local stand-in
//! servers of `ivr-integrations` is left to the merge of that crate.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
};

use chrono::{DateTime, Utc};
use ivr_core::{Lang, Pii};
use ivr_flow::{
    model::Municipality,
    sim::{action_line, parse_turn, response_line, SimulatedIntegrations},
    Action, CallContext, Event, FlowStore, Interpreter, Request, Response,
};

/// Arguments of `ivr simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Municipality folder name (e.g. `nordby`).
    #[arg(long, required_unless_present = "number")]
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
}

/// Where the simulator sends integration requests.
pub(crate) trait Integrations {
    /// Shown in the output beside each result.
    fn label(&self) -> &'static str;
    /// Answers a request.
    fn handle(&mut self, muni: &Municipality, req: &Request) -> Response;
}

/// In-process, deterministic answers (see the module docs).
pub(crate) struct Simulated(SimulatedIntegrations);

impl Integrations for Simulated {
    fn label(&self) -> &'static str {
        "simulated"
    }
    fn handle(&mut self, muni: &Municipality, req: &Request) -> Response {
        self.0.handle(muni, req)
    }
}

fn emit(
    out: &mut impl Write,
    it: &mut Interpreter,
    integ: &mut dyn Integrations,
    muni: &Municipality,
    now: DateTime<Utc>,
    mut actions: Vec<Action>,
) -> std::io::Result<()> {
    while !actions.is_empty() {
        let mut next = Vec::new();
        for a in &actions {
            writeln!(out, "{}", action_line(a))?;
            if let Action::Invoke(r) = a {
                let resp = integ.handle(muni, r);
                writeln!(out, "result[{}]: {}", integ.label(), response_line(&resp))?;
                next.extend(it.handle(Event::Result(resp), now));
            }
        }
        actions = next;
    }
    out.flush()
}

/// Runs `ivr simulate`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (store, warnings) = match FlowStore::load(&args.flows) {
        Ok(s) => s,
        Err(ivr_flow::StoreError::Invalid(diags)) => {
            for d in diags {
                eprintln!("{d}");
            }
            anyhow::bail!(
                "the flows in {} do not pass `ivr check`",
                args.flows.display()
            );
        }
        Err(e) => return Err(e.into()),
    };
    for w in warnings {
        eprintln!("{w}");
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
    let mut integ = Simulated(SimulatedIntegrations::default());
    eprintln!(
        "simulating {} ({}) at {} with simulated integrations; type caller turns (text, dtmf:1#, empty line = silence, (hangup))",
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
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let first = it.start(now);
    emit(&mut out, &mut it, &mut integ, &muni, now, first)?;
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
            let actions = it.handle(ev, now);
            emit(&mut out, &mut it, &mut integ, &muni, now, actions)?;
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
    Ok(ExitCode::SUCCESS)
}
