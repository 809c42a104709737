//! Building the STT pool from `[stt]`.
//!
//! Not implemented yet: the whisper engine lives in `ivr-stt`, which had no
//! recogniser when this was written; until it is wired here every utterance
//! fails with "speech-to-text is not available" and the flows fall back to
//! keys (each question accepts DTMF).

use crate::config::SttConfig;
use crate::speech::SpeechPool;

/// The pool `[stt]` describes.
pub fn pool(cfg: &SttConfig) -> SpeechPool {
    let why = format!(
        "not implemented: the whisper pool of ivr-stt is not wired into the engine yet (model {})",
        cfg.model.display()
    );
    tracing::warn!("{why}");
    SpeechPool::unavailable(why)
}
