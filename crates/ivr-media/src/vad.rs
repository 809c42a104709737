//! Voice activity detection on 8 kHz, 20 ms frames.
//!
//! The model (chosen over webrtc-vad with the figures in the report / bench
//! `vad-compare`): pre-emphasis (removes hum and the low-frequency rumble of
//! street and car noise), frame energy against an adaptive noise floor, and
//! voicing by normalised autocorrelation in the pitch range (60-400 Hz).
//!
//! - `speech`: energy at least `speech_db` above the noise floor and either
//!   voiced or `loud_db` above it (unvoiced consonants are loud, noise is not).
//! - `voiced`: energy above the floor and a pitch-periodic frame: a click or a
//!   cough burst is loud but not periodic, which is what barge-in relies on.
//! - Noise floor: follows the frame energy down fast and up slowly (slower
//!   still while speech is detected), so rising background noise is learnt in
//!   seconds without speech lifting it.
//!
//! No allocation: state is a few numbers and a 20 ms history array.

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_8K: usize = 160;
const MIN_LAG: usize = 20; // 400 Hz
const MAX_LAG: usize = 133; // 60 Hz

/// Thresholds of the VAD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// dB above the noise floor for a frame to count as speech (with voicing).
    pub speech_db: f32,
    /// dB above the noise floor for an unvoiced frame to count as speech.
    pub loud_db: f32,
    /// Normalised autocorrelation peak above which a frame is voiced.
    pub voicing: f32,
    /// Floor rise per frame (dB) while no speech.
    pub floor_rise_db: f32,
    /// Floor rise per frame (dB) while speech.
    pub floor_rise_speech_db: f32,
    /// Lowest noise floor (dB of mean square, pre-emphasised), so digital silence
    /// does not make line hiss look like speech.
    pub floor_min_db: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            speech_db: 5.0,
            loud_db: 8.0,
            voicing: 0.45,
            floor_rise_db: 0.08,
            floor_rise_speech_db: 0.005,
            floor_min_db: 30.0,
        }
    }
}

/// The VAD's verdict on one frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VadFrame {
    /// Speech present.
    pub speech: bool,
    /// Voiced speech (periodic): stricter than `speech`.
    pub voiced: bool,
    /// Frame energy (dB, pre-emphasised mean square).
    pub energy_db: f32,
    /// Noise floor estimate (dB).
    pub floor_db: f32,
    /// Autocorrelation peak (0-1).
    pub periodicity: f32,
}

/// A voice activity detector the media session runs on every 20 ms frame
/// of 8 kHz audio: this module's [`Vad`], or a model-based one from outside
/// the crate (Silero VAD in `ivr-turn`), set with
/// `MediaSession::set_vad`. Frames in, verdicts out: no clock, no I/O.
pub trait FrameVad: Send {
    /// Classifies one 20 ms frame of 8 kHz audio (shorter frames are zero-padded, longer cut).
    fn process(&mut self, frame: &[i16]) -> VadFrame;
}

impl FrameVad for Vad {
    fn process(&mut self, frame: &[i16]) -> VadFrame {
        Vad::process(self, frame)
    }
}

/// Energy + voicing VAD with an adaptive noise floor.
#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    prev: [f32; FRAME_8K],
    last_sample: f32,
    floor: Option<f32>,
    frames: u32,
    /// Minimum statistics: minima of the last `MIN_BLOCKS` blocks of `BLOCK` frames.
    block_min: [f32; MIN_BLOCKS],
    block_pos: usize,
    block_frames: u32,
}

const BLOCK: u32 = 10;
const MIN_BLOCKS: usize = 8;

impl Vad {
    /// A VAD with a fresh noise floor.
    pub fn new(cfg: VadConfig) -> Self {
        Vad {
            cfg,
            prev: [0.0; FRAME_8K],
            last_sample: 0.0,
            floor: None,
            frames: 0,
            block_min: [f32::MAX; MIN_BLOCKS],
            block_pos: 0,
            block_frames: 0,
        }
    }

    /// Classifies one 20 ms frame of 8 kHz audio (shorter frames are zero-padded, longer cut).
    pub fn process(&mut self, frame: &[i16]) -> VadFrame {
        let mut x = [0f32; 2 * FRAME_8K];
        x[..FRAME_8K].copy_from_slice(&self.prev);
        let mut last = self.last_sample;
        for (i, s) in frame.iter().take(FRAME_8K).enumerate() {
            let v = f32::from(*s);
            x[FRAME_8K + i] = v - 0.95 * last;
            last = v;
        }
        self.last_sample = last;
        let cur = &x[FRAME_8K..];
        let energy = cur.iter().map(|v| v * v).sum::<f32>() / FRAME_8K as f32;
        let energy_db = 10.0 * (energy + 1.0).log10();

        // Voicing: normalised autocorrelation over the current frame against lagged samples.
        let mut best = 0f32;
        let e0: f32 = cur.iter().map(|v| v * v).sum();
        if e0 > 0.0 {
            // Energy of the lagged window, slid one sample per lag.
            let mut el: f32 = x[FRAME_8K - MIN_LAG..2 * FRAME_8K - MIN_LAG]
                .iter()
                .map(|v| v * v)
                .sum();
            for lag in MIN_LAG..=MAX_LAG {
                let num =
                    crate::resample::dot(&x[FRAME_8K..], &x[FRAME_8K - lag..2 * FRAME_8K - lag]);
                let r = num / (e0 * el.max(0.0)).sqrt().max(1.0);
                if r > best {
                    best = r;
                }
                // Window for lag + 1: gains x[F - lag - 1], loses x[2F - lag - 1].
                if lag < MAX_LAG {
                    let gain = x[FRAME_8K - lag - 1];
                    let lose = x[2 * FRAME_8K - lag - 1];
                    el += gain * gain - lose * lose;
                }
            }
        }
        self.prev.copy_from_slice(cur);

        if energy_db < self.cfg.floor_min_db && self.floor.is_none() {
            // Digital silence before the first packet: nothing to learn from.
            return VadFrame {
                energy_db,
                floor_db: self.cfg.floor_min_db,
                periodicity: best,
                ..Default::default()
            };
        }
        let floor = *self
            .floor
            .get_or_insert(energy_db.max(self.cfg.floor_min_db));
        let above = energy_db - floor;
        let voiced = above > self.cfg.speech_db && best > self.cfg.voicing;
        let speech = voiced || above > self.cfg.loud_db;
        // Minimum statistics over ~1.6 s: speech always dips between syllables,
        // steady noise does not, so a minimum well above the floor means the
        // noise got louder: jump the floor up to it.
        let slot = &mut self.block_min[self.block_pos];
        *slot = slot.min(energy_db);
        self.block_frames += 1;
        if self.block_frames >= BLOCK {
            self.block_frames = 0;
            self.block_pos = (self.block_pos + 1) % MIN_BLOCKS;
            let window_min = self.block_min.iter().copied().fold(f32::MAX, f32::min);
            self.block_min[self.block_pos] = f32::MAX;
            if window_min < f32::MAX
                && window_min > floor + 3.0
                && self.frames >= BLOCK * MIN_BLOCKS as u32
            {
                self.floor = Some(window_min);
                self.frames = self.frames.saturating_add(1);
                return VadFrame {
                    speech,
                    voiced,
                    energy_db,
                    floor_db: floor,
                    periodicity: best,
                };
            }
        }
        // Floor tracking: fast down, slow up; learn faster during the first second.
        self.frames = self.frames.saturating_add(1);
        let new_floor = if energy_db < floor {
            floor + 0.3 * (energy_db - floor)
        } else if self.frames < 50 && !speech {
            floor + 0.1 * (energy_db - floor)
        } else if speech {
            floor + self.cfg.floor_rise_speech_db
        } else {
            floor + self.cfg.floor_rise_db.min(energy_db - floor)
        };
        self.floor = Some(new_floor.max(self.cfg.floor_min_db));
        VadFrame {
            speech,
            voiced,
            energy_db,
            floor_db: floor,
            periodicity: best,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: &mut u32, amp: f32) -> i16 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        ((*seed as f32 / u32::MAX as f32 - 0.5) * 2.0 * amp) as i16
    }

    #[test]
    fn noise_is_not_speech_and_a_vowel_like_tone_complex_is_voiced() {
        let mut v = Vad::new(VadConfig::default());
        let mut seed = 1u32;
        let mut speech_frames = 0;
        for _ in 0..100 {
            let f: Vec<i16> = (0..160).map(|_| noise(&mut seed, 300.0)).collect();
            if v.process(&f).speech {
                speech_frames += 1;
            }
        }
        assert!(
            speech_frames <= 2,
            "{speech_frames} noise frames called speech"
        );
        // A 150 Hz harmonic complex (a crude vowel) over the same noise.
        let mut voiced = 0;
        for k in 0..25 {
            let f: Vec<i16> = (0..160)
                .map(|i| {
                    let t = (k * 160 + i) as f32 / 8000.0;
                    let s: f32 = (1..12)
                        .map(|h| {
                            (2.0 * std::f32::consts::PI * 150.0 * h as f32 * t).sin() * 3000.0
                                / h as f32
                        })
                        .sum();
                    (s + f32::from(noise(&mut seed, 300.0))) as i16
                })
                .collect();
            let r = v.process(&f);
            if r.voiced && r.speech {
                voiced += 1;
            }
        }
        assert!(voiced >= 23, "{voiced}/25 vowel frames voiced");
    }
}
