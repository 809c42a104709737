//! `ivr doctor`.

use std::process::ExitCode;

/// Arguments of `ivr doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs `ivr doctor`.
pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ivr doctor` is not implemented yet")
}
