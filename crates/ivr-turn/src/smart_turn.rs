//! Smart Turn v3.2: after a short silence, is the caller's sentence finished?
//!
//! The model (int8 ONNX, from the pipecat-ai wheel; Danish is among its 23
//! languages) reads the log-mel features of the last 8 s of the turn
//! ([`crate::mel`]) and gives the probability that the turn is complete
//! (its output is named `logits` but holds the sigmoid already: pipecat
//! compares it with 0.5 as it is).
//!
//! A run takes tens of milliseconds on these CPUs (measured in
//! `benches/turn_detect.rs`), so the engine runs it as a job, never on the
//! RTP path. A [`SmartTurn`] holds a small pool of sessions (each runs one
//! prediction at a time, on one thread).

use std::path::Path;
use std::sync::MutexGuard;

use ivr_core::Pcm;
use ort::session::Session;
use ort::value::TensorRef;

use crate::mel::{MelExtractor, N_FRAMES, N_MELS, SAMPLE_RATE};
use crate::TurnError;

struct Slot {
    session: Session,
    mel: MelExtractor,
    features: Vec<f32>,
}

/// A loaded Smart Turn model (shared by every call).
pub struct SmartTurn {
    pool: crate::Pool<Slot>,
}

impl std::fmt::Debug for SmartTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartTurn")
            .field("sessions", &self.pool.len())
            .finish()
    }
}

impl SmartTurn {
    /// Loads `model` into `sessions` onnxruntime sessions (at least one),
    /// loading onnxruntime from `onnxruntime` first.
    ///
    /// # Errors
    /// [`TurnError`] when the library or the model is missing or refused.
    pub fn load(model: &Path, onnxruntime: &Path, sessions: usize) -> Result<Self, TurnError> {
        crate::ensure_onnxruntime(onnxruntime)?;
        let pool = crate::Pool::build(sessions, || {
            Ok(Slot {
                session: crate::session(model)?,
                mel: MelExtractor::new(),
                features: Vec::with_capacity(N_MELS * N_FRAMES),
            })
        })?;
        Ok(SmartTurn { pool })
    }

    /// A free session, else the next one in turn (waiting for it).
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.pool.get()
    }

    /// The probability (0-1) that the turn in `pcm` is complete: the audio
    /// from the start of the utterance to now, at 16 kHz (8 kHz is
    /// resampled). Only the last 8 s are read.
    ///
    /// # Errors
    /// [`TurnError::Rate`] for other rates, [`TurnError::Run`] when the model fails.
    pub fn predict(&self, pcm: &Pcm) -> Result<f32, TurnError> {
        let wide;
        let samples = match pcm.sample_rate {
            SAMPLE_RATE => &pcm.samples,
            8000 => {
                wide = ivr_core::resample::resample(pcm, SAMPLE_RATE)
                    .map_err(|e| TurnError::Run(e.to_string()))?;
                &wide.samples
            }
            other => return Err(TurnError::Rate(other)),
        };
        let mut guard = self.slot();
        let slot = &mut *guard;
        slot.mel.features(samples, &mut slot.features);
        let input = TensorRef::from_array_view(([1usize, N_MELS, N_FRAMES], &slot.features[..]))
            .map_err(|e| TurnError::Run(e.to_string()))?;
        let outputs = slot
            .session
            .run(ort::inputs!["input_features" => input])
            .map_err(|e| TurnError::Run(e.to_string()))?;
        let (_, p) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| TurnError::Run(e.to_string()))?;
        p.first()
            .copied()
            .filter(|p| p.is_finite())
            .ok_or_else(|| TurnError::Run("the model gave no probability".into()))
    }
}
