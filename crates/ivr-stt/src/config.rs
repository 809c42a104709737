//! The `[stt]` section of the `ivr` config file.

use std::path::PathBuf;

use ivr_core::Lang;
use serde::Deserialize;

use crate::{GuardConfig, IdentifyConfig};

/// Speech-to-text settings. Every field has a default; unknown keys are errors.
///
/// ```toml
/// [stt]
/// model = "models/whisper-base/ggml-base-q4_0.bin"  # any whisper.cpp ggml file
/// threads = 0        # whisper threads per utterance; 0 = cores / 4, 1 to 4
/// idle_threads = 0   # threads of an utterance alone on idle cores; 0 = cores, up to 4; 1 = off
/// workers = 0        # utterances transcribed at once; 0 = cores / threads
/// queue = 4          # utterances waiting for a worker; beyond: Overloaded
/// language = "da"    # language when a flow sets none
/// min_audio_ctx = 128 # floor of the encoder context (frames of 20 ms)
///
/// [stt.identify]     # identifying the caller's language (see IdentifyConfig)
/// margin = 1.0
/// bias = { da = 5.0 }
///
/// [stt.guard]        # dropping what whisper invents (see GuardConfig)
/// [stt.spot]         # checking the answers a question expects (see SpotConfig)
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SttConfig {
    /// Path of a whisper.cpp ggml model. A Danish fine-tune (e.g. hviske,
    /// roest) converted to ggml is dropped in here.
    pub model: PathBuf,
    /// whisper threads per utterance (0: a quarter of the cores, 1 to 4).
    ///
    /// ggml's threads spin while they wait for each other: when the machine
    /// is busy (media threads, other calls) more threads per utterance make
    /// it slower, not faster. Measured on a loaded 2-core machine: 3 s of
    /// Danish took 0.86 s with 1 thread and 12 s with 2. So the default
    /// favours more workers of few threads.
    pub threads: usize,
    /// Threads an utterance may take while no other is being recognised and
    /// the machine's cores are idle (checked before every whisper call from
    /// the kernel's count of runnable threads; 0: the cores, at most 4; at
    /// or below `threads`: never more than `threads`). Idle cores then
    /// shorten the caller's wait (3 s of Danish: 265 ms on one thread, 150
    /// ms on two). On by default (0: the cores, at most 4): on a 2-core
    /// AVX2 machine it took turn latency at one call from 1,040 to 760 ms
    /// (median) and left ten calls as they were (`benches/latency.rs`
    /// `--stt-idle-threads`). The kernel's count is of one instant, and load
    /// that starts a moment later (another engine on the host, parallel
    /// tests) meets ggml's spinning threads: set 1 (off) on a host that runs
    /// several engines, and in fixed-timing tests on a loaded machine.
    pub idle_threads: usize,
    /// Worker count, each with its own whisper state (0: cores / threads, at least 1).
    pub workers: usize,
    /// Utterances that may wait for a worker; when full, requests fail with
    /// `Overloaded` at once.
    pub queue: usize,
    /// Language used when the flow does not set one.
    pub language: Lang,
    /// Lower bound of the encoder context in whisper frames (50 per second):
    /// very short contexts make whisper hallucinate.
    pub min_audio_ctx: u32,
    /// The decision rule of language identification.
    pub identify: IdentifyConfig,
    /// How the decoder runs: `steps` (the default: one encoder pass, the
    /// decoder driven step by step, guard and candidates) or `full` (the
    /// earlier `whisper_full` path, kept to compare with).
    pub decode: Decode,
    /// Dropping whisper's inventions on silence and noise.
    pub guard: GuardConfig,
    /// Checking the answers a closed question expects against the audio.
    pub spot: SpotConfig,
}

/// `[stt] decode`: how the decoder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decode {
    /// One encoder pass, the decoder driven step by step, the guard against
    /// inventions and the check of expected answers.
    Steps,
    /// `whisper_full` with the hints as prompt, as before (slower, no guard).
    Full,
}

/// The `[stt.spot]` settings: when an expected answer that whisper wrote
/// counts as heard (see `tests/call_routing.rs` for how it was measured).
///
/// The hints prompt makes whisper write the words it lists whether they
/// were said or not. Each expected answer found in the transcript is
/// therefore checked against the audio without the prompt: its tokens are
/// teacher-forced and the log-probabilities they lose against the
/// decoder's own first choice at each place are summed ("gap", 0 when the
/// unbiased decoder would have written it anyway).
///
/// When answers of several labels are found (whisper base often writes
/// the hint list back), each must reach `accept`; those that pass stay (a
/// caller may say "can someone call me back"; the flow decides). A lone
/// answer has to reach `accept_alone`: long Danish words whisper wrote
/// rightly ("boligstøtte") lose more in the check than short ones.
///
/// When no expected answer is written (or none passed), one written almost
/// right is tried: a run of whole words within `near` edits per letter of
/// a phrase of at least 6 letters ("skårekort" for "kørekort"). The
/// phrase's own tokens are checked in its place (the words before it as
/// the context, without the prompt); the best of at most `near_checks`
/// that reaches `accept_near` takes that place in the text.
///
/// ```toml
/// [stt.spot]
/// accept = -8.0         # gap an answer needs when others were found too
/// accept_alone = -12.0  # gap a lone answer needs
/// near = 0.3            # edits per letter of an answer written almost right (0: off)
/// accept_near = -12.0   # gap such an answer needs in its place
/// near_checks = 3       # at most this many checked (nearest first)
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpotConfig {
    /// Least gap (nats, at most 0) an expected answer needs when answers of
    /// other labels were found too.
    pub accept: f32,
    /// Least gap a lone expected answer needs.
    pub accept_alone: f32,
    /// Most edits per letter (Levenshtein over the phrase's letters) for a
    /// run of words to count as an expected answer written almost right;
    /// 0 turns this off.
    pub near: f32,
    /// Least gap an answer written almost right needs, checked in its place.
    pub accept_near: f32,
    /// At most this many answers written almost right are checked (each
    /// costs decoder steps), the nearest first.
    pub near_checks: usize,
}

impl Default for SpotConfig {
    fn default() -> Self {
        Self {
            accept: -8.0,
            accept_alone: -12.0,
            near: 0.3,
            accept_near: -12.0,
            near_checks: 3,
        }
    }
}

impl Default for SttConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("models/whisper-base/ggml-base-q4_0.bin"),
            threads: 0,
            idle_threads: 0,
            workers: 0,
            queue: 4,
            language: Lang::Da,
            min_audio_ctx: 128,
            identify: IdentifyConfig::default(),
            decode: Decode::Steps,
            guard: GuardConfig::default(),
            spot: SpotConfig::default(),
        }
    }
}

impl SttConfig {
    /// The whisper thread count after applying the automatic default.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            (cores() / 4).clamp(1, 4)
        }
    }

    /// The idle-machine thread count after applying the automatic default.
    pub fn effective_idle_threads(&self) -> usize {
        if self.idle_threads > 0 {
            self.idle_threads
        } else {
            cores().clamp(1, 4)
        }
    }

    /// The worker count after applying the automatic default.
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            (cores() / self.effective_threads()).max(1)
        }
    }
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_gives_the_defaults() {
        let c: SttConfig = toml::from_str("").unwrap();
        assert_eq!(c, SttConfig::default());
        assert!(c.effective_threads() >= 1 && c.effective_workers() >= 1);
    }

    #[test]
    fn an_operator_can_point_at_a_danish_model() {
        let c: SttConfig = toml::from_str("model = \"/srv/models/hviske-v2-q8_0.bin\"\nlanguage = \"da\"\nworkers = 2\nthreads = 1\n").unwrap();
        assert_eq!(c.model, PathBuf::from("/srv/models/hviske-v2-q8_0.bin"));
        assert_eq!((c.effective_workers(), c.effective_threads()), (2, 1));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = toml::from_str::<SttConfig>("modell = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("modell"), "{e}");
    }
}
