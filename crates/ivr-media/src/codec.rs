//! Audio codecs of a call: G.711 (PCMU/PCMA, RFC 3551 sec. 4.5.14), G.722
//! (RFC 3551 sec. 4.5.2: 16 kHz audio, 8 kHz RTP clock) and Opus (RFC 7587:
//! 48 kHz RTP clock; browser calls), converting to and from the 16 kHz engine
//! rate. Per-packet calls write into caller buffers.
//!
//! Opus is libopus (the `opus` crate over the system library). Its decoder
//! and encoder run at 16 kHz themselves (RFC 7587 sec. 4.1: any of 8, 12,
//! 16, 24 or 48 kHz may be decoded from any stream), so no resampler sits
//! between Opus and the VAD/STT, and replies are encoded from the 16 kHz
//! prompt audio directly.

use audio_codec::g722::{G722Decoder, G722Encoder};
use audio_codec::{Decoder as _, Encoder as _};

use crate::g711;
use crate::resample::{Downsampler2x, Upsampler2x};

/// A negotiated audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// G.711 mu-law (static PT 0).
    Pcmu,
    /// G.711 A-law (static PT 8), the European default.
    Pcma,
    /// G.722 64 kbit/s wideband (static PT 9).
    G722,
    /// Opus (dynamic PT, RFC 7587), mono voice, decoded and encoded at 16 kHz.
    Opus,
}

impl Codec {
    /// The audio sample rate the codec works at.
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::G722 | Codec::Opus => 16000,
        }
    }
    /// The RTP clock rate: 8000 for G.711 and G.722 (G.722's is 8000 by RFC
    /// 3551's erratum-kept rule), 48000 for Opus (RFC 7587 sec. 4.1).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48000,
            _ => 8000,
        }
    }
    /// The static payload type (RFC 3551 table 4); for Opus, which has none,
    /// the number browsers use (111).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
            Codec::Opus => 111,
        }
    }
    /// Payload bytes for `ms` milliseconds (G.711 and G.722 are 8 bits per 8
    /// kHz tick); for Opus, whose packets vary, the most it is allowed.
    pub fn payload_len(self, ms: u32) -> usize {
        match self {
            Codec::Opus => MAX_PAYLOAD,
            _ => (8 * ms) as usize,
        }
    }
}

/// Largest payload handled (60 ms of any of the codecs).
pub const MAX_PAYLOAD: usize = 480;
/// Largest 16 kHz frame handled (60 ms).
pub const MAX_FRAME_16K: usize = 960;

/// Opus bit rate for replies: speech prompts at 16 kHz sound transparent
/// well below this (RFC 7587 sec. 3.1.1: 16-20 kbit/s for wideband speech);
/// it also keeps a 20 ms packet far below [`MAX_PAYLOAD`].
pub const OPUS_BITRATE: i32 = 24_000;

fn opus_decoder(codec: Codec) -> Option<opus::Decoder> {
    (codec == Codec::Opus)
        .then(|| opus::Decoder::new(16_000, opus::Channels::Mono).ok())
        .flatten()
}

fn opus_encoder(codec: Codec) -> Option<opus::Encoder> {
    if codec != Codec::Opus {
        return None;
    }
    let mut e = opus::Encoder::new(16_000, opus::Channels::Mono, opus::Application::Voip).ok()?;
    e.set_bitrate(opus::Bitrate::Bits(OPUS_BITRATE)).ok()?;
    Some(e)
}

/// Decodes payloads of one codec to 16 kHz PCM.
pub struct AudioDecoder {
    codec: Codec,
    g722: G722Decoder,
    up: Upsampler2x,
    opus: Option<opus::Decoder>,
}

impl AudioDecoder {
    /// A decoder for `codec`. Check [`AudioDecoder::is_ready`] for Opus
    /// (libopus could refuse to set up; then it decodes nothing).
    pub fn new(codec: Codec) -> Self {
        AudioDecoder {
            codec,
            g722: G722Decoder::new(),
            up: Upsampler2x::new(),
            opus: opus_decoder(codec),
        }
    }

    /// Whether the decoder can decode (false only for an Opus decoder that
    /// libopus refused to create).
    pub fn is_ready(&self) -> bool {
        self.codec != Codec::Opus || self.opus.is_some()
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Opus packet loss concealment: `out.len()` samples (16 kHz) guessed
    /// from the previous packets; 0 for the other codecs (the session
    /// repeats the last frame instead).
    pub fn conceal(&mut self, out: &mut [i16]) -> usize {
        match self.opus.as_mut() {
            Some(d) => d.decode(&[], out, false).unwrap_or(0),
            None => 0,
        }
    }

    /// Decodes `payload` into `out` at 16 kHz; returns samples written.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
        match self.codec {
            Codec::Pcmu | Codec::Pcma => {
                let mut nb = [0i16; MAX_PAYLOAD];
                let n = if self.codec == Codec::Pcmu {
                    g711::decode_ulaw(payload, &mut nb)
                } else {
                    g711::decode_alaw(payload, &mut nb)
                };
                self.up.process(&nb[..n], out)
            }
            Codec::G722 => self.g722.decode_into(payload, out).unwrap_or(0),
            Codec::Opus => self.decode_opus(payload, out),
        }
    }

    /// A malformed Opus packet decodes to nothing (the session conceals).
    fn decode_opus(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        match self.opus.as_mut() {
            Some(d) if !payload.is_empty() => d.decode(payload, out, false).unwrap_or(0),
            _ => 0,
        }
    }
}

impl AudioDecoder {
    /// Decodes `payload` at the codec's own rate (8 kHz for G.711, 16 kHz for
    /// G.722) into `out`; returns samples written.
    pub fn decode_native(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
        match self.codec {
            Codec::Pcmu => g711::decode_ulaw(payload, out),
            Codec::Pcma => g711::decode_alaw(payload, out),
            Codec::G722 => self.g722.decode_into(payload, out).unwrap_or(0),
            Codec::Opus => self.decode_opus(payload, out),
        }
    }
}

/// Encodes 16 kHz PCM of one codec into payloads.
pub struct AudioEncoder {
    codec: Codec,
    g722: G722Encoder,
    down: Downsampler2x,
    opus: Option<opus::Encoder>,
}

impl AudioEncoder {
    /// An encoder for `codec`. Check [`AudioEncoder::is_ready`] for Opus.
    pub fn new(codec: Codec) -> Self {
        AudioEncoder {
            codec,
            g722: G722Encoder::new(),
            down: Downsampler2x::new(),
            opus: opus_encoder(codec),
        }
    }

    /// Whether the encoder can encode (false only for an Opus encoder that
    /// libopus refused to create).
    pub fn is_ready(&self) -> bool {
        self.codec != Codec::Opus || self.opus.is_some()
    }

    /// Opus takes 2.5, 5, 10, 20, 40 or 60 ms frames; anything else (and a
    /// libopus failure) encodes to nothing, which the session sends as an
    /// empty payload.
    fn encode_opus(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self.opus.as_mut() {
            Some(e) => e.encode(pcm, out).unwrap_or(0),
            None => 0,
        }
    }

    /// Encodes 16 kHz `pcm` into `out`; returns bytes written.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self.codec {
            Codec::Pcmu | Codec::Pcma => {
                let mut nb = [0i16; MAX_FRAME_16K / 2];
                let n = self.down.process(pcm, &mut nb);
                self.encode_narrowband(&nb[..n], out)
            }
            Codec::G722 => self.g722.encode_into(pcm, out).unwrap_or(0),
            Codec::Opus => self.encode_opus(pcm, out),
        }
    }

    /// Encodes PCM already at the codec's rate (8 kHz for G.711, 16 kHz for G.722 and Opus).
    pub fn encode_native(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self.codec {
            Codec::Pcmu | Codec::Pcma => self.encode_narrowband(pcm, out),
            Codec::G722 => self.g722.encode_into(pcm, out).unwrap_or(0),
            Codec::Opus => self.encode_opus(pcm, out),
        }
    }

    fn encode_narrowband(&self, nb: &[i16], out: &mut [u8]) -> usize {
        if self.codec == Codec::Pcmu {
            g711::encode_ulaw(nb, out)
        } else {
            g711::encode_alaw(nb, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snr_db(a: &[i16], b: &[i16]) -> f64 {
        let sig: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
        let err: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum();
        10.0 * (sig / err.max(1e-9)).log10()
    }

    #[test]
    fn g722_sine_round_trip_snr_is_wideband_quality() {
        // 1 kHz and 5 kHz (upper sub-band) tones through G.722 at 64 kbit/s.
        for hz in [1000.0, 5000.0] {
            let pcm: Vec<i16> = (0..16000)
                .map(|i| {
                    (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 16000.0).sin()) as i16
                })
                .collect();
            let mut enc = AudioEncoder::new(Codec::G722);
            let mut dec = AudioDecoder::new(Codec::G722);
            let mut out = Vec::new();
            for frame in pcm.chunks(320) {
                let mut p = [0u8; 160];
                let n = enc.encode(frame, &mut p);
                assert_eq!(n, 160);
                let mut d = [0i16; 320];
                let m = dec.decode(&p[..n], &mut d);
                out.extend_from_slice(&d[..m]);
            }
            // The QMF bank delays the signal by 22 samples (G.722 sec. 4): align before comparing.
            let best = (0..40)
                .map(|lag| snr_db(&pcm[1000..15000], &out[1000 + lag..15000 + lag]))
                .fold(f64::MIN, f64::max);
            assert!(best > 20.0, "{hz} Hz: {best:.1} dB");
        }
    }

    #[test]
    fn g711_through_16k_path_keeps_a_speech_band_tone() {
        for codec in [Codec::Pcma, Codec::Pcmu] {
            let pcm: Vec<i16> = (0..16000)
                .map(|i| {
                    (8000.0 * (2.0 * std::f64::consts::PI * 700.0 * i as f64 / 16000.0).sin())
                        as i16
                })
                .collect();
            let mut enc = AudioEncoder::new(codec);
            let mut dec = AudioDecoder::new(codec);
            let mut out = Vec::new();
            for frame in pcm.chunks(320) {
                let mut p = [0u8; 160];
                let n = enc.encode(frame, &mut p);
                assert_eq!(n, 160);
                let mut d = [0i16; 320];
                let m = dec.decode(&p[..n], &mut d);
                out.extend_from_slice(&d[..m]);
            }
            let best = (0..80)
                .map(|lag| snr_db(&pcm[1000..15000], &out[1000 + lag..15000 + lag]))
                .fold(f64::MIN, f64::max);
            assert!(best > 25.0, "{codec:?}: {best:.1} dB");
        }
    }

    #[test]
    fn opus_round_trip_at_16k_keeps_a_speech_band_tone() {
        // Opus is a perceptual codec: compare energy and the tone's
        // correlation after its algorithmic delay, not sample SNR.
        let pcm: Vec<i16> = (0..16000)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16000.0).sin()) as i16
            })
            .collect();
        let mut enc = AudioEncoder::new(Codec::Opus);
        let mut dec = AudioDecoder::new(Codec::Opus);
        assert!(enc.is_ready() && dec.is_ready());
        let mut out = Vec::new();
        for frame in pcm.chunks(320) {
            let mut p = [0u8; MAX_PAYLOAD];
            let n = enc.encode(frame, &mut p);
            assert!(
                n > 0 && n < 200,
                "20 ms at 24 kbit/s is about 60 bytes, got {n}"
            );
            let mut d = [0i16; 320];
            let m = dec.decode(&p[..n], &mut d);
            assert_eq!(m, 320);
            out.extend_from_slice(&d[..m]);
        }
        let best = (0..200)
            .map(|lag| snr_db(&pcm[2000..14000], &out[2000 + lag..14000 + lag]))
            .fold(f64::MIN, f64::max);
        assert!(best > 10.0, "opus: {best:.1} dB");
    }

    #[test]
    fn opus_garbage_and_loss_decode_without_panicking() {
        let mut dec = AudioDecoder::new(Codec::Opus);
        let mut d = [0i16; MAX_FRAME_16K];
        // Not an Opus packet: decodes to nothing or to something, never panics.
        let _ = dec.decode(&[0xff; 7], &mut d);
        assert_eq!(dec.decode(&[], &mut d), 0);
        // Concealment of a lost 20 ms packet gives 20 ms.
        assert_eq!(dec.conceal(&mut d[..320]), 320);
        assert_eq!(Codec::Opus.clock_rate(), 48000);
        assert_eq!(Codec::Opus.sample_rate(), 16000);
    }
}
