//! Silero VAD v6 as the media session's voice activity detector.
//!
//! The model takes 256 samples at 8 kHz (32 ms) with the 32 samples before
//! them as context and its recurrent state, and gives a speech probability.
//! Frames arrive as 20 ms (160 samples); they are gathered until a chunk is
//! complete, so each frame's verdict is the newest probability (at most one
//! chunk old). Speech starts at `threshold` and ends below `release`
//! (hysteresis, as silero's own `get_speech_timestamps` does).
//!
//! The energy VAD runs beside it for what Silero does not give (frame energy,
//! noise floor, periodicity) and as the fallback should a model run fail
//! (reported once in the log; the call goes on).
//!
//! One [`SileroModel`] (a small pool of sessions) serves every call; each call
//! has its own [`SileroVad`] with its state.

use std::path::Path;
use std::sync::{Arc, MutexGuard};

use ivr_media::vad::{FrameVad, Vad, VadConfig, VadFrame, FRAME_8K};
use ort::session::Session;
use ort::value::TensorRef;

use crate::TurnError;

/// Samples per model run at 8 kHz.
pub const CHUNK: usize = 256;
/// Samples of context before each chunk at 8 kHz.
pub const CONTEXT: usize = 32;
const STATE: usize = 2 * 128;

/// Thresholds on Silero's speech probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SileroConfig {
    /// Speech starts at this probability.
    pub threshold: f32,
    /// Speech ends below this probability.
    pub release: f32,
    /// Voiced (what barge-in counts): speech at least this probable.
    pub voiced: f32,
}

impl Default for SileroConfig {
    fn default() -> Self {
        SileroConfig {
            threshold: 0.5,
            release: 0.35,
            voiced: 0.6,
        }
    }
}

/// A loaded Silero model (shared by every call).
pub struct SileroModel {
    pool: crate::Pool<Session>,
}

impl std::fmt::Debug for SileroModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroModel")
            .field("sessions", &self.pool.len())
            .finish()
    }
}

impl SileroModel {
    /// Loads `model` into `sessions` sessions (at least one), loading
    /// onnxruntime from `onnxruntime` first.
    ///
    /// # Errors
    /// [`TurnError`] when the library or the model is missing or refused.
    pub fn load(model: &Path, onnxruntime: &Path, sessions: usize) -> Result<Self, TurnError> {
        crate::ensure_onnxruntime(onnxruntime)?;
        Ok(SileroModel {
            pool: crate::Pool::build(sessions, || crate::session(model))?,
        })
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        self.pool.get()
    }

    /// One run: `input` is context + chunk (8 kHz, -1..1); `state` is
    /// replaced by the new state. Returns the speech probability.
    ///
    /// # Errors
    /// [`TurnError::Run`] with onnxruntime's message.
    pub fn run(
        &self,
        input: &[f32; CONTEXT + CHUNK],
        state: &mut [f32; STATE],
    ) -> Result<f32, TurnError> {
        let fail = |e: ort::Error| TurnError::Run(e.to_string());
        let sr = [8000i64];
        let mut session = self.session();
        let outputs = session
            .run(ort::inputs![
                "input" => TensorRef::from_array_view(([1usize, CONTEXT + CHUNK], &input[..])).map_err(fail)?,
                "state" => TensorRef::from_array_view(([2usize, 1, 128], &state[..])).map_err(fail)?,
                "sr" => TensorRef::from_array_view(([0usize; 0], &sr[..])).map_err(fail)?,
            ])
            .map_err(fail)?;
        let (_, p) = outputs["output"]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        let (_, s) = outputs["stateN"]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        if s.len() != STATE {
            return Err(TurnError::Run(format!("state of {} values", s.len())));
        }
        state.copy_from_slice(s);
        p.first()
            .copied()
            .ok_or_else(|| TurnError::Run("no probability".into()))
    }

    /// A detector for one call.
    pub fn vad(self: &Arc<Self>, cfg: SileroConfig) -> SileroVad {
        SileroVad {
            model: self.clone(),
            cfg,
            state: [0.0; STATE],
            input: [0.0; CONTEXT + CHUNK],
            filled: 0,
            prob: 0.0,
            speaking: false,
            energy: Vad::new(VadConfig::default()),
            failed: false,
        }
    }
}

/// Silero VAD for one call (frames in, verdicts out).
pub struct SileroVad {
    model: Arc<SileroModel>,
    cfg: SileroConfig,
    state: [f32; STATE],
    /// Context (first `CONTEXT`) then the chunk being gathered.
    input: [f32; CONTEXT + CHUNK],
    filled: usize,
    prob: f32,
    speaking: bool,
    energy: Vad,
    failed: bool,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroVad")
            .field("prob", &self.prob)
            .field("speaking", &self.speaking)
            .finish_non_exhaustive()
    }
}

impl SileroVad {
    /// The newest speech probability.
    pub fn probability(&self) -> f32 {
        self.prob
    }

    fn push(&mut self, samples: &[i16]) {
        for s in samples {
            self.input[CONTEXT + self.filled] = f32::from(*s) / 32768.0;
            self.filled += 1;
            if self.filled == CHUNK {
                self.filled = 0;
                match self.model.run(&self.input, &mut self.state) {
                    Ok(p) => self.prob = p,
                    Err(e) => {
                        if !self.failed {
                            tracing::warn!(error = %e, "silero VAD failed; the energy VAD decides for this call");
                        }
                        self.failed = true;
                    }
                }
                self.input.copy_within(CHUNK.., 0);
            }
        }
    }
}

impl FrameVad for SileroVad {
    fn process(&mut self, frame: &[i16]) -> VadFrame {
        let e = self.energy.process(frame);
        if self.failed {
            return e;
        }
        self.push(&frame[..frame.len().min(FRAME_8K)]);
        if self.failed {
            return e;
        }
        if self.prob >= self.cfg.threshold {
            self.speaking = true;
        } else if self.prob < self.cfg.release {
            self.speaking = false;
        }
        VadFrame {
            speech: self.speaking,
            voiced: self.speaking && self.prob >= self.cfg.voiced,
            ..e
        }
    }
}
