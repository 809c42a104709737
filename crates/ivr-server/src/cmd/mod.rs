//! One module per subcommand; each has `Args` and `run(Args) -> anyhow::Result<ExitCode>`.

pub(crate) mod admin;
pub(crate) mod ask;
pub(crate) mod check;
pub(crate) mod doctor;
pub(crate) mod eval;
pub(crate) mod graph;
pub(crate) mod say;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod transcribe;
