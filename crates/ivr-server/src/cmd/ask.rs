//! `ivr ask --municipality M "question"`: what the knowledge base makes of a
//! question: the top entries with their scores, the decision (answer, ask
//! which of two, decline) with the thresholds in use, and the answer that
//! would be read (computed for opening hours at `--at`). The sentence
//! encoder is the engine's (`--model`); when it cannot be loaded, matching
//! is lexical only and a note says so.

use std::{path::PathBuf, process::ExitCode};

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Copenhagen;
use ivr_core::Lang;
use ivr_flow::knowledge::{answer_text, Decision};

/// Arguments of `ivr ask`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Municipality folder name (e.g. `nordby`).
    #[arg(long)]
    municipality: String,
    /// Language of the question (default: the municipality's first).
    #[arg(long)]
    lang: Option<String>,
    /// The moment the question is asked (RFC 3339), for validity dates and
    /// computed opening hours; default now.
    #[arg(long)]
    at: Option<DateTime<chrono::FixedOffset>>,
    /// How many entries to list.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Deployment folder.
    #[arg(long, default_value = "flows")]
    flows: PathBuf,
    /// Sentence-embedding model, as the engine uses it (`[understanding]
    /// model`); when it cannot be loaded, matching is lexical only.
    #[arg(long, default_value = "models/e5-small/e5-small-q4.bin")]
    model: PathBuf,
    /// The question, as a caller would say it.
    question: String,
}

/// Runs `ivr ask`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::simulate::load_store(&args.flows, &args.model)?;
    let Some(route) = store.municipality(&args.municipality) else {
        anyhow::bail!(
            "no municipality `{}` in {}",
            args.municipality,
            args.flows.display()
        );
    };
    let muni = &route.municipality;
    let lang = match &args.lang {
        Some(l) => l
            .parse::<Lang>()
            .map_err(|_| anyhow::anyhow!("unknown language `{l}` (da, en)"))?,
        None => muni.default_lang(),
    };
    let now: DateTime<Utc> = args.at.map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let today = now.with_timezone(&Copenhagen).date_naive();
    let kb = &muni.knowledge;
    if kb.is_empty() {
        println!("{} has no knowledge entries", muni.name);
        return Ok(ExitCode::SUCCESS);
    }
    let r = kb.retrieve(&args.question, lang, today);
    let th = kb.thresholds();
    println!(
        "{} ({} entries, {}), {} at {}",
        muni.name,
        kb.entries().len(),
        kb.encoder_name()
            .map_or("lexical only".to_string(), |n| format!("lexical + {n}")),
        lang,
        now.with_timezone(&Copenhagen).format("%Y-%m-%d %H:%M")
    );
    println!(
        "{:>3}  {:<28} {:>6} {:>7} {:>8} {:>7}",
        "#", "entry", "score", "lexical", "semantic", "cosine"
    );
    for (i, c) in r.candidates.iter().take(args.top).enumerate() {
        let e = &kb.entries()[c.entry];
        println!(
            "{:>3}  {:<28} {:>6.3} {:>7.3} {:>8} {:>7}",
            i + 1,
            e.id,
            c.score,
            c.lexical,
            c.semantic.map_or("-".to_string(), |s| format!("{s:.3}")),
            c.cosine.map_or("-".to_string(), |s| format!("{s:.3}"))
        );
    }
    println!(
        "thresholds: answer >= {:.2} with margin >= {:.2}; ask which of two >= {:.2}",
        th.answer, th.margin, th.clarify
    );
    match r.decision {
        Decision::Answer(i) => {
            let e = &kb.entries()[i];
            println!("decision: answer `{}` ({})", e.id, e.department);
            println!(
                "answer[{lang}]: {}",
                answer_text(e, &muni.departments, &args.question, lang, now)
            );
            println!("source: {}", e.source);
        }
        Decision::Clarify(a, b) => {
            let (a, b) = (&kb.entries()[a], &kb.entries()[b]);
            println!(
                "decision: ask which: `{}` ({}) or `{}` ({})",
                a.id,
                a.title(lang),
                b.id,
                b.title(lang)
            );
        }
        Decision::Decline => println!(
            "decision: decline (say so, route to {} or a callback)",
            muni.fallback
        ),
    }
    Ok(ExitCode::SUCCESS)
}
