//! `ivr transcribe`.

use std::process::ExitCode;

/// Arguments of `ivr transcribe`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `ivr transcribe`.
pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ivr transcribe` is not implemented yet")
}
