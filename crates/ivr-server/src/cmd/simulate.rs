//! `ivr simulate`.

use std::process::ExitCode;

/// Arguments of `ivr simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `ivr simulate`.
pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ivr simulate` is not implemented yet")
}
