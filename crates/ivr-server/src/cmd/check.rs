//! `ivr check`.

use std::process::ExitCode;

/// Arguments of `ivr check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `ivr check`.
pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ivr check` is not implemented yet")
}
