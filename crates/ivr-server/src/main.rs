//! `ivr`: the command-line entry point of the IVR engine.
//!
//! Every subcommand lives in its own module under `cmd/` with its own
//! `Args` (clap) and `run`, so areas of the engine can grow their commands
//! without touching each other.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod config;

/// Telephony voicebot IVR engine for Danish municipalities.
#[derive(Debug, Parser)]
#[command(name = "ivr", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the engine: SIP, media, flows, integrations, HTTP admin.
    Serve(cmd::serve::Args),
    /// Validate flows and config; rustc-style messages, exit 0/1.
    Check(cmd::check::Args),
    /// Show what the knowledge base answers to a question (scores, decision).
    Ask(cmd::ask::Args),
    /// Hold a text conversation with a municipality's flow.
    Simulate(cmd::simulate::Args),
    /// Measure how a municipality's menu understands callers' first turns (TSV).
    Eval(cmd::eval::Args),
    /// Draw a flow as a Mermaid diagram or an SVG picture.
    Graph(cmd::graph::Args),
    /// Check models, voices, onnxruntime, espeak-ng data and the config.
    Doctor(cmd::doctor::Args),
    /// Transcribe an audio file with the configured speech-to-text model.
    Transcribe(cmd::transcribe::Args),
    /// Synthesise text with a voice into a WAV file.
    Say(cmd::say::Args),
    /// Console accounts (`add-user`, `list-users`).
    Admin(cmd::admin::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => cmd::serve::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Ask(a) => cmd::ask::run(a),
        Command::Simulate(a) => cmd::simulate::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Graph(a) => cmd::graph::run(a),
        Command::Doctor(a) => cmd::doctor::run(a),
        Command::Transcribe(a) => cmd::transcribe::run(a),
        Command::Say(a) => cmd::say::run(a),
        Command::Admin(a) => cmd::admin::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
