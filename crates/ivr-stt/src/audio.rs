//! Getting audio into the shape whisper takes: WAV files (hound) to mono
//! PCM, and resampling to 16 kHz (rubato's FFT resampler). Used by
//! `ivr transcribe`, the speech test set and the benchmark; the call path
//! gets 16 kHz PCM from the media layer.

use std::path::Path;

use ivr_core::Pcm;
use rubato::{FftFixedInOut, Resampler};

/// Why audio could not be read or converted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The WAV file cannot be opened or decoded.
    #[error("{path}: {reason}")]
    Wav {
        /// The file.
        path: String,
        /// hound's error.
        reason: String,
    },
    /// The resampler refused the rates.
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    Resample {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// rubato's error.
        reason: String,
    },
}

/// Reads a WAV file (8-32 bit integer or 32-bit float, any channel count)
/// as mono 16-bit PCM at its own rate (channels are averaged).
pub fn read_wav(path: &Path) -> Result<Pcm, AudioError> {
    let err = |e: hound::Error| AudioError::Wav {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut r = hound::WavReader::open(path).map_err(err)?;
    let spec = r.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().collect::<Result<_, _>>().map_err(err)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
    };
    let samples = interleaved
        .chunks(channels)
        .map(|frame| {
            let m = frame.iter().sum::<f32>() / frame.len() as f32;
            (m * 32768.0).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    Ok(Pcm::new(spec.sample_rate, samples))
}

/// Resamples mono PCM to `rate` (band-limited FFT resampling); the output
/// has the same duration and no added delay.
pub fn resample(pcm: &Pcm, rate: u32) -> Result<Pcm, AudioError> {
    if pcm.sample_rate == rate || pcm.samples.is_empty() {
        return Ok(Pcm::new(rate, pcm.samples.clone()));
    }
    let fail = |e: &dyn std::fmt::Display| AudioError::Resample {
        from: pcm.sample_rate,
        to: rate,
        reason: e.to_string(),
    };
    let mut r = FftFixedInOut::<f32>::new(pcm.sample_rate as usize, rate as usize, 1024, 1)
        .map_err(|e| fail(&e))?;
    let input: Vec<f32> = pcm
        .samples
        .iter()
        .map(|s| f32::from(*s) / 32768.0)
        .collect();
    let want = (input.len() as u64 * u64::from(rate) / u64::from(pcm.sample_rate)) as usize;
    let delay = r.output_delay();
    let mut out: Vec<f32> = Vec::with_capacity(want + delay + 2048);
    let mut pos = 0;
    while pos < input.len() || out.len() < want + delay {
        let need = r.input_frames_next();
        let mut chunk = vec![0.0f32; need];
        let take = need.min(input.len().saturating_sub(pos));
        chunk[..take].copy_from_slice(&input[pos..pos + take]);
        pos += take;
        let o = r.process(&[chunk], None).map_err(|e| fail(&e))?;
        out.extend_from_slice(&o[0]);
    }
    let samples = out
        .iter()
        .skip(delay)
        .take(want)
        .map(|v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    Ok(Pcm::new(rate, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, secs: f32) -> Pcm {
        let n = (rate as f32 * secs) as usize;
        Pcm::new(
            rate,
            (0..n)
                .map(|i| {
                    ((i as f32 / rate as f32 * hz * std::f32::consts::TAU).sin() * 10_000.0) as i16
                })
                .collect(),
        )
    }

    #[test]
    fn narrowband_to_16k_keeps_duration_and_the_tone() {
        let p = tone(8000, 440.0, 1.0);
        let r = resample(&p, 16_000).unwrap();
        assert_eq!(r.sample_rate, 16_000);
        assert_eq!(r.samples.len(), 16_000);
        // Same tone: compare against a 16 kHz rendering away from the edges.
        let ideal = tone(16_000, 440.0, 1.0);
        let err: f64 = r.samples[2000..14000]
            .iter()
            .zip(&ideal.samples[2000..14000])
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
            .sum::<f64>()
            / 12000.0;
        assert!(err < 200.0, "mean error {err} on amplitude 10000");
    }

    #[test]
    fn reads_a_stereo_wav_as_mono() {
        let dir = std::env::temp_dir().join(format!("ivr-stt-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for _ in 0..100 {
            w.write_sample(1000i16).unwrap();
            w.write_sample(3000i16).unwrap();
        }
        w.finalize().unwrap();
        let p = read_wav(&path).unwrap();
        assert_eq!(
            (p.sample_rate, p.samples.len(), p.samples[0]),
            (22_050, 100, 2000)
        );
        assert!(read_wav(&dir.join("missing.wav"))
            .unwrap_err()
            .to_string()
            .contains("missing.wav"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
