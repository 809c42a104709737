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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

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
    pool: Vec<Mutex<Slot>>,
    next: AtomicUsize,
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
        let pool = (0..sessions.max(1))
            .map(|_| {
                Ok(Mutex::new(Slot {
                    session: crate::session(model)?,
                    mel: MelExtractor::new(),
                    features: Vec::with_capacity(N_MELS * N_FRAMES),
                }))
            })
            .collect::<Result<Vec<_>, TurnError>>()?;
        Ok(SmartTurn {
            pool,
            next: AtomicUsize::new(0),
        })
    }

    /// A free session, else the next one in turn (waiting for it).
    fn slot(&self) -> MutexGuard<'_, Slot> {
        let n = self.pool.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            match self.pool[(start + i) % n].try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.pool[start % n]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
