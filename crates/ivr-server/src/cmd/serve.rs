//! `ivr serve`: the engine. Reads the config, starts SIP, media, flows,
//! speech, integrations (and the in-process stand-ins when configured) and
//! the HTTP port, prints where it listens, and runs until SIGINT/SIGTERM;
//! then new calls get 503 while calls in progress finish (up to
//! `[shutdown] drain_s`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

/// Arguments of `ivr serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The configuration file.
    #[arg(long, default_value = "config/default.toml")]
    config: PathBuf,
}

/// Runs `ivr serve`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // whisper.cpp reports every buffer it allocates at info, and
                // onnxruntime (ort) every graph node it places (~600 lines at
                // start): the engine's own info lines would drown.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("info,whisper_rs=warn,ort=warn")
                }),
        )
        .with_writer(std::io::stderr)
        .try_init();
    // file:line:column on a bad key or value, like every other subcommand.
    let cfg = crate::config::load(&args.config)?;
    let drain = Duration::from_secs(cfg.shutdown.drain_s);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let running = ivr_engine::engine::start(cfg).await?;
        // One line on stdout that scripts and tests read to find the ports.
        println!(
            "ivr serve: sip udp {} http {}{}{}",
            running
                .sip_udp
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            running
                .http
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            running
                .frontdesk_standin
                .as_ref()
                .map(|s| format!(" frontdesk {}", s.base_url()))
                .unwrap_or_default(),
            running
                .puzzel_standin
                .as_ref()
                .map(|s| format!(" puzzel {}", s.base_url()))
                .unwrap_or_default(),
        );
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        running.shutdown(drain).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
