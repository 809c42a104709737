//! Audio codecs of a call: G.711 (PCMU/PCMA, RFC 3551 sec. 4.5.14) and G.722
//! (RFC 3551 sec. 4.5.2: 16 kHz audio, 8 kHz RTP clock), converting to and from
//! the 16 kHz engine rate. Per-packet calls write into caller buffers.

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
}

impl Codec {
    /// The audio sample rate the codec works at.
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::G722 => 16000,
        }
    }
    /// The RTP clock rate (8000 for all three; G.722's is 8000 by RFC 3551's erratum-kept rule).
    pub fn clock_rate(self) -> u32 {
        8000
    }
    /// The static payload type (RFC 3551 table 4).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
        }
    }
    /// Payload bytes for `ms` milliseconds (all three are 8 bits per 8 kHz tick).
    pub fn payload_len(self, ms: u32) -> usize {
        (8 * ms) as usize
    }
}

/// Largest payload handled (60 ms of any of the codecs).
pub const MAX_PAYLOAD: usize = 480;
/// Largest 16 kHz frame handled (60 ms).
pub const MAX_FRAME_16K: usize = 960;

/// Decodes payloads of one codec to 16 kHz PCM.
pub struct AudioDecoder {
    codec: Codec,
    g722: G722Decoder,
    up: Upsampler2x,
}

impl AudioDecoder {
    /// A decoder for `codec`.
    pub fn new(codec: Codec) -> Self {
        AudioDecoder {
            codec,
            g722: G722Decoder::new(),
            up: Upsampler2x::new(),
        }
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
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
        }
    }
}

/// Encodes 16 kHz PCM of one codec into payloads.
pub struct AudioEncoder {
    codec: Codec,
    g722: G722Encoder,
    down: Downsampler2x,
}

impl AudioEncoder {
    /// An encoder for `codec`.
    pub fn new(codec: Codec) -> Self {
        AudioEncoder {
            codec,
            g722: G722Encoder::new(),
            down: Downsampler2x::new(),
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
        }
    }

    /// Encodes PCM already at the codec's rate (8 kHz for G.711, 16 kHz for G.722).
    pub fn encode_native(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self.codec {
            Codec::Pcmu | Codec::Pcma => self.encode_narrowband(pcm, out),
            Codec::G722 => self.g722.encode_into(pcm, out).unwrap_or(0),
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
}
