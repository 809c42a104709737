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

/// 10 ms at 16 kHz: the frame of [`settle_tail`].
const TAIL_FRAME: usize = 160;
/// Audio kept after the last speech frame (the soft end of a word).
const TAIL_KEEP: usize = 10;
/// Silence (frames) appended after that.
const TAIL_PAD: usize = 20;

/// Gives an utterance (16 kHz, as f32) the same ending whatever silence the
/// endpointer left after it: the trailing frames quieter than the speech
/// (below both 35 dB under the loudest frame and twice the quietest one's
/// level, so line noise counts as quiet) are cut 100 ms after the last
/// speech frame and 200 ms of digital silence follow. The eager end of turn
/// recognises the utterance after 240 ms of silence and the confirmed end
/// comes with 400 ms: without this whisper sees two different inputs
/// (different length, encoder context and noise) and may hear different
/// words ("indrush please" for "English please"). With it, both are the
/// same samples.
pub fn settle_tail(samples: &mut Vec<f32>) {
    let frames: Vec<f32> = samples
        .chunks(TAIL_FRAME)
        .map(|f| (f.iter().map(|x| x * x).sum::<f32>() / f.len() as f32).sqrt())
        .collect();
    let Some(peak) = frames.iter().copied().reduce(f32::max) else {
        return;
    };
    if peak <= 0.0 {
        return;
    }
    let floor = frames.iter().copied().fold(f32::INFINITY, f32::min);
    let quiet = (peak * 10f32.powf(-35.0 / 20.0)).max(floor * 2.0);
    let Some(last) = frames.iter().rposition(|&r| r > quiet) else {
        return;
    };
    let end = ((last + 1 + TAIL_KEEP) * TAIL_FRAME).min(samples.len());
    samples.truncate(end);
    samples.resize(end + TAIL_PAD * TAIL_FRAME, 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 s of a tone then `silence` ms of low noise.
    fn utterance(silence_ms: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..16_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
        v.extend((0..silence_ms * 16).map(|i| 0.001 * ((i * 7919 % 13) as f32 - 6.0) / 6.0));
        v
    }

    #[test]
    fn the_tail_is_the_same_whatever_silence_followed() {
        let mut early = utterance(240);
        let mut confirmed = utterance(400);
        settle_tail(&mut early);
        settle_tail(&mut confirmed);
        assert_eq!(early, confirmed);
        assert_eq!(
            early.len(),
            16_000 + 300 * 16,
            "speech, 100 ms kept, 200 ms added"
        );
        let mut silent = vec![0.0f32; 800];
        settle_tail(&mut silent);
        assert_eq!(silent.len(), 800, "nothing to settle in digital silence");
        let mut empty = Vec::new();
        settle_tail(&mut empty);
        assert!(empty.is_empty());
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
