//! Mono PCM audio.

use std::time::Duration;

/// The engine's internal rate for speech recognition and VAD (whisper wants 16 kHz).
pub const ENGINE_RATE: u32 = 16_000;
/// G.711 narrowband rate.
pub const NARROWBAND_RATE: u32 = 8_000;

/// Mono signed 16-bit PCM at `sample_rate` Hz.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Pcm {
    /// Samples per second.
    pub sample_rate: u32,
    /// The samples, one channel.
    pub samples: Vec<i16>,
}

impl Pcm {
    /// Wraps samples at a rate.
    pub fn new(sample_rate: u32, samples: Vec<i16>) -> Self {
        Self {
            sample_rate,
            samples,
        }
    }

    /// How long the audio plays.
    pub fn duration(&self) -> Duration {
        if self.sample_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.sample_rate))
    }

    /// Samples as f32 in [-1, 1] (what whisper takes).
    pub fn to_f32(&self) -> Vec<f32> {
        self.samples
            .iter()
            .map(|s| f32::from(*s) / 32768.0)
            .collect()
    }
}

impl std::fmt::Debug for Pcm {
    // Audio of a caller is personal data too: never dump samples into a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pcm({} Hz, {} samples, {:?})",
            self.sample_rate,
            self.samples.len(),
            self.duration()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_and_debug() {
        let p = Pcm::new(8000, vec![1; 8000]);
        assert_eq!(p.duration(), Duration::from_secs(1));
        assert_eq!(format!("{p:?}"), "Pcm(8000 Hz, 8000 samples, 1s)");
        assert_eq!(Pcm::new(0, vec![]).duration(), Duration::ZERO);
    }
}
