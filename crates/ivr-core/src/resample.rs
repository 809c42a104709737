//! Converting a whole clip of audio to another sample rate, band-limited
//! (rubato's FFT resampler: no aliasing when going down to 8 kHz for G.711).
//! Used once per prompt, recording or test file, never per packet: the
//! media hot path converts 8 <-> 16 kHz with its own fixed 2:1 filters
//! (`ivr_media::resample`), which allocate nothing.
//!
//! Behind the `resample` feature, so the crates that never convert audio
//! (SIP, flows) do not build rubato.

use rubato::{FftFixedIn, Resampler};

use crate::Pcm;

/// Input frames per FFT chunk: small enough for short prompts, large enough to be fast.
const CHUNK: usize = 1024;

/// Why a clip could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResampleError {
    /// One of the rates is 0 Hz.
    #[error("cannot resample {from} Hz to {to} Hz: a rate of 0 Hz")]
    ZeroRate {
        /// Rate of the audio given.
        from: u32,
        /// Rate wanted.
        to: u32,
    },
    /// The resampler refused the rates or failed while processing.
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    Resampler {
        /// Rate of the audio given.
        from: u32,
        /// Rate wanted.
        to: u32,
        /// rubato's message.
        reason: String,
    },
}

/// Converts `pcm` to `to` Hz. The output has `round(len * to / from)`
/// samples and is aligned with the input (the resampler's delay is removed).
///
/// # Errors
/// [`ResampleError`] when a rate is 0 Hz or the resampler refuses the pair.
pub fn resample(pcm: &Pcm, to: u32) -> Result<Pcm, ResampleError> {
    let from = pcm.sample_rate;
    if from == to {
        return Ok(pcm.clone());
    }
    if from == 0 || to == 0 {
        return Err(ResampleError::ZeroRate { from, to });
    }
    let fail = |e: &dyn std::fmt::Display| ResampleError::Resampler {
        from,
        to,
        reason: e.to_string(),
    };
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
    let mut r =
        FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1).map_err(|e| fail(&e))?;
    let delay = r.output_delay();
    let mut out: Vec<f32> = Vec::with_capacity(expected + delay + r.output_frames_max());
    let mut chunk = vec![vec![0f32; r.output_frames_max()]];
    let mut pos = 0;
    while out.len() < expected + delay {
        let need = r.input_frames_next();
        let (_, produced) = if pos + need <= n {
            r.process_into_buffer(&[&input[pos..pos + need]], &mut chunk, None)
        } else if pos < n {
            r.process_partial_into_buffer(Some(&[&input[pos..]]), &mut chunk, None)
        } else {
            // Flush the delay line with silence.
            r.process_partial_into_buffer(None::<&[&[f32]]>, &mut chunk, None)
        }
        .map_err(|e| fail(&e))?;
        if produced == 0 && pos >= n {
            break;
        }
        pos += need;
        out.extend_from_slice(&chunk[0][..produced]);
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
    fn piper_rate_to_16k_and_8k_keeps_length_pitch_and_level() {
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
    fn narrowband_to_16k_lines_up_with_the_input() {
        // No added delay: the result matches a 16 kHz rendering of the same tone.
        let r = resample(&tone(8_000, 440.0, 1.0), 16_000).unwrap();
        let ideal = tone(16_000, 440.0, 1.0);
        assert_eq!(r.samples.len(), ideal.samples.len());
        let err: f64 = r.samples[2000..14000]
            .iter()
            .zip(&ideal.samples[2000..14000])
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
            .sum::<f64>()
            / 12000.0;
        assert!(err < 320.0, "mean error {err} on amplitude 16000");
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
    fn odd_lengths_round_and_zero_rates_are_errors() {
        for n in [0usize, 1, 17, 1023, 1024, 1025, 4410] {
            let r = resample(&Pcm::new(44_100, vec![1000; n]), 16_000).unwrap();
            assert_eq!(r.samples.len(), (n * 16_000 + 22_050) / 44_100, "n={n}");
        }
        assert_eq!(
            resample(&Pcm::new(0, vec![1]), 8_000),
            Err(ResampleError::ZeroRate { from: 0, to: 8_000 })
        );
        assert!(resample(&Pcm::new(8_000, vec![1]), 0).is_err());
    }
}
