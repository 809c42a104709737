//! Getting audio into the shape whisper takes: WAV files (hound) to mono
//! PCM, and resampling to 16 kHz ([`resample`], the workspace's one clip
//! resampler: `ivr_core::resample`, rubato's FFT resampler). Used by
//! `ivr transcribe`, the speech test set and the benchmark; the call path
//! gets 16 kHz PCM from the media layer.

use std::path::Path;

use ivr_core::Pcm;

pub use ivr_core::resample::{resample, ResampleError};

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
    #[error(transparent)]
    Resample(#[from] ResampleError),
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

#[cfg(test)]
mod tests {
    use super::*;

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
