//! Endpointing (where an utterance starts and ends) and barge-in, on VAD frames.
//!
//! - Start: `start_speech` of speech within a short window (so a single loud
//!   frame does not start an utterance); the utterance keeps `preroll` of audio
//!   from before the start so the first syllable is not clipped.
//! - End: silence for the adaptive end-silence. It starts at `end_silence`
//!   and adapts to the caller: the pauses they make inside an utterance (silence
//!   followed by more speech) are averaged, and the end silence is 1.5x that
//!   average when that is longer, clamped to `[min_end_silence, max_end_silence]`.
//!   A caller who pauses between the digits of a phone number is not cut off.
//!   (It never goes below `end_silence`: the VAD already misses the soft tail of
//!   the last word, so a shorter silence would risk clipping it.)
//! - Eager end (off when `eager_silence` is zero): after `eager_silence` of
//!   silence following at least `min_speech` of speech, and while that is
//!   still shorter than the end silence in force, a [`EndpointingEvent::Tentative`]
//!   carries the audio so far, so the engine can start recognising it while
//!   the rest of the end silence is waited for. Exactly one of two events
//!   follows it: [`EndpointingEvent::Resumed`] (the caller spoke again: the
//!   tentative audio is not the utterance) or [`EndpointingEvent::Utterance`]
//!   (the end is confirmed with no speech since the tentative point, so the
//!   utterance is the tentative audio plus trailing silence). A caller may
//!   pause several times: each pause can give a tentative, each resumption
//!   cancels it. Barge-in and the start and end rules are not changed by it.
//! - End of turn by a model (off when `turn_silence` is zero): a tentative
//!   end is also announced after `turn_silence` (the shorter of the two
//!   silences, when both are set); an end-of-turn model (Smart Turn, run by
//!   the engine) reads its audio, and when it says the caller has finished,
//!   [`Endpointer::end_now`] ends the utterance there, before the end
//!   silence. When it says not finished, nothing happens: the end silence
//!   (the fallback) still ends the utterance.
//! - Length: utterances with less than `min_speech` of speech are dropped
//!   (a cough, "eh"); at `max_utterance` the utterance is ended where it is.
//! - Barge-in (while a prompt that allows it plays): `barge_in_voiced` of voiced
//!   frames within the last 300 ms. Clicks and coughs are loud but short and
//!   not pitch-periodic, so they do not reach it.
//!
//! The utterance buffer is allocated once per utterance (not per frame).

use std::time::Duration;

use ivr_core::Pcm;

use crate::vad::VadFrame;

/// Endpointing and barge-in settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointingConfig {
    /// Frame length.
    pub frame: Duration,
    /// Speech within the start window needed to start an utterance.
    pub start_speech: Duration,
    /// Initial silence that ends an utterance.
    pub end_silence: Duration,
    /// Lower clamp of the adaptive end silence.
    pub min_end_silence: Duration,
    /// Upper clamp of the adaptive end silence.
    pub max_end_silence: Duration,
    /// Less speech than this: not an utterance.
    pub min_speech: Duration,
    /// Longest utterance.
    pub max_utterance: Duration,
    /// Audio kept from before the detected start.
    pub preroll: Duration,
    /// Voiced speech within 300 ms needed for barge-in.
    pub barge_in_voiced: Duration,
    /// Silence after which a tentative end is announced ([`EndpointingEvent::Tentative`]);
    /// zero: never. Only shorter end silences than the one in force matter.
    pub eager_silence: Duration,
    /// Silence after which a tentative end is announced for an end-of-turn
    /// model ([`Endpointer::end_now`]); zero: none. With `eager_silence`
    /// also set, the shorter one announces.
    pub turn_silence: Duration,
    /// Sample rate of the audio pushed (and of the utterances produced).
    pub sample_rate: u32,
}

impl Default for EndpointingConfig {
    fn default() -> Self {
        EndpointingConfig {
            frame: Duration::from_millis(20),
            start_speech: Duration::from_millis(100),
            end_silence: Duration::from_millis(400),
            min_end_silence: Duration::from_millis(300),
            max_end_silence: Duration::from_millis(800),
            // The VAD hears 180 ms of speech in a clipped one-syllable
            // "Yes" (its unvoiced "s" is not speech to it), 120 ms in the
            // cough of tests/data/click_and_cough_then_speech_8k.wav: 160
            // takes the answer and still drops the cough (200 dropped "Yes"
            // and Danish "Tal" of the speech test set, so a caller's yes
            // was never heard).
            min_speech: Duration::from_millis(160),
            max_utterance: Duration::from_secs(15),
            preroll: Duration::from_millis(200),
            barge_in_voiced: Duration::from_millis(180),
            eager_silence: Duration::ZERO,
            turn_silence: Duration::ZERO,
            sample_rate: 16_000,
        }
    }
}

/// What the endpointer noticed on a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointingEvent {
    /// An utterance began (audio from `preroll` before now is included).
    SpeechStarted,
    /// The caller has been silent for `eager_silence` after enough speech:
    /// the audio so far (preroll + speech + that silence), for speculative
    /// recognition. Followed by exactly one `Resumed` or `Utterance`.
    Tentative(Pcm),
    /// Speech again after a `Tentative`: its audio is not the utterance.
    Resumed,
    /// An utterance ended; its audio (preroll + speech + the trailing silence).
    /// After a `Tentative` with no `Resumed` in between, it is that audio
    /// with more trailing silence (no speech was added).
    Utterance(Pcm),
    /// The speech was too short to be an utterance (cough, click, "eh").
    Discarded,
    /// Caller speech during a prompt that allows barge-in.
    BargeIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    InSpeech,
}

/// Where the tentative end of the current utterance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tentative {
    /// None announced since the last speech.
    None,
    /// Announced; no speech since.
    Announced,
    /// Announced, then speech: `Resumed` is owed (sent on the first frame
    /// whose event slot is free, always before the utterance can end).
    Owed,
}

/// The endpointer of one call.
#[derive(Debug, Clone)]
pub struct Endpointer {
    cfg: EndpointingConfig,
    state: State,
    frame_ms: u32,
    /// Recent speech flags (bit 0 = newest frame).
    speech_hist: u32,
    voiced_hist: u32,
    preroll: Vec<i16>,
    /// Longest utterance, in samples (`max_utterance`).
    max_len: usize,
    preroll_pos: usize,
    buf: Vec<i16>,
    speech_ms: u32,
    silence_ms: u32,
    pause_avg_ms: f32,
    end_silence_ms: u32,
    barged: bool,
    tentative: Tentative,
}

fn ms(d: Duration) -> u32 {
    d.as_millis().min(u128::from(u32::MAX)) as u32
}

impl Endpointer {
    /// An endpointer; allocates the preroll ring. The utterance buffer grows
    /// while the caller speaks (from one second, doubling, up to
    /// `max_utterance`) and is handed over with the utterance: a call that
    /// is silent, or between utterances, holds none (memory per call).
    pub fn new(cfg: EndpointingConfig) -> Self {
        let per_ms = cfg.sample_rate as usize / 1000;
        Endpointer {
            cfg,
            state: State::Idle,
            frame_ms: ms(cfg.frame).max(1),
            speech_hist: 0,
            voiced_hist: 0,
            preroll: vec![0; ms(cfg.preroll) as usize * per_ms],
            preroll_pos: 0,
            max_len: ms(cfg.max_utterance) as usize * per_ms,
            buf: Vec::new(),
            speech_ms: 0,
            silence_ms: 0,
            pause_avg_ms: ms(cfg.end_silence) as f32 / 1.5,
            end_silence_ms: ms(cfg.end_silence),
            barged: false,
            tentative: Tentative::None,
        }
    }

    /// The end silence currently in force.
    pub fn end_silence(&self) -> Duration {
        Duration::from_millis(u64::from(self.end_silence_ms))
    }

    /// Whether an utterance is in progress.
    pub fn in_speech(&self) -> bool {
        self.state == State::InSpeech
    }

    /// Re-arms barge-in (call when a new prompt starts).
    pub fn arm_barge_in(&mut self) {
        self.barged = false;
        self.voiced_hist = 0;
    }

    fn frames_in(&self, d: Duration) -> u32 {
        (ms(d) / self.frame_ms).max(1)
    }

    /// Pushes one frame of audio (at `sample_rate`) with its VAD verdict.
    /// `barge_in` says whether a prompt that allows barge-in is playing.
    pub fn push(&mut self, pcm: &[i16], vad: VadFrame, barge_in: bool) -> Option<EndpointingEvent> {
        self.speech_hist = (self.speech_hist << 1) | u32::from(vad.speech);
        self.voiced_hist = (self.voiced_hist << 1) | u32::from(vad.voiced && vad.speech);
        let mut event = None;
        // Barge-in: voiced frames within the last 300 ms (15 frames of 20 ms).
        let window = (300 / self.frame_ms).clamp(1, 31);
        let mask = (1u32 << window) - 1;
        if barge_in
            && !self.barged
            && (self.voiced_hist & mask).count_ones() >= self.frames_in(self.cfg.barge_in_voiced)
        {
            self.barged = true;
            event = Some(EndpointingEvent::BargeIn);
        }
        match self.state {
            State::Idle => {
                // Start: enough speech frames within a window twice as long.
                let need = self.frames_in(self.cfg.start_speech);
                let win = (2 * need).min(31);
                if (self.speech_hist & ((1u32 << win) - 1)).count_ones() >= need {
                    self.state = State::InSpeech;
                    self.buf.clear();
                    self.buf
                        .reserve((self.cfg.sample_rate as usize).min(self.max_len));
                    let (a, b) = self.preroll.split_at(self.preroll_pos);
                    self.buf.extend_from_slice(b);
                    self.buf.extend_from_slice(a);
                    self.buf.extend_from_slice(pcm);
                    self.speech_ms = need * self.frame_ms;
                    self.silence_ms = 0;
                    self.tentative = Tentative::None;
                    event = event.or(Some(EndpointingEvent::SpeechStarted));
                } else {
                    self.push_preroll(pcm);
                }
            }
            State::InSpeech => {
                if self.buf.len() + pcm.len() <= self.max_len {
                    self.buf.extend_from_slice(pcm);
                }
                if vad.speech {
                    if self.silence_ms >= 3 * self.frame_ms {
                        // A pause inside the utterance: learn the caller's pause length.
                        self.pause_avg_ms = 0.7 * self.pause_avg_ms + 0.3 * self.silence_ms as f32;
                        self.end_silence_ms = ((1.5 * self.pause_avg_ms) as u32)
                            .max(ms(self.cfg.end_silence))
                            .clamp(ms(self.cfg.min_end_silence), ms(self.cfg.max_end_silence));
                    }
                    self.speech_ms += self.frame_ms;
                    self.silence_ms = 0;
                    if self.tentative == Tentative::Announced {
                        self.tentative = Tentative::Owed;
                    }
                } else {
                    self.silence_ms += self.frame_ms;
                }
                if self.tentative == Tentative::Owed && event.is_none() {
                    self.tentative = Tentative::None;
                    event = Some(EndpointingEvent::Resumed);
                }
                let too_long = self.buf.len() + pcm.len() > self.max_len;
                // The end waits while a `Resumed` is owed or sent on this frame,
                // so an `Utterance` after a `Tentative` always means "confirmed".
                let resumed_now = matches!(event, Some(EndpointingEvent::Resumed));
                let ending = (self.silence_ms >= self.end_silence_ms || too_long)
                    && self.tentative != Tentative::Owed
                    && !resumed_now;
                let eager_ms = self.tentative_ms();
                if !ending
                    && eager_ms > 0
                    && self.tentative == Tentative::None
                    && event.is_none()
                    && self.silence_ms >= eager_ms
                    && self.silence_ms < self.end_silence_ms
                    && self.speech_ms >= ms(self.cfg.min_speech)
                {
                    // One copy per pause (not per frame): the buffer keeps growing.
                    self.tentative = Tentative::Announced;
                    let audio = Pcm::new(self.cfg.sample_rate, self.buf.clone());
                    event = Some(EndpointingEvent::Tentative(audio));
                }
                if ending {
                    // Barge-in fires within 180 ms of speech, long before an utterance can end,
                    // so the end event never hides one.
                    event = Some(self.finish());
                }
            }
        }
        event
    }

    /// The silence that announces a tentative end (zero: never).
    fn tentative_ms(&self) -> u32 {
        match (ms(self.cfg.eager_silence), ms(self.cfg.turn_silence)) {
            (0, t) | (t, 0) => t,
            (e, t) => e.min(t),
        }
    }

    /// Ends the utterance in progress now, when a tentative end was
    /// announced and no speech came since: an end-of-turn model says the
    /// caller has finished. Returns the utterance (the tentative audio plus
    /// the silence since), or `None` when there is nothing to end (the
    /// caller spoke again, or the utterance already ended).
    pub fn end_now(&mut self) -> Option<EndpointingEvent> {
        (self.state == State::InSpeech && self.tentative == Tentative::Announced)
            .then(|| self.finish())
    }

    fn finish(&mut self) -> EndpointingEvent {
        self.state = State::Idle;
        self.tentative = Tentative::None;
        self.speech_hist = 0;
        if self.speech_ms >= ms(self.cfg.min_speech) {
            let audio = std::mem::take(&mut self.buf);
            EndpointingEvent::Utterance(Pcm::new(self.cfg.sample_rate, audio))
        } else {
            EndpointingEvent::Discarded
        }
    }

    fn push_preroll(&mut self, pcm: &[i16]) {
        let n = self.preroll.len();
        if n == 0 {
            return;
        }
        for s in pcm {
            self.preroll[self.preroll_pos] = *s;
            self.preroll_pos = (self.preroll_pos + 1) % n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(speech: bool) -> VadFrame {
        VadFrame {
            speech,
            voiced: speech,
            ..Default::default()
        }
    }

    #[test]
    fn utterance_ends_after_end_silence_and_keeps_preroll() {
        let mut e = Endpointer::new(EndpointingConfig::default());
        let frame = [1i16; 320];
        let mut events = Vec::new();
        for i in 0..200 {
            let speech = (50..100).contains(&i);
            if let Some(ev) = e.push(&frame, f(speech), false) {
                events.push((i, ev));
            }
        }
        assert_eq!(events[0], (54, EndpointingEvent::SpeechStarted));
        let (at, EndpointingEvent::Utterance(pcm)) = &events[1] else {
            panic!("{events:?}")
        };
        // 400 ms of silence = 20 frames after the last speech frame (99).
        assert_eq!(*at, 119);
        // preroll 200 ms + frames 54..=119
        assert_eq!(pcm.samples.len(), 3200 + 66 * 320);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn short_burst_is_discarded_and_does_not_barge_in() {
        let mut e = Endpointer::new(EndpointingConfig::default());
        let frame = [0i16; 320];
        let mut events = Vec::new();
        for i in 0..100 {
            if let Some(ev) = e.push(&frame, f((10..16).contains(&i)), true) {
                events.push(ev);
            }
        }
        assert_eq!(
            events,
            [EndpointingEvent::SpeechStarted, EndpointingEvent::Discarded]
        );
    }

    #[test]
    fn barge_in_fires_once_after_180ms_voiced() {
        let mut e = Endpointer::new(EndpointingConfig::default());
        let frame = [0i16; 320];
        let mut barge_at = Vec::new();
        for i in 0..100 {
            if e.push(&frame, f(i >= 10), true) == Some(EndpointingEvent::BargeIn) {
                barge_at.push(i);
            }
        }
        assert_eq!(barge_at, [18]);
    }

    #[test]
    fn end_silence_adapts_to_a_caller_who_pauses() {
        let mut e = Endpointer::new(EndpointingConfig::default());
        let frame = [0i16; 320];
        // Speech with 300 ms pauses (15 frames on, 15 off) must not be cut.
        let mut ended = false;
        for i in 0..180 {
            let speech = i < 150 && (i / 15) % 2 == 0;
            if let Some(EndpointingEvent::Utterance(_)) = e.push(&frame, f(speech), false) {
                ended = true;
                assert!(i >= 150, "cut at frame {i}");
            }
        }
        assert!(
            e.end_silence() > Duration::from_millis(400),
            "{:?}",
            e.end_silence()
        );
        assert!(ended || e.in_speech());
    }
}

#[cfg(test)]
mod length_tests {
    use super::*;

    #[test]
    fn endless_speech_is_cut_at_max_utterance() {
        let cfg = EndpointingConfig {
            max_utterance: Duration::from_secs(2),
            ..Default::default()
        };
        let mut e = Endpointer::new(cfg);
        let frame = [0i16; 320];
        let v = VadFrame {
            speech: true,
            voiced: true,
            ..Default::default()
        };
        let mut lens = Vec::new();
        for _ in 0..250 {
            if let Some(EndpointingEvent::Utterance(p)) = e.push(&frame, v, false) {
                lens.push(p.duration());
            }
        }
        // 5 s of speech -> two full 2 s utterances, the third still running.
        assert_eq!(lens.len(), 2, "{lens:?}");
        assert!(
            lens.iter()
                .all(|d| *d <= Duration::from_secs(2) && *d > Duration::from_millis(1900)),
            "{lens:?}"
        );
    }
}

#[cfg(test)]
mod eager_tests {
    //! The tentative end (`eager_silence`) on simulated frames: one frame is
    //! one 20 ms step of simulated time, the frame index is the clock.
    use super::*;

    fn cfg(eager_ms: u64) -> EndpointingConfig {
        EndpointingConfig {
            eager_silence: Duration::from_millis(eager_ms),
            ..Default::default()
        }
    }

    fn f(speech: bool) -> VadFrame {
        VadFrame {
            speech,
            voiced: speech,
            ..Default::default()
        }
    }

    /// Frames whose samples say which frame they are, so audio can be compared.
    fn frame(i: usize) -> [i16; 320] {
        [i as i16; 320]
    }

    /// Runs `speech(i)` for `n` frames; the events with their frame index.
    fn run(
        e: &mut Endpointer,
        n: usize,
        speech: impl Fn(usize) -> bool,
        barge_in: impl Fn(usize) -> bool,
    ) -> Vec<(usize, EndpointingEvent)> {
        (0..n)
            .filter_map(|i| {
                e.push(&frame(i), f(speech(i)), barge_in(i))
                    .map(|ev| (i, ev))
            })
            .collect()
    }

    fn kinds(events: &[(usize, EndpointingEvent)]) -> Vec<(usize, &'static str)> {
        events
            .iter()
            .map(|(i, e)| {
                let k = match e {
                    EndpointingEvent::SpeechStarted => "started",
                    EndpointingEvent::Tentative(_) => "tentative",
                    EndpointingEvent::Resumed => "resumed",
                    EndpointingEvent::Utterance(_) => "utterance",
                    EndpointingEvent::Discarded => "discarded",
                    EndpointingEvent::BargeIn => "barge-in",
                };
                (*i, k)
            })
            .collect()
    }

    #[test]
    fn off_by_default_and_when_zero() {
        assert_eq!(EndpointingConfig::default().eager_silence, Duration::ZERO);
        let mut e = Endpointer::new(cfg(0));
        let ev = run(&mut e, 200, |i| (50..100).contains(&i), |_| false);
        assert_eq!(kinds(&ev), [(54, "started"), (119, "utterance")]);
    }

    #[test]
    fn tentative_then_confirmed_carries_the_same_speech() {
        let mut e = Endpointer::new(cfg(240));
        let ev = run(&mut e, 200, |i| (50..100).contains(&i), |_| false);
        // Last speech frame 99; 240 ms = 12 silent frames -> 111; 400 ms -> 119.
        assert_eq!(
            kinds(&ev),
            [(54, "started"), (111, "tentative"), (119, "utterance")]
        );
        let (EndpointingEvent::Tentative(t), EndpointingEvent::Utterance(u)) = (&ev[1].1, &ev[2].1)
        else {
            panic!("{ev:?}")
        };
        // preroll 200 ms + frames 54..=111; the utterance adds frames 112..=119 of silence.
        assert_eq!(t.samples.len(), 3200 + 58 * 320);
        assert_eq!(u.samples.len(), t.samples.len() + 8 * 320);
        assert_eq!(&u.samples[..t.samples.len()], &t.samples[..]);
        assert_eq!(t.sample_rate, 16_000);
    }

    #[test]
    fn tentative_then_resumed_speech_cancels_it_and_the_utterance_goes_on() {
        let mut e = Endpointer::new(cfg(240));
        // A 300 ms pause (longer than the eager 240 ms, shorter than the end's 400 ms).
        let speech = |i: usize| (50..100).contains(&i) || (115..150).contains(&i);
        let ev = run(&mut e, 250, speech, |_| false);
        let k = kinds(&ev);
        assert_eq!(
            k[..4],
            [
                (54, "started"),
                (111, "tentative"),
                (115, "resumed"),
                (161, "tentative")
            ],
            "{k:?}"
        );
        // The pause taught the endpointer a longer end silence (415 ms -> 21 frames).
        assert_eq!(k[4], (170, "utterance"), "{k:?}");
        assert_eq!(k.len(), 5);
        let EndpointingEvent::Utterance(u) = &ev[4].1 else {
            panic!()
        };
        // One utterance with both halves of the speech in it.
        assert!(u.samples.contains(&60) && u.samples.contains(&140));
    }

    #[test]
    fn no_tentative_before_min_speech() {
        let mut e = Endpointer::new(cfg(240));
        // Started at frame 54 with 100 ms, 140 ms in all: below the 160 ms minimum.
        let ev = run(&mut e, 150, |i| (50..57).contains(&i), |_| false);
        assert_eq!(kinds(&ev), [(54, "started"), (76, "discarded")]);
    }

    #[test]
    fn no_tentative_when_it_would_not_come_before_the_end() {
        let mut e = Endpointer::new(cfg(400));
        let ev = run(&mut e, 200, |i| (50..100).contains(&i), |_| false);
        assert_eq!(kinds(&ev), [(54, "started"), (119, "utterance")]);
    }

    #[test]
    fn barge_in_is_unaffected() {
        // Speech during a barge-in prompt, with a pause: the same barge-in frame
        // with and without the eager end.
        let speech = |i: usize| (10..40).contains(&i) || (55..90).contains(&i);
        let mut plain = Endpointer::new(cfg(0));
        let mut eager = Endpointer::new(cfg(200));
        let a = run(&mut plain, 150, speech, |_| true);
        let b = run(&mut eager, 150, speech, |_| true);
        let barge = |v: &[(usize, EndpointingEvent)]| {
            v.iter()
                .filter(|(_, e)| *e == EndpointingEvent::BargeIn)
                .map(|(i, _)| *i)
                .collect::<Vec<_>>()
        };
        assert_eq!(barge(&a), [18]);
        assert_eq!(barge(&b), [18]);
        assert!(kinds(&b).contains(&(49, "tentative")), "{:?}", kinds(&b));
        assert!(kinds(&b).contains(&(55, "resumed")), "{:?}", kinds(&b));
    }

    /// Seeded pseudo-random talk: bursts and pauses of every length, a prompt
    /// allowing barge-in now and then (re-armed as a new prompt would be).
    /// Whatever happens, each tentative is answered by exactly one `Resumed`
    /// or `Utterance`, a confirmed utterance starts with the tentative audio,
    /// and the utterances are the ones the endpointer finds without eager ends.
    #[test]
    fn tentatives_are_always_answered_and_utterances_do_not_change() {
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut speech = Vec::new();
        let mut barge = Vec::new();
        while speech.len() < 20_000 {
            let talk = next() % 2 == 0;
            let len = 1 + (next() % 40) as usize;
            let prompt = next() % 3 == 0;
            for _ in 0..len {
                speech.push(talk);
                barge.push(prompt);
            }
        }
        let mut plain = Endpointer::new(cfg(0));
        let mut eager = Endpointer::new(cfg(220));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..speech.len() {
            if i % 500 == 0 {
                plain.arm_barge_in();
                eager.arm_barge_in();
            }
            if let Some(EndpointingEvent::Utterance(p)) =
                plain.push(&frame(i), f(speech[i]), barge[i])
            {
                a.push((i, p));
            }
            if let Some(ev) = eager.push(&frame(i), f(speech[i]), barge[i]) {
                b.push((i, ev));
            }
        }
        let mut open: Option<Pcm> = None;
        let (mut tentatives, mut resumed, mut confirmed) = (0, 0, 0);
        let mut utterances = Vec::new();
        for (i, ev) in b {
            match ev {
                EndpointingEvent::Tentative(p) => {
                    assert!(open.is_none(), "frame {i}: two tentatives unanswered");
                    tentatives += 1;
                    open = Some(p);
                }
                EndpointingEvent::Resumed => {
                    assert!(
                        open.take().is_some(),
                        "frame {i}: resumed without tentative"
                    );
                    resumed += 1;
                }
                EndpointingEvent::Utterance(u) => {
                    if let Some(t) = open.take() {
                        assert_eq!(&u.samples[..t.samples.len()], &t.samples[..]);
                        confirmed += 1;
                    }
                    utterances.push((i, u));
                }
                EndpointingEvent::Discarded => assert!(open.is_none()),
                _ => {}
            }
        }
        assert!(tentatives > 50 && resumed > 10 && confirmed > 10);
        assert_eq!(
            tentatives,
            resumed + confirmed + usize::from(open.is_some())
        );
        assert_eq!(utterances, a);
    }

    fn turn_cfg(turn_ms: u64, end_ms: u64) -> EndpointingConfig {
        EndpointingConfig {
            turn_silence: Duration::from_millis(turn_ms),
            end_silence: Duration::from_millis(end_ms),
            max_end_silence: Duration::from_millis(end_ms.max(800)),
            ..Default::default()
        }
    }

    #[test]
    fn a_model_ends_the_turn_at_the_short_silence_with_the_tentative_audio() {
        let mut e = Endpointer::new(turn_cfg(200, 800));
        // Speech on frames 10..60, then silence: the tentative comes after 10 frames.
        let ev = run(&mut e, 70, |i| (10..60).contains(&i), |_| false);
        let Some((at, EndpointingEvent::Tentative(t))) = ev
            .iter()
            .find(|(_, e)| matches!(e, EndpointingEvent::Tentative(_)))
        else {
            panic!("{:?}", kinds(&ev))
        };
        assert_eq!(*at, 69);
        // The model answers a few frames later: the utterance ends there, not after 800 ms.
        let Some(EndpointingEvent::Utterance(u)) = e.end_now() else {
            panic!("no utterance")
        };
        assert_eq!(&u.samples[..t.samples.len()], &t.samples[..]);
        assert!(!e.in_speech());
        assert_eq!(e.end_now(), None, "once");
        // Nothing more comes of the silence.
        assert!(run(&mut e, 60, |_| false, |_| false).is_empty());
    }

    #[test]
    fn a_late_verdict_after_the_caller_spoke_again_ends_nothing() {
        let mut e = Endpointer::new(turn_cfg(200, 800));
        let ev = run(&mut e, 75, |i| (10..60).contains(&i) || i >= 72, |_| false);
        assert!(kinds(&ev).contains(&(69, "tentative")), "{:?}", kinds(&ev));
        assert!(kinds(&ev).contains(&(72, "resumed")), "{:?}", kinds(&ev));
        assert_eq!(e.end_now(), None, "speech resumed: the verdict is stale");
        assert!(e.in_speech());
        // Without a verdict the fallback silence ends it: 800 ms = 40 frames after frame 79.
        let ev = run(&mut e, 200, |i| i < 5, |_| false);
        let end = ev
            .iter()
            .find(|(_, e)| matches!(e, EndpointingEvent::Utterance(_)))
            .map(|(i, _)| *i);
        assert_eq!(end, Some(44), "{:?}", kinds(&ev));
    }

    #[test]
    fn with_both_silences_set_the_shorter_announces() {
        let mut cfg = turn_cfg(200, 800);
        cfg.eager_silence = Duration::from_millis(300);
        let mut e = Endpointer::new(cfg);
        let ev = run(&mut e, 80, |i| (10..60).contains(&i), |_| false);
        let tentatives: Vec<usize> = kinds(&ev)
            .into_iter()
            .filter(|(_, k)| *k == "tentative")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(tentatives, [69]);
    }
}
