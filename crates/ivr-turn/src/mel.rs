//! Whisper-style log-mel features of the last 8 s of a turn, as Smart Turn v3
//! reads them: the numbers of `transformers.WhisperFeatureExtractor(chunk_length=8)`
//! with `do_normalize=True` (pipecat's `_whisper_features.py` vendors the same
//! math), computed here in Rust.
//!
//! 1. The last 8 s at 16 kHz (128,000 samples), zeros in front when shorter.
//! 2. Zero mean, unit variance over those 8 s (the padding included).
//! 3. Centred STFT: reflect padding of 200 samples either side, periodic Hann
//!    window of 400, hop 160, power spectrum (201 bins); 801 frames, the last
//!    dropped.
//! 4. Slaney mel filterbank (80 filters, 0-8 kHz, area-normalised), floor
//!    1e-10, log10; everything below (max - 8) raised to it; (x + 4) / 4.
//!
//! Frames that lie wholly in the constant front padding have one spectrum,
//! computed once: a 2 s utterance costs a quarter of 800 FFTs.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// Samples per second the features are computed at.
pub const SAMPLE_RATE: u32 = 16_000;
/// FFT length (25 ms).
pub const N_FFT: usize = 400;
/// Hop between frames (10 ms).
pub const HOP: usize = 160;
/// Mel bands.
pub const N_MELS: usize = 80;
/// Frames (8 s).
pub const N_FRAMES: usize = 800;
/// Samples in the window (8 s).
pub const N_SAMPLES: usize = N_FRAMES * HOP;
const BINS: usize = N_FFT / 2 + 1;

/// One mel filter: its first FFT bin and its non-zero weights.
#[derive(Debug, Clone)]
struct Filter {
    first: usize,
    weights: Vec<f64>,
}

/// Computes the features; holds the FFT plan and buffers (reuse it).
pub struct MelExtractor {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    filters: Vec<Filter>,
    x: Vec<f32>,
    frame: Vec<f64>,
    spectrum: Vec<realfft::num_complex::Complex<f64>>,
    scratch: Vec<realfft::num_complex::Complex<f64>>,
    power: Vec<f64>,
    /// Compute the constant front padding's spectrum once (off only in tests).
    shortcut: bool,
}

impl std::fmt::Debug for MelExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelExtractor").finish_non_exhaustive()
    }
}

impl Default for MelExtractor {
    fn default() -> Self {
        Self::new()
    }
}

fn hz_to_mel(f: f64) -> f64 {
    let logstep = 27.0 / 6.4f64.ln();
    if f >= 1000.0 {
        15.0 + (f / 1000.0).ln() * logstep
    } else {
        3.0 * f / 200.0
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let logstep = 6.4f64.ln() / 27.0;
    if m >= 15.0 {
        1000.0 * (logstep * (m - 15.0)).exp()
    } else {
        200.0 * m / 3.0
    }
}

fn filterbank() -> Vec<Filter> {
    let (mel_min, mel_max) = (hz_to_mel(0.0), hz_to_mel(f64::from(SAMPLE_RATE) / 2.0));
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let nyquist = f64::from(SAMPLE_RATE / 2);
    (0..N_MELS)
        .map(|m| {
            let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (hi - lo);
            let w: Vec<f64> = (0..BINS)
                .map(|b| {
                    let f = nyquist * b as f64 / (BINS - 1) as f64;
                    let down = (f - lo) / (mid - lo);
                    let up = (hi - f) / (hi - mid);
                    down.min(up).max(0.0) * norm
                })
                .collect();
            let first = w.iter().position(|v| *v > 0.0).unwrap_or(0);
            let last = w.iter().rposition(|v| *v > 0.0).unwrap_or(first);
            Filter {
                first,
                weights: w[first..=last].to_vec(),
            }
        })
        .collect()
}

impl MelExtractor {
    /// Plans the FFT and builds the filterbank.
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        let window = (0..N_FFT)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos())
            .collect();
        MelExtractor {
            fft,
            window,
            filters: filterbank(),
            x: vec![0.0; N_SAMPLES],
            frame: vec![0.0; N_FFT],
            spectrum,
            scratch,
            power: vec![0.0; BINS],
            shortcut: true,
        }
    }

    /// The features of the last 8 s of `pcm` (16 kHz), `[N_MELS, N_FRAMES]`
    /// row-major, into `out` (resized).
    pub fn features(&mut self, pcm: &[i16], out: &mut Vec<f32>) {
        let take = pcm.len().min(N_SAMPLES);
        let pad = N_SAMPLES - take;
        self.x[..pad].fill(0.0);
        for (d, s) in self.x[pad..].iter_mut().zip(&pcm[pcm.len() - take..]) {
            *d = f32::from(*s) / 32768.0;
        }
        let n = N_SAMPLES as f64;
        let mean = self.x.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
        let var = self
            .x
            .iter()
            .map(|v| (f64::from(*v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let scale = 1.0 / (var + 1e-7).sqrt();
        for v in &mut self.x {
            *v = ((f64::from(*v) - mean) * scale) as f32;
        }
        out.clear();
        out.resize(N_MELS * N_FRAMES, 0.0);
        // Frames whose samples (centre +-200) all lie in the front padding.
        let half = N_FFT / 2;
        let constant_frames = if self.shortcut && pad >= half {
            ((pad - half) / HOP + 1).min(N_FRAMES)
        } else {
            0
        };
        let mut max = f32::MIN;
        for t in 0..N_FRAMES {
            if t > 0 && t < constant_frames {
                for m in 0..N_MELS {
                    out[m * N_FRAMES + t] = out[m * N_FRAMES];
                }
                continue;
            }
            for (i, f) in self.frame.iter_mut().enumerate() {
                // Index into x of the reflect-padded signal.
                let p = (t * HOP + i) as isize - half as isize;
                let j = if p < 0 {
                    (-p) as usize
                } else if p as usize >= N_SAMPLES {
                    2 * N_SAMPLES - 2 - p as usize
                } else {
                    p as usize
                };
                *f = f64::from(self.x[j]) * self.window[i];
            }
            // A plan of the right length never fails on buffers of its own making.
            if self
                .fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)
                .is_err()
            {
                return;
            }
            for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
                *p = c.norm_sqr();
            }
            for (m, filt) in self.filters.iter().enumerate() {
                let e: f64 = filt
                    .weights
                    .iter()
                    .zip(&self.power[filt.first..])
                    .map(|(w, p)| w * p)
                    .sum();
                let v = e.max(1e-10).log10() as f32;
                max = max.max(v);
                out[m * N_FRAMES + t] = v;
            }
        }
        let floor = max - 8.0;
        for v in out.iter_mut() {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 s of two tones (440 Hz and 1,200 Hz) at 16 kHz.
    fn tones() -> Vec<i16> {
        (0..16_000)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                let s = 0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + 0.2 * (2.0 * std::f64::consts::PI * 1200.0 * t).sin();
                (s * 32767.0) as i16
            })
            .collect()
    }

    /// Reference values from pipecat 1.14's `compute_whisper_log_mel_features`
    /// (numpy) on the same samples, front-padded to 8 s as pipecat does.
    #[test]
    fn features_match_the_python_reference() {
        let mut m = MelExtractor::new();
        let mut out = Vec::new();
        m.features(&tones(), &mut out);
        assert_eq!(out.len(), N_MELS * N_FRAMES);
        let at = |mel: usize, frame: usize| out[mel * N_FRAMES + frame];
        for (mel, frame, want) in REFERENCE {
            let got = at(*mel, *frame);
            assert!(
                (got - want).abs() < 2e-3,
                "mel {mel} frame {frame}: {got} vs python {want}"
            );
        }
    }

    #[test]
    fn the_padding_shortcut_gives_what_every_fft_gives() {
        let mut fast = MelExtractor::new();
        let mut full = MelExtractor::new();
        full.shortcut = false;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for len in [8000, 3000, 16_000] {
            fast.features(&tones()[..len], &mut a);
            full.features(&tones()[..len], &mut b);
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-5, "{len} samples: differs by {worst}");
        }
    }

    const REFERENCE: &[(usize, usize, f32)] = include!("mel_reference.in");
}
