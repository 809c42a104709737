//! The end-of-turn models of `[turn]` (both off by default), loaded once at start and shared by
//! every call: Silero VAD (run inline on each call's frames, through
//! `ivr_media::vad::FrameVad`) and Smart Turn (run as a call job on a
//! blocking thread, see `call::jobs`). A missing model or onnxruntime does
//! not stop the engine: it runs with the energy VAD and the plain end
//! silence and says so in the log (`ivr doctor` names the fix).

use std::path::Path;
use std::sync::Arc;

use ivr_media::vad::FrameVad;
use ivr_turn::{SileroConfig, SileroModel, SmartTurn};

use crate::config::{TurnConfig, VadKind};

/// Makes a call's voice activity detector.
pub type VadFactory = Arc<dyn Fn() -> Box<dyn FrameVad> + Send + Sync>;

/// What `[turn]` loaded.
#[derive(Clone, Default)]
pub struct TurnModels {
    /// Silero VAD, if chosen and loaded.
    pub silero: Option<Arc<SileroModel>>,
    /// Smart Turn, if on and loaded.
    pub smart_turn: Option<Arc<SmartTurn>>,
}

impl std::fmt::Debug for TurnModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnModels")
            .field("silero", &self.silero.is_some())
            .field("smart_turn", &self.smart_turn.is_some())
            .finish()
    }
}

impl TurnModels {
    /// Loads what `cfg` asks for (on the calling thread: a blocking call).
    pub fn load(cfg: &TurnConfig, onnxruntime: &Path) -> Self {
        let silero = (cfg.vad == VadKind::Silero)
            .then(|| SileroModel::load(&cfg.silero_model, onnxruntime, 2))
            .and_then(|r| {
                r.inspect_err(|e| tracing::warn!(error = %e, "Silero VAD unavailable; the energy VAD is used"))
                    .ok()
            })
            .map(Arc::new);
        let smart_turn = cfg
            .smart_turn
            .then(|| SmartTurn::load(&cfg.smart_turn_model, onnxruntime, cfg.smart_turn_sessions))
            .and_then(|r| {
                r.inspect_err(|e| tracing::warn!(error = %e, "Smart Turn unavailable; utterances end after the end silence only"))
                    .ok()
            })
            .map(Arc::new);
        tracing::info!(
            silero = silero.is_some(),
            smart_turn = smart_turn.is_some(),
            "end-of-turn models"
        );
        TurnModels { silero, smart_turn }
    }

    /// The VAD factory for calls (None: the media session's energy VAD).
    pub fn vad_factory(&self) -> Option<VadFactory> {
        let m = self.silero.clone()?;
        Some(Arc::new(move || {
            Box::new(m.vad(SileroConfig::default())) as Box<dyn FrameVad>
        }))
    }
}
