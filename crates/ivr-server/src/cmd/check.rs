//! `ivr check [PATH]`: validates a deployment folder (tenants, municipalities,
//! flows, shared sub-flows, announcements) and prints rustc-style messages
//! with file:line:column and a hint. Exit code 0 when there is no error
//! (warnings allowed), 1 otherwise.

use std::{path::PathBuf, process::ExitCode};

/// Arguments of `ivr check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Deployment folder (with tenants.toml), a municipality folder, or a single flow file.
    #[arg(default_value = "flows")]
    path: PathBuf,
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
        ivr_flow::load(&root)
            .diagnostics
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
        ivr_flow::load(&args.path).diagnostics
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
