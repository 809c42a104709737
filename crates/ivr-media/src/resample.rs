//! Sample-rate conversion.
//!
//! - Prompts (any rate, e.g. 22.05 kHz from a TTS voice) are converted once per
//!   `play()` by the workspace's one clip resampler, [`resample`]
//!   (`ivr_core::resample`, rubato's FFT resampler).
//! - The per-packet hot path only ever converts 8 <-> 16 kHz (G.711 narrowband to
//!   the 16 kHz engine rate and back). For that a fixed 2:1 polyphase half-band
//!   FIR ([`Upsampler2x`], [`Downsampler2x`]) with state in fixed arrays is used:
//!   it allocates nothing and costs ~48 multiply-adds per output sample. Why
//!   not rubato here too: rubato's `FftFixedInOut` with `process_into_buffer`
//!   allocates nothing either and costs about the same per 20 ms frame (~1.2 us
//!   against the FIR's ~1.8 us, release build on the 2-core dev machine under
//!   load; the bench `media` measures both), but it delays the audio by its
//!   FFT block, 10 ms each way at 20 ms packets, against the FIR's
//!   [`GROUP_DELAY_16K`] samples (1.4 ms), and it takes only the block size it
//!   was built for, where packets arrive as 10-60 ms of audio (ptime, a
//!   re-INVITE changing it mid-call, concealment frames). The bench prints both
//!   delays (`upsample_2x_delay_ms`).

pub use ivr_core::resample::{resample, ResampleError};

/// Taps of the half-band low-pass (odd length, linear phase).
const TAPS: usize = 47;
/// Delay of the half-band filter in 16 kHz samples (it is linear phase:
/// half its length).
pub const GROUP_DELAY_16K: usize = (TAPS - 1) / 2;
/// Largest input frame the fixed resamplers take (60 ms at 16 kHz).
pub const MAX_FRAME: usize = 960;

fn lowpass() -> [f32; TAPS] {
    // Windowed sinc (Blackman), cutoff at a quarter of the high rate (the 8 kHz
    // Nyquist), normalised to unity DC gain.
    let mut h = [0f32; TAPS];
    let m = (TAPS - 1) as f64;
    let mut sum = 0.0;
    for (i, v) in h.iter_mut().enumerate() {
        let n = i as f64 - m / 2.0;
        let x = std::f64::consts::PI * n * 0.5;
        let sinc = if n == 0.0 {
            0.5
        } else {
            (x).sin() / (std::f64::consts::PI * n)
        };
        let w = 0.42 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / m).cos()
            + 0.08 * (4.0 * std::f64::consts::PI * i as f64 / m).cos();
        let c = sinc * w;
        *v = c as f32;
        sum += c;
    }
    for v in h.iter_mut() {
        *v = (f64::from(*v) / sum) as f32;
    }
    h
}

fn sat(x: f32) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

/// Dot product with eight independent accumulators (lets the compiler use SIMD:
/// float addition is not reassociated automatically).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        sum += x * y;
    }
    sum
}

const EVEN: usize = TAPS / 2 + 1; // 24 even-indexed taps
const ODD: usize = TAPS / 2; // 23 odd-indexed taps

/// 8 kHz -> 16 kHz, streaming, no allocation after construction.
///
/// Polyphase: the zero-stuffed signal is filtered with the even taps for even
/// outputs and the odd taps for odd outputs. The filter is symmetric, so each
/// phase's taps read in order are already time-reversed.
#[derive(Clone)]
pub struct Upsampler2x {
    even: [f32; EVEN],
    odd: [f32; ODD],
    hist: [f32; EVEN],
}

impl Default for Upsampler2x {
    fn default() -> Self {
        Self::new()
    }
}

impl Upsampler2x {
    /// A fresh filter (silent history).
    pub fn new() -> Self {
        let h = lowpass();
        let mut even = [0f32; EVEN];
        let mut odd = [0f32; ODD];
        for (i, c) in h.iter().enumerate() {
            if i % 2 == 0 {
                even[i / 2] = 2.0 * c;
            } else {
                odd[i / 2] = 2.0 * c;
            }
        }
        Upsampler2x {
            even,
            odd,
            hist: [0.0; EVEN],
        }
    }

    /// Converts `input` (8 kHz) into `out` (16 kHz, twice as long); returns samples written.
    /// Input beyond [`MAX_FRAME`] or `out.len() / 2` is ignored.
    pub fn process(&mut self, input: &[i16], out: &mut [i16]) -> usize {
        let n = input.len().min(out.len() / 2).min(MAX_FRAME);
        let mut buf = [0f32; MAX_FRAME + EVEN];
        buf[..EVEN].copy_from_slice(&self.hist);
        for (b, s) in buf[EVEN..EVEN + n].iter_mut().zip(input) {
            *b = f32::from(*s);
        }
        for (k, pair) in out[..2 * n].chunks_exact_mut(2).enumerate() {
            // x[k] sits at buf[EVEN + k]; the even phase needs x[k-23..=k], the odd x[k-22..=k].
            pair[0] = sat(dot(&self.even, &buf[k + 1..k + 1 + EVEN]));
            pair[1] = sat(dot(&self.odd, &buf[k + 2..k + 2 + ODD]));
        }
        self.hist.copy_from_slice(&buf[n..n + EVEN]);
        2 * n
    }
}

/// 16 kHz -> 8 kHz, streaming, no allocation after construction.
#[derive(Clone)]
pub struct Downsampler2x {
    h: [f32; TAPS],
    hist: [f32; TAPS],
    phase: bool,
}

impl Default for Downsampler2x {
    fn default() -> Self {
        Self::new()
    }
}

impl Downsampler2x {
    /// A fresh filter.
    pub fn new() -> Self {
        Downsampler2x {
            h: lowpass(),
            hist: [0.0; TAPS],
            phase: false,
        }
    }

    /// Converts `input` (16 kHz) into `out` (8 kHz); returns samples written.
    pub fn process(&mut self, input: &[i16], out: &mut [i16]) -> usize {
        let n = input.len().min(MAX_FRAME);
        let mut buf = [0f32; MAX_FRAME + TAPS];
        buf[..TAPS].copy_from_slice(&self.hist);
        for (b, s) in buf[TAPS..TAPS + n].iter_mut().zip(input) {
            *b = f32::from(*s);
        }
        let mut w = 0;
        let mut j = usize::from(self.phase);
        while j < n && w < out.len() {
            // Output aligned with input j: the symmetric filter over x[j-46..=j].
            out[w] = sat(dot(&self.h, &buf[j + 1..j + 1 + TAPS]));
            w += 1;
            j += 2;
        }
        // Keep the decimation phase across calls with odd lengths.
        self.phase = j > n;
        self.hist.copy_from_slice(&buf[n..n + TAPS]);
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }
    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn upsampler_keeps_speech_band_tone_level() {
        let mut up = Upsampler2x::new();
        let input = tone(8000, 1000.0, 1600);
        let mut out = vec![0i16; 3200];
        for (i, chunk) in input.chunks(160).enumerate() {
            up.process(chunk, &mut out[i * 320..(i + 1) * 320]);
        }
        let r = rms(&out[400..]) / rms(&input[200..]);
        assert!((0.95..1.05).contains(&r), "gain {r}");
    }

    #[test]
    fn downsampler_removes_alias_band_and_keeps_passband() {
        let mut d = Downsampler2x::new();
        let mut out = vec![0i16; 800];
        d.process(&tone(16000, 1000.0, 1600)[..960], &mut out);
        let pass = rms(&out[100..480]);
        let mut d = Downsampler2x::new();
        d.process(&tone(16000, 6000.0, 1600)[..960], &mut out);
        let stop = rms(&out[100..480]);
        assert!(pass > 5000.0 && stop < 100.0, "pass {pass} stop {stop}");
    }
}
