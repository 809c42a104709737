//! `ivr check [PATH]`: validates a deployment folder (tenants, municipalities,
//! flows, shared sub-flows, announcements) and prints rustc-style messages
//! with file:line:column and a hint. Exit code 0 when there is no error
//! (warnings allowed), 1 otherwise.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use ivr_flow::{Diagnostic, Severity};

/// Arguments of `ivr check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Deployment folder (with tenants.toml), a municipality folder, or a single flow file.
    #[arg(default_value = "flows")]
    path: PathBuf,
    /// Sentence-embedding model: with it, intent examples that sit closer to
    /// another intent of the same gather are warned about.
    #[arg(long, default_value = "models/e5-small/e5-small-q4.bin")]
    model: PathBuf,
}

/// The sentence encoder at `model`, or `None` after a note on stderr (the
/// tools work without it, by words alone).
pub(crate) fn encoder_or_note(
    model: &Path,
) -> Option<Arc<dyn ivr_flow::semantic::SentenceEncoder>> {
    match ivr_embed::E5Encoder::load(model) {
        Ok(e) => Some(Arc::new(e)),
        Err(e) => {
            eprintln!("note: {e}; intents are recognised by their words alone");
            None
        }
    }
}

/// Warnings for intent examples closer to another intent (needs the model).
fn confusable(root: &Path, model: &Path) -> Vec<Diagnostic> {
    let Some(enc) = encoder_or_note(model) else {
        return Vec::new();
    };
    let Ok((store, _)) = ivr_flow::FlowStore::load_with(root, Some(enc)) else {
        return Vec::new();
    };
    let snap = store.snapshot();
    let mut out: Vec<Diagnostic> = Vec::new();
    for m in snap.municipalities.values() {
        for c in ivr_flow::intents::confusable_examples(m) {
            let Some(flow) = m.flow_named(&c.flow) else {
                continue;
            };
            let line = flow.step_named(&c.step).map_or(0, |s| s.line);
            let d = Diagnostic {
                severity: Severity::Warning,
                file: flow.file.clone(),
                line,
                col: 1,
                message: format!(
                    "example \"{}\" of intent `{}` sits closer to intent `{}`: said by a caller, it would go there (score {:.2} against {:.2} for `{}` without it)",
                    c.example, c.intent, c.other, c.closer, c.own, c.intent
                ),
                hint: Some(format!(
                    "callers who say something like it may reach `{}`: reword it, move it, or add examples to `{}` that say what tells them apart",
                    c.other, c.intent
                )),
                source_line: None,
            };
            // Shared flows are checked once per municipality: report once.
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// Runs `ivr check`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let diags = if args.path.is_file() {
        match ivr_flow::load::parse_flow_file(&args.path) {
            Ok(_) => Vec::new(),
            Err(d) => d,
        }
    } else if args.path.join("municipality.toml").is_file() {
        // One municipality: check it within its deployment (shared flows,
        // tenants), report what concerns its folder and the shared flows.
        let root = args
            .path
            .parent()
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        let shared = root.join("shared");
        let mut diags = ivr_flow::load(&root).diagnostics;
        if !diags.iter().any(Diagnostic::is_error) {
            diags.extend(confusable(&root, &args.model));
        }
        diags
            .into_iter()
            .filter(|d| d.file.starts_with(&args.path) || d.file.starts_with(&shared))
            .collect()
    } else if args.path.is_dir() {
        if !args.path.join("tenants.toml").is_file() {
            anyhow::bail!(
                "{} is neither a deployment folder (with tenants.toml), a municipality folder (with municipality.toml) nor a flow file",
                args.path.display()
            );
        }
        let mut diags = ivr_flow::load(&args.path).diagnostics;
        if !diags.iter().any(Diagnostic::is_error) {
            diags.extend(confusable(&args.path, &args.model));
        }
        diags
    } else {
        anyhow::bail!("{} does not exist", args.path.display());
    };
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    for d in &diags {
        eprintln!("{d}");
    }
    if errors > 0 {
        eprintln!(
            "error: {} has {errors} error(s) and {warnings} warning(s)",
            args.path.display()
        );
        Ok(ExitCode::FAILURE)
    } else {
        println!("ok: {} ({warnings} warning(s))", args.path.display());
        Ok(ExitCode::SUCCESS)
    }
}
