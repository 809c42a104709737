//! `ivr say`: synthesise text with a voice into a WAV file (to listen to a voice,
//! check a prompt, or make test audio).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ivr_core::Lang;
use ivr_tts::{CacheConfig, Config, TextToSpeech, Tts};

/// Arguments of `ivr say`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The text to speak.
    text: String,
    /// Voice id from voices/*.toml (e.g. `piper-en-joe`, `espeak-da`); default: the
    /// configured voice of `--lang`.
    #[arg(long)]
    voice: Option<String>,
    /// Language whose configured voice speaks (da, en) when `--voice` is not given.
    #[arg(long, default_value = "da")]
    lang: Lang,
    /// Output WAV file (mono, 16-bit).
    #[arg(short, long)]
    output: PathBuf,
    /// Output rate in Hz (16000 wideband, 8000 narrowband); `--native` keeps the voice's own.
    #[arg(long, default_value_t = 16_000)]
    rate: u32,
    /// Write the voice's own rate (22,050 Hz for piper and espeak-ng), no resampling.
    #[arg(long)]
    native: bool,
    /// Folder of voice manifests.
    #[arg(long, default_value = "voices")]
    voices_dir: PathBuf,
    /// The onnxruntime library for piper voices.
    #[arg(long, default_value = "models/onnxruntime/libonnxruntime.so")]
    onnxruntime: PathBuf,
}

/// Runs `ivr say`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config {
        voices_dir: args.voices_dir,
        onnxruntime: args.onnxruntime,
        output_rate: args.rate,
        // A one-off command: no disk cache.
        cache: CacheConfig {
            dir: None,
            memory_entries: 0,
            disk_max_mb: 0,
        },
        ..Config::default()
    };
    let tts = Tts::new(config).context("text to speech")?;
    let voice = match args.voice {
        Some(v) => v,
        None => tts.voice_for(args.lang)?,
    };
    let t0 = Instant::now();
    tts.load_voice(&voice)?;
    let load = t0.elapsed();
    let t1 = Instant::now();
    let pcm = if args.native {
        tts.synthesize_native(&args.text, &voice)?
    } else {
        (*tts.synthesize(&args.text, &voice)?).clone()
    };
    let synth = t1.elapsed();
    ivr_tts::write_wav(&args.output, &pcm)?;
    let secs = pcm.duration().as_secs_f64();
    println!(
        "{}: {secs:.2} s at {} Hz, voice {voice}; voice load {:.0} ms, synthesis {:.0} ms (real-time factor {:.3})",
        args.output.display(),
        pcm.sample_rate,
        load.as_secs_f64() * 1e3,
        synth.as_secs_f64() * 1e3,
        if secs > 0.0 { synth.as_secs_f64() / secs } else { 0.0 }
    );
    Ok(ExitCode::SUCCESS)
}
