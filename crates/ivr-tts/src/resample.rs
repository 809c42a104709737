//! Sample-rate conversion (rubato's FFT resampler: band-limited, no aliasing
//! when going down to 8 kHz for G.711).

use ivr_core::Pcm;
use rubato::{FftFixedIn, Resampler};

use crate::TtsError;

/// Input frames per FFT chunk: small enough for short prompts, large enough to be fast.
const CHUNK: usize = 1024;

/// Converts `pcm` to `to` Hz. The output has `round(len * to / from)` samples and
/// is aligned with the input (the resampler's delay is removed).
pub fn resample(pcm: &Pcm, to: u32) -> Result<Pcm, TtsError> {
    let from = pcm.sample_rate;
    if from == to {
        return Ok(pcm.clone());
    }
    let err = |message: String| TtsError::Resample { from, to, message };
    if from == 0 || to == 0 {
        return Err(err("a rate of 0 Hz".into()));
    }
    let n = pcm.samples.len();
    let expected = ((n as u64 * u64::from(to) + u64::from(from) / 2) / u64::from(from)) as usize;
    if n == 0 {
        return Ok(Pcm::new(to, Vec::new()));
    }
    let input: Vec<f32> = pcm
        .samples
        .iter()
        .map(|s| f32::from(*s) / 32768.0)
        .collect();
    let mut r = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1)
        .map_err(|e| err(e.to_string()))?;
    let delay = r.output_delay();
    let mut out: Vec<f32> = Vec::with_capacity(expected + delay + CHUNK * 2);
    let mut pos = 0;
    while pos + r.input_frames_next() <= n {
        let need = r.input_frames_next();
        let o = r
            .process(&[&input[pos..pos + need]], None)
            .map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&o[0]);
        pos += need;
    }
    if pos < n {
        let o = r
            .process_partial(Some(&[&input[pos..]]), None)
            .map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&o[0]);
    }
    // Flush the delay line.
    while out.len() < expected + delay {
        let o = r
            .process_partial::<&[f32]>(None, None)
            .map_err(|e| err(e.to_string()))?;
        if o[0].is_empty() {
            break;
        }
        out.extend_from_slice(&o[0]);
    }
    let samples = out
        .iter()
        .skip(delay)
        .take(expected)
        .map(|x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    Ok(Pcm::new(to, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, secs: f64) -> Pcm {
        let n = (f64::from(rate) * secs) as usize;
        Pcm::new(
            rate,
            (0..n)
                .map(|i| {
                    ((i as f64 * hz * std::f64::consts::TAU / f64::from(rate)).sin() * 16000.0)
                        as i16
                })
                .collect(),
        )
    }

    /// Goertzel power of `hz` in `x`, normalised by length.
    fn power(x: &Pcm, hz: f64) -> f64 {
        let w = hz * std::f64::consts::TAU / f64::from(x.sample_rate);
        let (mut s1, mut s2) = (0.0, 0.0);
        for v in &x.samples {
            let s0 = f64::from(*v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (x.samples.len() as f64).powi(2)
    }

    #[test]
    fn piper_rate_to_16k_and_8k_keeps_length_and_pitch() {
        let t = tone(22_050, 440.0, 1.0);
        for to in [16_000, 8_000] {
            let r = resample(&t, to).unwrap();
            assert_eq!(r.sample_rate, to);
            assert_eq!(r.samples.len(), to as usize);
            // The tone is still 440 Hz and about as loud (not shifted, not attenuated).
            let p440 = power(&r, 440.0);
            assert!(p440 > power(&r, 600.0) * 100.0);
            assert!(
                (p440 / power(&t, 440.0) - 1.0).abs() < 0.1,
                "level changed: {}",
                p440 / power(&t, 440.0)
            );
        }
    }

    #[test]
    fn no_aliasing_when_going_to_8k() {
        // 5 kHz cannot be carried at 8 kHz; it must be filtered out, not fold to 3 kHz.
        let r = resample(&tone(16_000, 5_000.0, 0.5), 8_000).unwrap();
        // Away from the abrupt start and end of the test tone.
        let mid = &r.samples[1_000..3_000];
        let peak = mid.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!(peak < 300, "aliased energy, peak {peak}");
    }

    #[test]
    fn odd_lengths_and_up_sampling() {
        for n in [0usize, 1, 17, 1023, 1024, 1025, 4410] {
            let r = resample(&Pcm::new(44_100, vec![1000; n]), 16_000).unwrap();
            assert_eq!(r.samples.len(), (n * 16_000 + 22_050) / 44_100, "n={n}");
        }
        let up = resample(&tone(8_000, 300.0, 0.25), 16_000).unwrap();
        assert_eq!(up.samples.len(), 4_000);
        assert!(resample(&Pcm::new(0, vec![1]), 8_000).is_err());
    }
}
