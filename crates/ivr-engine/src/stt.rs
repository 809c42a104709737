//! Building the STT pool from `[stt]` (`ivr_stt::SttConfig`): the whisper
//! model is loaded once at start. A missing model does not stop the engine:
//! a caller's words then move the call to keys, as a full queue does
//! (`ivr_flow::Event::SpeechUnavailable`); `ivr doctor` names the fix.

use std::sync::Arc;

use ivr_stt::{SttConfig, WhisperStt};

use crate::speech::SpeechPool;

/// The pool `[stt]` describes (loading the model on a blocking thread).
pub async fn pool(cfg: &SttConfig) -> SpeechPool {
    let c = cfg.clone();
    let workers = cfg.effective_workers();
    match tokio::task::spawn_blocking(move || WhisperStt::load(&c)).await {
        Ok(Ok(w)) => {
            tracing::info!(workers, "speech-to-text ready");
            SpeechPool::new(Arc::new(w), workers).with_queue(cfg.queue)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "speech-to-text unavailable; callers must use keys");
            SpeechPool::unavailable(e.to_string())
        }
        Err(e) => SpeechPool::unavailable(format!("model loading panicked: {e}")),
    }
}
