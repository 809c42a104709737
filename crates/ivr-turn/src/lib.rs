//! End of turn: the two ONNX models that decide when a caller has finished.
//!
//! - [`silero`]: Silero VAD v6 (speech probability per 32 ms at 8 kHz) as an
//!   [`ivr_media::vad::FrameVad`], so the media session's endpointer runs on it
//!   instead of the energy VAD. Cheap enough to run inline on the call's frames
//!   (a fraction of a millisecond per 32 ms chunk, one shared session).
//! - [`smart_turn`]: Smart Turn v3.2, "is this sentence finished?", on the
//!   last 8 s of the utterance after a short silence. Tens of milliseconds per
//!   run on these CPUs, so the engine runs it as a job off the RTP path.
//! - [`mel`]: the Whisper-style log-mel features Smart Turn reads.
//!
//! Sans-IO in the sense that matters for the call core: frames and audio in,
//! probabilities out; no clock, no sockets, no threads. Loading a model reads
//! its file (once, at engine start).
//!
//! onnxruntime is loaded at run time (`ort` with `load-dynamic`), the same
//! library the piper voices use; [`ensure_onnxruntime`] checks the file first
//! because ort hangs instead of failing on a missing library.
//!
//! Why a crate of its own: `ivr-media` stays free of onnxruntime (its tests,
//! fuzz targets and the SIP-only builds need no native library); the VAD
//! plugs into it through the `FrameVad` trait.

mod error;
pub mod mel;
pub mod silero;
pub mod smart_turn;

use std::path::Path;

pub use error::TurnError;
pub use silero::{SileroConfig, SileroModel, SileroVad};
pub use smart_turn::SmartTurn;

/// Loads onnxruntime from `lib` (once per process; later calls, and ivr-tts's
/// own loading of the same library, are no-ops). Checks the file first.
///
/// # Errors
/// [`TurnError::Runtime`] when the file is missing or cannot be loaded.
pub fn ensure_onnxruntime(lib: &Path) -> Result<(), TurnError> {
    if !lib.is_file() {
        return Err(TurnError::Runtime(format!(
            "onnxruntime library {} not found: run `make setup` (scripts/setup/20-voices.sh)",
            lib.display()
        )));
    }
    ort::init_from(lib)
        .map(|b| {
            b.with_name("ivr").commit();
        })
        .map_err(|e| {
            TurnError::Runtime(format!(
                "cannot load onnxruntime from {}: {e}",
                lib.display()
            ))
        })
}

/// A small pool of model sessions (or per-session state) shared by every
/// call: a free one is taken, else the next in turn is waited for.
pub(crate) struct Pool<T> {
    slots: Vec<std::sync::Mutex<T>>,
    next: std::sync::atomic::AtomicUsize,
}

impl<T> Pool<T> {
    /// `n` slots (at least one), each made by `make`.
    pub(crate) fn build(
        n: usize,
        mut make: impl FnMut() -> Result<T, TurnError>,
    ) -> Result<Self, TurnError> {
        let slots = (0..n.max(1))
            .map(|_| make().map(std::sync::Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pool {
            slots,
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// How many slots.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// A free slot, else the next one in turn (waiting for it). A slot
    /// poisoned by a panic is taken as it is (a model run keeps no state
    /// between runs that a panic could leave half-written).
    pub(crate) fn get(&self) -> std::sync::MutexGuard<'_, T> {
        use std::sync::TryLockError;
        let n = self.slots.len();
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..n {
            match self.slots[(start + i) % n].try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.slots[start % n]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A session on one thread (the engine runs many calls; one model run must
/// not take every core).
fn session(model: &Path) -> Result<ort::session::Session, TurnError> {
    if !model.is_file() {
        return Err(TurnError::ModelMissing(model.to_path_buf()));
    }
    let fail = |e: &dyn std::fmt::Display| TurnError::Model {
        model: model.to_path_buf(),
        reason: e.to_string(),
    };
    ort::session::Session::builder()
        .map_err(|e| fail(&e))?
        .with_intra_threads(1)
        .map_err(|e| fail(&e))?
        .with_inter_threads(1)
        .map_err(|e| fail(&e))?
        .commit_from_file(model)
        .map_err(|e| fail(&e))
}
