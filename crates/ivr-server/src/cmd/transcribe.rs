//! `ivr transcribe FILE [--lang da|en | --identify-from da|en] [--hint WORDS]`:
//! runs the configured speech-to-text model on a WAV file and prints the text
//! and the time it took; with `--identify-from`, the language is identified
//! as a call in that language does (`[stt.identify]`), and the scores shown.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use ivr_core::{Lang, ENGINE_RATE};
use ivr_stt::{LanguageChoice, SpeechToText, SttRequest, WhisperStt};

use crate::config;

/// Arguments of `ivr transcribe`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// WAV file (any rate and channel count; resampled to 16 kHz mono).
    file: PathBuf,
    /// Language of the speech: da or en. Without it (and without
    /// --identify-from), detected between da and en by whisper alone.
    #[arg(long, conflicts_with = "identify_from")]
    lang: Option<Lang>,
    /// Identify the language among da and en as the engine does on a call
    /// that is in this language (its `[stt.identify]` rule), then transcribe.
    #[arg(long)]
    identify_from: Option<Lang>,
    /// Words the question expects, passed to whisper as its prompt
    /// (repeat the flag or separate with commas).
    #[arg(long, value_delimiter = ',')]
    hint: Vec<String>,
    /// Config file ([stt] section).
    #[arg(long, default_value = "config/default.toml")]
    config: PathBuf,
    /// Model file, overriding [stt] model.
    #[arg(long)]
    model: Option<PathBuf>,
}

/// Runs `ivr transcribe`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = config::load(&args.config)?;
    if let Some(m) = args.model {
        config.stt.model = m;
    }
    let pcm = ivr_stt::audio::read_wav(&args.file)?;
    let pcm = ivr_stt::audio::resample(&pcm, ENGINE_RATE)?;
    let language = match (args.lang, args.identify_from) {
        (Some(l), _) => LanguageChoice::Fixed(l),
        (None, Some(current)) => LanguageChoice::Identify {
            current,
            among: Lang::ALL.to_vec(),
        },
        (None, None) => LanguageChoice::DetectAmong(Lang::ALL.to_vec()),
    };
    let request = SttRequest {
        audio: pcm,
        language,
        hints: args.hint,
        candidates: Vec::new(),
        cancel: Default::default(),
    };

    let loading = Instant::now();
    let stt = WhisperStt::load(&config.stt)?;
    let load_time = loading.elapsed();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let started = Instant::now();
    let t = runtime.block_on(stt.transcribe(request))?;
    let took = started.elapsed();

    // The user asked for this transcript on their own file: printing it is the point.
    println!("{}", t.text.expose());
    eprintln!(
        "language {}, confidence {:.2}, {:.2} s of audio transcribed in {:.3} s (audio_ctx {}; model loaded in {:.2} s)",
        t.language,
        t.confidence,
        t.timing.audio.as_secs_f64(),
        took.as_secs_f64(),
        t.timing.audio_ctx,
        load_time.as_secs_f64(),
    );
    if let Some(id) = &t.identified {
        let scores: Vec<String> = id
            .scores
            .iter()
            .map(|(l, p)| format!("{l} {p:.3}"))
            .collect();
        eprintln!(
            "identified {} (probabilities among the allowed: {})",
            id.chosen,
            scores.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
