//! `ivr say`.

use std::process::ExitCode;

/// Arguments of `ivr say`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `ivr say`.
pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ivr say` is not implemented yet")
}
