//! Model preparation for `make setup`.
//!
//! No machine of this project reaches a model hub, so Whisper arrives as the
//! CTranslate2 (faster-whisper) `model.bin` shipped in PyPI packages (see
//! `models/whisper-base.toml`). This crate turns it into the whisper.cpp ggml
//! files the engine loads, and checks every produced file against the
//! committed manifest:
//!
//! - [`ct2`]: reads a CTranslate2 `model.bin` (format version 1-6).
//! - [`npy`]: reads one float32 array from a NumPy `.npz` (the mel filters).
//! - [`ggml`]: writes a whisper.cpp ggml file (header, mel filters, vocabulary,
//!   tensors) and quantises it to q8_0.
//! - [`whisper`]: maps CTranslate2 Whisper variables to whisper.cpp tensors
//!   (the layout of whisper.cpp `models/convert-pt-to-ggml.py`).
//! - [`manifest`]: the committed model manifest and sha256 verification.

pub mod ct2;
pub mod ggml;
pub mod manifest;
pub mod npy;
pub mod whisper;

/// Everything that can go wrong while preparing a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The CTranslate2 file ends early or holds a value the format does not allow.
    #[error("CTranslate2 model: {0}")]
    Ct2(String),
    /// A variable the Whisper mapping needs is missing or has an unexpected shape or type.
    #[error("variable `{name}`: {problem}")]
    Variable {
        /// CTranslate2 variable name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The `.npz` archive or the `.npy` array inside it cannot be read.
    #[error("mel filters: {0}")]
    Npy(String),
    /// A line of the tiktoken vocabulary is not `base64 rank`.
    #[error("vocabulary line {line}: {problem}")]
    Vocab {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The ggml input of the quantiser is not a whisper.cpp f16/f32 file.
    #[error("ggml file: {0}")]
    Ggml(String),
    /// The manifest cannot be read or parsed.
    #[error("manifest {path}: {problem}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// Parse error.
        problem: String,
    },
    /// A produced or downloaded file does not have the size or sha256 the manifest pins.
    #[error("{path}: {what} is {actual}, the manifest expects {expected}")]
    Mismatch {
        /// The file checked.
        path: String,
        /// `size` or `sha256`.
        what: &'static str,
        /// What the file has.
        actual: String,
        /// What the manifest says.
        expected: String,
    },
}

impl ModelError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
