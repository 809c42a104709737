//! The errors of the text-to-speech layer.

use std::path::PathBuf;

/// Everything that can go wrong between text (or a prompt file) and PCM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TtsError {
    /// No voice with this id is in the registry (`voices/*.toml`).
    #[error("no voice `{0}` in the voice registry (see `ivr doctor` for the voices found)")]
    UnknownVoice(String),
    /// The configuration names no voice for this language and the registry has none either.
    #[error("no voice configured or registered for language `{0}`")]
    NoVoiceForLanguage(ivr_core::Lang),
    /// A voice manifest could not be read.
    #[error("cannot read voice manifest {path}: {source}")]
    ManifestIo {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A voice manifest is not valid TOML or has unknown or missing keys.
    #[error("invalid voice manifest {path}: {message}")]
    ManifestInvalid {
        /// The manifest file.
        path: PathBuf,
        /// The parser's message (names the key, line and column).
        message: String,
    },
    /// Two manifests declare the same voice id.
    #[error("voice id `{id}` is declared twice: {first} and {second}")]
    DuplicateVoice {
        /// The id.
        id: String,
        /// The first manifest.
        first: PathBuf,
        /// The second manifest.
        second: PathBuf,
    },
    /// The voice exists but cannot be used on this machine (model file, onnxruntime or
    /// espeak-ng data missing). The reason says what is missing and how to fix it.
    #[error("voice `{voice}` is not available: {reason}")]
    VoiceUnavailable {
        /// The voice id.
        voice: String,
        /// What is missing and the fix.
        reason: String,
    },
    /// espeak-ng failed (initialisation, voice selection or synthesis); `code` is its
    /// `espeak_ng_STATUS` / `espeak_ERROR` value.
    #[error("espeak-ng {operation} failed with code {code}")]
    Espeak {
        /// What was being done.
        operation: &'static str,
        /// espeak-ng's status code.
        code: i64,
    },
    /// The piper model failed to run (onnxruntime error).
    #[error("piper voice `{voice}` failed: {message}")]
    Piper {
        /// The voice id.
        voice: String,
        /// onnxruntime's message.
        message: String,
    },
    /// The text holds a NUL byte, which espeak-ng cannot take.
    #[error("text contains a NUL byte")]
    NulInText,
    /// An audio prompt file could not be opened.
    #[error("cannot open audio file {path}: {source}")]
    AudioIo {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An audio prompt file is not in a format symphonia can decode, or is corrupt.
    #[error("cannot decode audio file {path}: {message}")]
    AudioDecode {
        /// The file.
        path: PathBuf,
        /// symphonia's message.
        message: String,
    },
    /// Resampling failed (the rates are zero or out of the resampler's range).
    #[error(transparent)]
    Resample(#[from] ivr_core::resample::ResampleError),
    /// `tts.output_rate` is not a rate the engine's media path uses.
    #[error("tts.output_rate {0} Hz is not supported (use 16000 or 8000)")]
    UnsupportedOutputRate(u32),
    /// Writing a WAV file failed.
    #[error("cannot write WAV {path}: {message}")]
    WavWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The disk prompt cache could not be created or written. Synthesis still works;
    /// callers may log this and go on.
    #[error("prompt cache at {path}: {source}")]
    CacheIo {
        /// The cache directory or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
