//! Pre-recorded prompts (WAV, MP3, FLAC, Ogg Vorbis; decoded with symphonia) and
//! WAV output.
//!
//! Many municipalities ship their greetings as recorded files: they play beside
//! synthesised speech, converted to the engine's PCM format (mono, s16, the
//! engine's rate).

use std::fs::File;
use std::path::Path;

use ivr_core::Pcm;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::TtsError;

/// Decodes an audio file to mono PCM at its own rate (channels are averaged).
pub fn decode_file(path: &Path) -> Result<Pcm, TtsError> {
    let file = File::open(path).map_err(|source| TtsError::AudioIo {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| TtsError::AudioDecode {
        path: path.to_path_buf(),
        message,
    };
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| bad(e.to_string()))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| bad("no audio track".into()))?;
    let track_id = track.id;
    let mut rate = track.codec_params.sample_rate;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| bad(e.to_string()))?;
    let mut mono: Vec<i16> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(bad(e.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet: skip it (a click is better than no greeting).
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(bad(e.to_string())),
        };
        let spec = *decoded.spec();
        rate = Some(spec.rate);
        let channels = spec.channels.count().max(1);
        let mut sb = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        sb.copy_interleaved_ref(decoded);
        for frame in sb.samples().chunks(channels) {
            let avg = frame.iter().sum::<f32>() / channels as f32;
            mono.push((avg * 32768.0).round().clamp(-32768.0, 32767.0) as i16);
        }
    }
    let rate = rate.ok_or_else(|| bad("unknown sample rate".into()))?;
    if mono.is_empty() {
        return Err(bad("no audio in the file".into()));
    }
    Ok(Pcm::new(rate, mono))
}

/// Decodes an audio prompt and converts it to `rate` Hz mono.
pub fn load_prompt(path: &Path, rate: u32) -> Result<Pcm, TtsError> {
    Ok(ivr_core::resample::resample(&decode_file(path)?, rate)?)
}

/// Writes mono 16-bit PCM as a WAV file.
pub fn write_wav(path: &Path, pcm: &Pcm) -> Result<(), TtsError> {
    let err = |e: hound::Error| TtsError::WavWrite {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: pcm.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    {
        let mut i16w = w.get_i16_writer(pcm.samples.len() as u32);
        for s in &pcm.samples {
            i16w.write_sample(*s);
        }
        i16w.flush().map_err(err)?;
    }
    w.finalize().map_err(err)
}

/// Sample magnitude under which synthesised audio counts as silent (about
/// -44 dBFS: the voices' own noise floor is far below it, speech onsets
/// above).
const ONSET_LEVEL: i16 = 200;
/// Silence kept in front of the first sound, so the onset is not clipped.
const ONSET_KEEP_MS: u32 = 10;

/// Drops the silence a voice puts in front of its speech (piper: about
/// 40 ms) but the last [`ONSET_KEEP_MS`]: every reply reaches the caller that
/// much sooner, and a piece spoken after another one (a lead-in, then the
/// value) does not add it to the pause between them. Audio that never rises
/// above the silence level is left as it is.
pub(crate) fn trim_leading_silence(samples: &mut Vec<i16>, rate: u32) {
    let Some(onset) = samples
        .iter()
        .position(|x| x.unsigned_abs() > ONSET_LEVEL.unsigned_abs())
    else {
        return;
    };
    let keep = (rate * ONSET_KEEP_MS / 1000) as usize;
    samples.drain(..onset.saturating_sub(keep));
}

#[cfg(test)]
mod trim_tests {
    use super::trim_leading_silence;

    #[test]
    fn leading_silence_is_cut_to_ten_ms_before_the_onset() {
        // 40 ms of near-silence (the noise floor), then sound, at 1 kHz.
        let mut s: Vec<i16> = (0..40).map(|i| if i % 2 == 0 { 3 } else { -3 }).collect();
        s.extend([1000, -1000, 500, 0, 0]);
        trim_leading_silence(&mut s, 1000);
        assert_eq!(s.len(), 10 + 5);
        assert_eq!(s[10], 1000);
    }

    #[test]
    fn audio_with_no_onset_or_an_early_one_is_kept_whole() {
        let mut quiet = vec![0i16; 100];
        trim_leading_silence(&mut quiet, 1000);
        assert_eq!(quiet.len(), 100);
        let mut early = vec![0, 0, 900, 0];
        trim_leading_silence(&mut early, 1000);
        assert_eq!(early, [0, 0, 900, 0]);
    }
}
