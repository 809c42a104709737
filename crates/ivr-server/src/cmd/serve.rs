//! `ivr serve`.

use std::process::ExitCode;

/// Arguments of `ivr serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `ivr serve`.
pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ivr serve` is not implemented yet")
}
