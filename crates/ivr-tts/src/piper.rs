//! Piper voices: espeak-ng phonemes -> VITS ONNX model (piper-rs) -> audio.
//!
//! onnxruntime is loaded at run time from the configured library
//! (`ort` with `load-dynamic`). ort blocks forever instead of failing when the
//! library is missing, so the file is checked before ort is touched.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};

use ivr_core::Pcm;
use ort::session::Session;
use piper_rs::{ModelConfig, Piper};

use crate::{espeak, TtsError};

/// The outcome of loading onnxruntime; the first successful library wins for the
/// life of the process.
static ORT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Loads onnxruntime from `lib` once. Checks the file first (see the module docs).
pub fn ensure_onnxruntime(lib: &Path) -> Result<(), String> {
    // Checked every time, even once loaded: a wrong path in the config is reported
    // the same way whatever was loaded before.
    if !lib.is_file() {
        return Err(format!(
            "onnxruntime library {} not found: run `make setup` (scripts/setup/20-voices.sh) or set tts.onnxruntime",
            lib.display()
        ));
    }
    ORT.get_or_init(|| {
        ort::init_from(lib)
            .map(|b| {
                b.with_name("ivr-tts").commit();
                lib.to_path_buf()
            })
            .map_err(|e| format!("cannot load onnxruntime from {}: {e}", lib.display()))
    })
    .clone()
    .map(|_| ())
}

/// A loaded piper voice: a pool of onnxruntime sessions of the same model. Each
/// session runs one synthesis at a time (piper-rs borrows it mutably), so
/// `sessions` calls speak in parallel; more wait for a free session (each extra
/// session costs the model's memory again, about 100 MB for a medium voice).
pub(crate) struct PiperVoice {
    id: String,
    espeak_voice: String,
    espeak_data: PathBuf,
    speaker: Option<i64>,
    sample_rate: u32,
    pool: Vec<Mutex<Piper>>,
    next: AtomicUsize,
}

impl PiperVoice {
    /// Loads the model (about 0.3 s for a medium voice).
    pub(crate) fn load(
        id: &str,
        model: &Path,
        config: &Path,
        speaker: Option<i64>,
        settings: &crate::Config,
        espeak_data: &Path,
    ) -> Result<Self, TtsError> {
        let (onnxruntime, threads, sessions) = (
            settings.onnxruntime.as_path(),
            settings.piper_threads,
            settings.piper_sessions,
        );
        let unavailable = |reason: String| TtsError::VoiceUnavailable {
            voice: id.to_string(),
            reason,
        };
        for f in [model, config] {
            if !f.is_file() {
                return Err(unavailable(format!(
                    "{} not found: run `make setup` or copy the voice's files there",
                    f.display()
                )));
            }
        }
        ensure_onnxruntime(onnxruntime).map_err(unavailable)?;
        let cfg_text = std::fs::read_to_string(config)
            .map_err(|e| unavailable(format!("{}: {e}", config.display())))?;
        let parse = || -> Result<ModelConfig, TtsError> {
            serde_json_from_str(&cfg_text).map_err(|e| {
                unavailable(format!(
                    "{} is not a piper voice config: {e}",
                    config.display()
                ))
            })
        };
        let cfg = parse()?;
        let espeak_voice = cfg.espeak.voice.clone();
        let sample_rate = cfg.audio.sample_rate;
        let onnx_err = |e: &dyn std::fmt::Display| {
            unavailable(format!("onnxruntime cannot load {}: {e}", model.display()))
        };
        let mut pool = Vec::new();
        let mut cfg = Some(cfg);
        for _ in 0..sessions.max(1) {
            let builder = Session::builder().map_err(|e| onnx_err(&e))?;
            let mut builder = builder
                .with_intra_threads(threads.max(1))
                .map_err(|e| onnx_err(&e))?;
            let session = builder.commit_from_file(model).map_err(|e| onnx_err(&e))?;
            let c = match cfg.take() {
                Some(c) => c,
                None => parse()?,
            };
            pool.push(Mutex::new(Piper::from_session(session, c)));
        }
        Ok(PiperVoice {
            id: id.to_string(),
            espeak_voice,
            espeak_data: espeak_data.to_path_buf(),
            speaker,
            sample_rate,
            pool,
            next: AtomicUsize::new(0),
        })
    }

    /// A free session if there is one, else waits for the next in turn.
    fn session(&self) -> MutexGuard<'_, Piper> {
        let n = self.pool.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match self.pool[(start + i) % n].try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.pool[start].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions in the pool.
    pub(crate) fn sessions(&self) -> usize {
        self.pool.len()
    }

    /// The model's own rate.
    pub(crate) fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Synthesises `text` at the model's rate.
    pub(crate) fn synthesize(&self, text: &str) -> Result<Pcm, TtsError> {
        let sentences =
            espeak::with_espeak(&self.espeak_data, |e| e.phonemize(&self.espeak_voice, text))?;
        let mut out: Vec<i16> = Vec::new();
        for phonemes in sentences.iter().filter(|p| !p.trim().is_empty()) {
            let (audio, _rate) = {
                let mut p = self.session();
                p.create(phonemes, true, self.speaker, None, None, None)
                    .map_err(|e| TtsError::Piper {
                        voice: self.id.clone(),
                        message: e.to_string(),
                    })?
            };
            out.extend(
                audio
                    .iter()
                    .map(|x| (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16),
            );
        }
        crate::audio::trim_leading_silence(&mut out, self.sample_rate);
        Ok(Pcm::new(self.sample_rate, out))
    }
}

fn serde_json_from_str(s: &str) -> Result<ModelConfig, String> {
    serde_json::from_str(s).map_err(|e| e.to_string())
}
