//! `ivr graph`.

use std::process::ExitCode;

/// Arguments of `ivr graph`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `ivr graph`.
pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ivr graph` is not implemented yet")
}
