//! `ivr eval --municipality M FILE.tsv`: how well a municipality's entry flow
//! understands callers' first turns. Each turn in the file runs through a
//! fresh call on the interpreter, as a call's first turn arrives from the
//! engine (transcript with its identified language), and what the call
//! recognised first is compared with the file's `expected` column.
//!
//! Prints accuracy overall, per language and per use case, a confusion table
//! (rows expected, columns recognised) and, with `--misses`, every turn
//! routed wrong. Exit code 0 whatever the accuracy; 1 when the file is bad
//! (the message names FILE:LINE) or the flows do not load. File format:
//! `tests/vectors/caller_turns/README.md`.

use std::{path::PathBuf, process::ExitCode};

use chrono::{DateTime, Utc};
use ivr_flow::eval;

/// Arguments of `ivr eval`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Municipality folder name (e.g. `nordby`).
    #[arg(long)]
    municipality: String,
    /// Tab-separated turns with a header (`expected` and `text` columns;
    /// `lang`, `use_case`, `municipality` optional).
    file: PathBuf,
    /// Deployment folder.
    #[arg(long, default_value = "flows")]
    flows: PathBuf,
    /// Wall-clock time of the calls (RFC 3339); default now.
    #[arg(long)]
    at: Option<DateTime<chrono::FixedOffset>>,
    /// Also print every turn routed wrong (expected, recognised, text).
    #[arg(long)]
    misses: bool,
    /// Sentence-embedding model for intents, as the engine uses it
    /// (`[understanding] model`); when it cannot be loaded, intents are
    /// recognised by their words alone and a note says so.
    #[arg(long, default_value = "models/e5-small/e5-small-q4.bin")]
    model: PathBuf,
}

/// Runs `ivr eval`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::simulate::load_store(&args.flows, &args.model)?;
    let route = store.municipality(&args.municipality).ok_or_else(|| {
        anyhow::anyhow!(
            "no municipality `{}` in {}",
            args.municipality,
            args.flows.display()
        )
    })?;
    let src = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let cases = match eval::parse_cases(&src, &route.municipality) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}:{}: {}", args.file.display(), e.line, e.message);
            return Ok(ExitCode::FAILURE);
        }
    };
    let now = args.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let report = eval::evaluate(&route, &cases, now);
    print!("{report}");
    if args.misses {
        println!();
        println!("misses (line, expected -> recognised: text)");
        for o in report.misses() {
            println!(
                "{:>5} {} -> {}: {}",
                o.case.line, o.case.expected, o.got, o.case.text
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
