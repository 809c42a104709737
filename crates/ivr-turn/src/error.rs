use std::path::PathBuf;

/// Why an end-of-turn model cannot be used or did not run.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// onnxruntime is missing or could not be loaded.
    #[error("{0}")]
    Runtime(String),
    /// The model file is not there (`make setup` fetches it).
    #[error("model {0} not found: run `make setup` (scripts/setup/50-turn-models.sh)")]
    ModelMissing(PathBuf),
    /// onnxruntime refused the model file.
    #[error("cannot load {model}: {reason}")]
    Model {
        /// The file.
        model: PathBuf,
        /// onnxruntime's message.
        reason: String,
    },
    /// A model run failed (onnxruntime's message).
    #[error("model run failed: {0}")]
    Run(String),
    /// Audio at a rate the model cannot take.
    #[error("audio at {0} Hz: the model takes 16 kHz (or 8 kHz, resampled)")]
    Rate(u32),
}
