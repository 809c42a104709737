//! The whisper engine: one model (whisper-rs / whisper.cpp), a pool of
//! worker threads each owning a whisper state, and a bounded queue in front.
//!
//! Each utterance is encoded once, in an encoder context (`audio_ctx`) sized
//! to the utterance instead of whisper's fixed 30 s window (encoding a 3 s
//! utterance in a 30 s context costs several times more for nothing), and
//! language identification reuses that encoding. The decoder is driven step
//! by step (`decode.rs`): greedy, without timestamps, at most a few tokens a
//! second of audio, stopped as soon as it loops. The text then passes the
//! guard against inventions (`guard.rs`), and when the question expects
//! known answers and the text holds none of them, those answers are scored
//! against the same encoder output.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_core::{Lang, Pii, ENGINE_RATE};
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
    WhisperTokenId,
};

use crate::decode::{log_softmax, near_occurrences, occurrences, Decoder, Occurrence, Vocab};
use crate::pool::{Job, Pool, Work};
use crate::threads::Threads;
use crate::{
    guard, Candidate, GuardConfig, IdentifyConfig, LanguageChoice, LanguageId, SpeechToText,
    SpotConfig, Spotted, SttConfig, SttError, SttFuture, SttRequest, SttTiming, Transcript,
};

/// whisper frames per second of audio (20 ms each, after the encoder's stride-2 conv).
const FRAMES_PER_SECOND: f64 = 50.0;
/// whisper's window: 30 s.
const MAX_AUDIO_CTX: u32 = 1500;
/// The confidence of a transcript whose expected answer passed the check
/// against the audio (above the interpreter's floor of 0.3 for understanding).
const SPOTTED_CONFIDENCE: f32 = 0.6;
/// whisper.cpp ignores input under 1 s: shorter utterances are padded with silence to this.
const MIN_SAMPLES: usize = ENGINE_RATE as usize + ENGINE_RATE as usize / 10;

/// The encoder context for an utterance: 50 frames per second of audio,
/// rounded up, at least `floor`, rounded up to a multiple of 8 (ggml kernels
/// like aligned sizes) and at most 1500 (30 s).
pub fn audio_ctx_for(audio: Duration, floor: u32) -> u32 {
    let frames = (audio.as_secs_f64() * FRAMES_PER_SECOND).ceil() as u32;
    let ctx = frames.max(floor).max(1);
    ctx.div_ceil(8).saturating_mul(8).min(MAX_AUDIO_CTX)
}

/// Most tokens a transcription may decode: room for fast speech (about 3
/// words, 4-6 tokens, a second), small enough that a repetition loop (see
/// [`collapse_repetition`]) ends quickly.
fn max_tokens_for(audio: Duration) -> i32 {
    (audio.as_secs_f64() * 10.0).ceil() as i32 + 16
}

/// Greedy decoding without temperature fallback sometimes loops: "Kan jeg
/// få det på engelsk? Kan jeg få det på engelsk? Kan jeg ..." until the
/// token limit. When the whole text is one phrase repeated (the last copy
/// possibly cut short), keep one copy. Words compare without case and
/// punctuation.
pub fn collapse_repetition(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let key = |w: &str| {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let keys: Vec<String> = words.iter().map(|w| key(w)).collect();
    let n = keys.len();
    // A loop shows at least half of the phrase (and two words) again.
    for period in (1..n).filter(|p| n - p >= 2 && (n - p) * 2 >= *p) {
        let repeats = (period..n).all(|i| {
            let want = &keys[i % period];
            keys[i] == *want
                || (i == n - 1 && !keys[i].is_empty() && want.starts_with(keys[i].as_str()))
        });
        if repeats {
            return words[..period].join(" ");
        }
    }
    text.to_string()
}

/// The whisper engine. Load once with [`WhisperStt::load`]; share it as an
/// `Arc<dyn SpeechToText>`. Dropping it lets the workers finish their
/// current utterance and stop.
pub struct WhisperStt {
    pool: Pool,
    default_language: Lang,
    workers: usize,
    threads: usize,
}

impl std::fmt::Debug for WhisperStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperStt")
            .field("workers", &self.workers)
            .field("threads", &self.threads)
            .field("queue", &self.pool.queue)
            .finish()
    }
}

impl WhisperStt {
    /// Loads the model named by the config and starts the workers (each
    /// runs one short warm-up utterance so the first caller is not slow).
    pub fn load(config: &SttConfig) -> Result<Self, SttError> {
        let path = &config.model;
        if !path.is_file() {
            return Err(SttError::ModelMissing {
                path: path.display().to_string(),
            });
        }
        whisper_rs::install_logging_hooks();
        let ctx = load_context(path)?;
        let threads = config.effective_threads();
        let workers = config.effective_workers();
        let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let floor = config.min_audio_ctx;
        let vocab = Arc::new(Vocab::new(&ctx));
        let mut works: Vec<Work> = Vec::with_capacity(workers);
        for _ in 0..workers {
            let state = ctx.create_state().map_err(|e| SttError::ModelLoad {
                path: path.display().to_string(),
                reason: format!("creating a whisper state: {e}"),
            })?;
            let mut w = WhisperWorker {
                ctx: Arc::clone(&ctx),
                vocab: Arc::clone(&vocab),
                state,
                threads: Threads::new(
                    threads,
                    config.effective_idle_threads(),
                    crate::config::cores(),
                    Arc::clone(&busy),
                ),
                floor,
                identify: config.identify.clone(),
                guard: config.guard.clone(),
                spot: config.spot.clone(),
                full: config.decode == crate::Decode::Full,
                encoded: None,
            };
            w.warm_up();
            works.push(Box::new(move |job: &Job| {
                let _working = w.threads.working();
                w.run(job)
            }));
        }
        Ok(Self {
            pool: Pool::start(works, config.queue),
            default_language: config.language,
            workers,
            threads,
        })
    }

    /// The language used when a request's detection list is empty.
    pub fn default_language(&self) -> Lang {
        self.default_language
    }
}

fn load_context(path: &Path) -> Result<Arc<WhisperContext>, SttError> {
    let mut params = WhisperContextParameters::default();
    params.use_gpu(false);
    let ctx = WhisperContext::new_with_params(path, params).map_err(|e| SttError::ModelLoad {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(ctx))
}

impl SpeechToText for WhisperStt {
    fn transcribe(&self, request: SttRequest) -> SttFuture<'_> {
        let submitted = self.submit(request);
        Box::pin(async move {
            let rx = submitted?;
            rx.await.map_err(|_| SttError::Stopped)?
        })
    }
}

impl WhisperStt {
    fn submit(
        &self,
        request: SttRequest,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<Transcript, SttError>>, SttError> {
        let audio = request.audio.duration();
        if request.audio.sample_rate != ENGINE_RATE {
            return Err(SttError::WrongSampleRate(request.audio.sample_rate));
        }
        if audio > Duration::from_secs(30) {
            return Err(SttError::TooLong(audio));
        }
        let language = match request.language {
            LanguageChoice::DetectAmong(ls) if ls.is_empty() => {
                LanguageChoice::DetectAmong(Lang::ALL.to_vec())
            }
            LanguageChoice::DetectAmong(ls) if ls.len() == 1 => LanguageChoice::Fixed(ls[0]),
            LanguageChoice::Identify { current, among } => {
                let mut among = dedup(among);
                if among.is_empty() {
                    among.push(current);
                }
                LanguageChoice::Identify { current, among }
            }
            other => other,
        };
        let (reply, rx) = tokio::sync::oneshot::channel();
        let samples = request.audio.to_f32();
        let mut settled = samples.clone();
        crate::audio::settle_tail(&mut settled);
        // Which audio this is, as the worker sees it: a speculation's
        // audio and the confirmed utterance's are the same once settled,
        // so either one's encoding serves the other sent again.
        let audio_key = crate::pool::audio_key(&settled);
        let job = Job {
            audio_key,
            samples,
            settled,
            audio,
            language,
            prompt: prompt_from_hints(&request.hints),
            candidates: request.candidates,
            cancel: request.cancel,
            enqueued: Instant::now(),
            reply,
        };
        self.pool.submit(job)?;
        Ok(rx)
    }
}

/// The initial prompt for a question's expected words: a comma-separated
/// list, the way such words would appear in a transcript.
fn prompt_from_hints(hints: &[String]) -> String {
    hints
        .iter()
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The language a request names without identification: the fixed one, the
/// current one, or the first allowed.
pub(crate) fn stated_language(choice: &LanguageChoice) -> Lang {
    match choice {
        LanguageChoice::Fixed(l) | LanguageChoice::Identify { current: l, .. } => *l,
        LanguageChoice::DetectAmong(ls) => ls.first().copied().unwrap_or(Lang::Da),
    }
}

/// The languages in their first order, each once.
fn dedup(langs: Vec<Lang>) -> Vec<Lang> {
    let mut out = Vec::with_capacity(langs.len());
    for l in langs {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

struct WhisperWorker {
    ctx: Arc<WhisperContext>,
    vocab: Arc<Vocab>,
    state: WhisperState,
    threads: Threads,
    floor: u32,
    identify: IdentifyConfig,
    guard: GuardConfig,
    spot: SpotConfig,
    /// `[stt] decode = "full"`: the earlier whisper_full path.
    full: bool,
    /// The audio (its `audio_key`) whose encoding `state` holds, and the
    /// encoder context it was encoded at: the same audio again is not
    /// encoded again.
    encoded: Option<(u64, u32)>,
}

impl WhisperWorker {
    fn warm_up(&mut self) {
        let silence = vec![0.0f32; MIN_SAMPLES];
        let mut p = self.params(
            Lang::En,
            audio_ctx_for(Duration::from_secs(1), self.floor),
            4,
        );
        p.set_max_tokens(1);
        if let Err(e) = self.state.full(p, &silence) {
            tracing::warn!(error = %e, "whisper warm-up failed");
        }
    }

    fn params(&self, lang: Lang, audio_ctx: u32, max_tokens: i32) -> FullParams<'static, 'static> {
        let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        p.set_n_threads(self.threads.now() as i32);
        p.set_language(Some(lang.code()));
        p.set_translate(false);
        p.set_no_context(true);
        p.set_no_timestamps(true);
        p.set_single_segment(true);
        p.set_print_special(false);
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_timestamps(false);
        p.set_suppress_blank(true);
        p.set_suppress_nst(true);
        p.set_temperature(0.0);
        p.set_temperature_inc(0.0);
        p.set_audio_ctx(audio_ctx as i32);
        p.set_max_tokens(max_tokens);
        p
    }

    /// Encodes `samples` at encoder context `audio_ctx` into the state:
    /// the mel spectrogram and the context are set by a `whisper_full` call
    /// of 100 ms duration, which stops before its main loop (whisper.cpp
    /// skips the loop when at most 100 ms are left), then the encoder runs.
    fn encode(&mut self, samples: &[f32], audio_ctx: u32) -> Result<(), whisper_rs::WhisperError> {
        let mut prime = self.params(Lang::Da, audio_ctx, 1);
        prime.set_duration_ms(100);
        self.state.full(prime, samples)?;
        self.state.encode(0, self.threads.now())
    }

    fn tokens(&self, text: &str) -> Vec<WhisperTokenId> {
        self.ctx.tokenize(text, 256).unwrap_or_default()
    }

    fn run(&mut self, job: &Job) -> Result<Transcript, SttError> {
        if self.full {
            return self.run_full(job);
        }
        let engine = |e: whisper_rs::WhisperError| SttError::Engine(e.to_string());
        let mut samples = job.settled.clone();
        let settled = Duration::from_secs_f64(samples.len() as f64 / f64::from(ENGINE_RATE));
        if samples.len() < MIN_SAMPLES {
            samples.resize(MIN_SAMPLES, 0.0);
        }
        let audio_ctx = audio_ctx_for(settled, self.floor);
        let encoding = Instant::now();
        // The same audio again (recognised again in another language):
        // the state holds its encoding already.
        let reused = self.encoded == Some((job.audio_key, audio_ctx));
        if !reused {
            self.encoded = None;
            self.encode(&samples, audio_ctx).map_err(engine)?;
            self.encoded = Some((job.audio_key, audio_ctx));
        }
        let encoding = encoding.elapsed();
        let identifying = Instant::now();
        let (identified, hints_apply) = match &job.language {
            LanguageChoice::Fixed(_) => (None, true),
            LanguageChoice::DetectAmong(allowed) => {
                let probs = self.language_probs(allowed).map_err(engine)?;
                let plain = IdentifyConfig {
                    margin: 0.0,
                    bias: Default::default(),
                };
                (Some(plain.choose(None, &probs)), true)
            }
            LanguageChoice::Identify { current, among } if among.len() < 2 => {
                let only = among.first().copied().unwrap_or(*current);
                let id = LanguageId {
                    chosen: only,
                    scores: vec![(only, 1.0)],
                };
                (Some(id), only == *current)
            }
            LanguageChoice::Identify { current, among } => {
                let probs = self.language_probs(among).map_err(engine)?;
                let prior = among.contains(current).then_some(*current);
                let id = self.identify.choose(prior, &probs);
                let same = id.chosen == *current;
                (Some(id), same)
            }
        };
        let identification = identifying.elapsed();
        let language = identified
            .as_ref()
            .map(|id| id.chosen)
            .unwrap_or_else(|| stated_language(&job.language));
        let lang_token = self
            .ctx
            .token_lang(whisper_rs::get_lang_id(language.code()).unwrap_or(0));
        // The hints and candidates are words of the current language: not for
        // another. (Adding the languages' names to the prompt of a turn that
        // may switch was tried: whisper base then "hears" "English" in robotic
        // Danish it cannot make out, a false switch; see tests/language_id.rs.)
        let prompt = if hints_apply && !job.prompt.is_empty() {
            self.tokens(&format!(" {}", job.prompt))
        } else {
            Vec::new()
        };
        let candidates: &[Candidate] = if hints_apply { &job.candidates } else { &[] };
        let decoding = Instant::now();
        let vocab = Arc::clone(&self.vocab);
        let mut decoder = Decoder::new(&mut self.state, &vocab, self.threads.clone());
        // From the settled length, so the speculative and the confirmed audio
        // (the same samples once settled) get the same limit.
        let max_tokens = usize::try_from(max_tokens_for(settled)).unwrap_or(32);
        if job.cancel.is_cancelled() {
            return Err(SttError::Cancelled);
        }
        let greedy = decoder
            .greedy(lang_token, &prompt, max_tokens, &|| {
                job.cancel.is_cancelled()
            })
            .map_err(engine)?;
        // Withdrawn while decoding: the text is cut short, and nobody waits for it.
        if job.cancel.is_cancelled() {
            return Err(SttError::Cancelled);
        }
        let decoding = decoding.elapsed();
        let avg_logprob = if greedy.tokens.is_empty() {
            0.0
        } else {
            greedy.avg_logprob()
        };
        let mut steps = greedy.steps;
        let spotting = Instant::now();
        let mut spotted = None;
        let mut tokens = greedy.tokens.clone();
        if !candidates.is_empty() {
            let lists: Vec<Vec<String>> = candidates.iter().map(|c| c.phrases.clone()).collect();
            let found = occurrences(&vocab, &tokens, &lists);
            if !found.is_empty() {
                // The prompt makes whisper write the words it lists, heard
                // or not: each one found is checked against the audio without
                // the prompt (how far from the decoder's own first choice it
                // is there); the ones that fail are taken out of the text.
                let gaps = if prompt.is_empty() {
                    vec![0.0; tokens.len()]
                } else {
                    // Forced only as far as the last answer found, and
                    // step by step only from the first one: the words
                    // before it go in as one batch (only the answers'
                    // own tokens are judged).
                    let first = found.iter().map(|o| o.start).min().unwrap_or(0);
                    let last = found.iter().map(|o| o.end).max().unwrap_or(0);
                    let (judged, n) = decoder
                        .force_after(lang_token, &tokens[..first], &tokens[first..last])
                        .map_err(engine)?;
                    steps += n;
                    let mut g = vec![0.0; first];
                    g.extend(judged);
                    g.resize(tokens.len(), 0.0);
                    g
                };
                let mut heard: Vec<(Occurrence, f32)> = Vec::new();
                let mut remove = vec![false; tokens.len()];
                for o in &found {
                    let gap: f32 = gaps[o.start..o.end].iter().sum();
                    // The answer's index and its check only: which answer
                    // a caller gave is theirs (no phrase in the log).
                    tracing::trace!(candidate = o.candidate, gap, "expected answer checked");
                    // A lone answer only has to be plausible; answers of
                    // several labels at once (the prompt's list read back)
                    // must each pass the check.
                    let alone = found.iter().all(|f| f.candidate == o.candidate);
                    let bar = if alone {
                        self.spot.accept_alone
                    } else {
                        self.spot.accept
                    };
                    if gap >= bar {
                        heard.push((*o, gap));
                    } else {
                        remove[o.start..o.end].iter_mut().for_each(|r| *r = true);
                    }
                }
                // The best-checked answer is the one reported; answers of
                // other labels that passed too stay in the text (a caller
                // may say "can someone call me back": the flow decides).
                if let Some((o, gap)) = heard.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)) {
                    let rival = heard
                        .iter()
                        .filter(|(h, _)| h.candidate != o.candidate)
                        .map(|(_, g)| *g)
                        .reduce(f32::max);
                    let c = &candidates[o.candidate];
                    spotted = Some(Spotted {
                        label: c.label.clone(),
                        phrase: c.phrases[o.phrase].clone(),
                        logprob: gap,
                        margin: rival.map_or(f32::INFINITY, |r| gap - r),
                    });
                }
                tokens = tokens
                    .iter()
                    .zip(&remove)
                    .filter(|(_, r)| !**r)
                    .map(|(t, _)| *t)
                    .collect();
            }
        }
        // No expected answer written (or none that passed): one written
        // almost right ("skårekort") is checked against the audio in its
        // place, and when it passes it takes that place.
        if spotted.is_none() && !candidates.is_empty() && self.spot.near > 0.0 {
            let lists: Vec<Vec<String>> = candidates.iter().map(|c| c.phrases.clone()).collect();
            let near = near_occurrences(&vocab, &tokens, &lists, self.spot.near);
            let mut passed: Vec<(usize, Vec<WhisperTokenId>, f32)> = Vec::new();
            for (k, n) in near.iter().enumerate().take(self.spot.near_checks) {
                let phrase = &candidates[n.at.candidate].phrases[n.at.phrase];
                let said = self
                    .ctx
                    .tokenize(&format!(" {phrase}"), 64)
                    .unwrap_or_default();
                if said.is_empty() {
                    continue;
                }
                let (gaps, n_steps) = decoder
                    .force_after(lang_token, &tokens[..n.at.start], &said)
                    .map_err(engine)?;
                steps += n_steps;
                let gap: f32 = gaps.iter().sum();
                tracing::trace!(candidate = n.at.candidate, gap, "near answer checked");
                if gap >= self.spot.accept_near {
                    passed.push((k, said, gap));
                }
            }
            if let Some((k, said, gap)) = passed.iter().max_by(|a, b| a.2.total_cmp(&b.2)).cloned()
            {
                let n = near[k];
                let rival = passed
                    .iter()
                    .filter(|p| near[p.0].at.candidate != n.at.candidate)
                    .map(|p| p.2)
                    .reduce(f32::max);
                let c = &candidates[n.at.candidate];
                spotted = Some(Spotted {
                    label: c.label.clone(),
                    phrase: c.phrases[n.at.phrase].clone(),
                    logprob: gap,
                    margin: rival.map_or(f32::INFINITY, |r| gap - r),
                });
                tokens.splice(n.at.start..n.at.end, said);
            }
        }
        let raw = vocab.text(&tokens);
        let (text, dropped) = match guard::judge(&self.guard, &raw, greedy.no_speech, avg_logprob) {
            Ok(t) => (t, None),
            Err(why) => (String::new(), Some(why)),
        };
        if dropped.is_some() {
            spotted = None;
        }
        let spotting = spotting.elapsed();
        let confidence = if text.is_empty() {
            0.0
        } else {
            let n = greedy.logprobs.len().max(1) as f32;
            let c = (greedy.logprobs.iter().map(|l| l.exp()).sum::<f32>() / n).clamp(0.0, 1.0);
            // An answer checked against the audio is as sure as the check.
            if spotted.is_some() {
                c.max(SPOTTED_CONFIDENCE)
            } else {
                c
            }
        };
        Ok(Transcript {
            text: Pii::new(text),
            confidence,
            no_speech: greedy.no_speech,
            avg_logprob,
            dropped,
            spotted,
            language,
            identified,
            timing: SttTiming {
                audio: job.audio,
                audio_ctx,
                identification,
                encoding,
                decoding,
                spotting,
                decoder_steps: steps,
                encoder_reused: reused,
                ..SttTiming::default()
            },
        })
    }

    /// The engine's earlier path, kept as `[stt] decode = "full"` to compare
    /// with (speed and accuracy, `benches/stt.rs`, `tests/call_routing.rs`):
    /// `whisper_full` (which encodes again after identification), the
    /// hints as its prompt, no guard and no candidates.
    fn run_full(&mut self, job: &Job) -> Result<Transcript, SttError> {
        let engine = |e: whisper_rs::WhisperError| SttError::Engine(e.to_string());
        let mut samples = job.samples.clone();
        if samples.len() < MIN_SAMPLES {
            samples.resize(MIN_SAMPLES, 0.0);
        }
        // whisper_full below replaces whatever the state held encoded.
        self.encoded = None;
        let audio_ctx = audio_ctx_for(job.audio, self.floor);
        let identifying = Instant::now();
        let (identified, hints_apply) = match &job.language {
            LanguageChoice::Fixed(_) => (None, true),
            LanguageChoice::DetectAmong(allowed) => {
                self.encode(&samples, audio_ctx).map_err(engine)?;
                let probs = self.language_probs(allowed).map_err(engine)?;
                let plain = IdentifyConfig {
                    margin: 0.0,
                    bias: Default::default(),
                };
                (Some(plain.choose(None, &probs)), true)
            }
            LanguageChoice::Identify { current, among } if among.len() < 2 => {
                let only = among.first().copied().unwrap_or(*current);
                let id = LanguageId {
                    chosen: only,
                    scores: vec![(only, 1.0)],
                };
                (Some(id), only == *current)
            }
            LanguageChoice::Identify { current, among } => {
                self.encode(&samples, audio_ctx).map_err(engine)?;
                let probs = self.language_probs(among).map_err(engine)?;
                let prior = among.contains(current).then_some(*current);
                let id = self.identify.choose(prior, &probs);
                let same = id.chosen == *current;
                (Some(id), same)
            }
        };
        let identification = if identified.is_some() {
            identifying.elapsed()
        } else {
            Duration::ZERO
        };
        let language = identified
            .as_ref()
            .map(|id| id.chosen)
            .unwrap_or_else(|| stated_language(&job.language));
        let mut params = self.params(language, audio_ctx, max_tokens_for(job.audio));
        // The hints are words of the current language: not for another.
        // (Adding the languages' names to the prompt of a turn that may
        // switch was tried: whisper base then "hears" "English" in robotic
        // Danish it cannot make out, a false switch; see tests/language_id.rs.)
        if hints_apply && !job.prompt.is_empty() {
            params.set_initial_prompt(&job.prompt);
        }
        self.state.full(params, &samples).map_err(engine)?;

        let mut text = String::new();
        let (mut p_sum, mut p_n) = (0.0f32, 0u32);
        let mut no_speech = 0.0f32;
        for seg in self.state.as_iter() {
            text.push_str(&seg.to_str_lossy().map_err(engine)?);
            no_speech = no_speech.max(seg.no_speech_probability());
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else {
                    continue;
                };
                let bytes = tok.to_bytes().unwrap_or_default();
                // Special tokens print as `[_..._]` / `<|...|>`: leave them out of the confidence.
                if bytes.starts_with(b"[_") || bytes.starts_with(b"<|") {
                    continue;
                }
                p_sum += tok.token_probability();
                p_n += 1;
            }
        }
        let text = collapse_repetition(text.trim());
        let confidence = if p_n == 0 || text.is_empty() {
            0.0
        } else {
            (p_sum / p_n as f32).clamp(0.0, 1.0)
        };
        Ok(Transcript {
            text: Pii::new(text),
            confidence,
            no_speech,
            avg_logprob: 0.0,
            dropped: None,
            spotted: None,
            language,
            identified,
            timing: SttTiming {
                audio: job.audio,
                audio_ctx,
                identification,
                ..SttTiming::default()
            },
        })
    }

    /// whisper's probability of each allowed language (among all of its
    /// languages), from the encoder output in the state: one decoder step on
    /// the start-of-transcript token, the language tokens' logits, softmax
    /// over all languages. That is what `whisper_lang_auto_detect` does after
    /// running the encoder itself; here the encoder has run already (or its
    /// output is reused), and it stays in the state for the transcription.
    fn language_probs(
        &mut self,
        allowed: &[Lang],
    ) -> Result<Vec<(Lang, f32)>, whisper_rs::WhisperError> {
        let sot = self.ctx.token_sot();
        self.state.decode(&[sot], 0, self.threads.now())?;
        let logits = self.state.get_logits()?;
        let n_langs = whisper_rs::get_lang_max_id().max(0) + 1;
        let lang_logits: Vec<f32> = (0..n_langs)
            .map(|id| {
                usize::try_from(self.ctx.token_lang(id))
                    .ok()
                    .and_then(|t| logits.get(t))
                    .copied()
                    .unwrap_or(f32::NEG_INFINITY)
            })
            .collect();
        let mut probs = Vec::new();
        log_softmax(&lang_logits, &[], &[], &mut probs);
        Ok(allowed
            .iter()
            .map(|l| {
                let p = whisper_rs::get_lang_id(l.code())
                    .and_then(|id| usize::try_from(id).ok())
                    .and_then(|id| probs.get(id))
                    .map_or(0.0, |lp| lp.exp());
                (*l, p)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_core::Pcm;

    #[test]
    fn audio_ctx_follows_the_utterance_with_a_floor_and_a_cap() {
        assert_eq!(
            audio_ctx_for(Duration::from_secs(3), 128),
            152,
            "150 frames, to a multiple of 8"
        );
        assert_eq!(
            audio_ctx_for(Duration::from_millis(5010), 128),
            256,
            "250.5 frames round up to 251, then 256"
        );
        assert_eq!(audio_ctx_for(Duration::from_millis(400), 128), 128, "floor");
        assert_eq!(
            audio_ctx_for(Duration::from_secs(40), 128),
            1500,
            "never past 30 s"
        );
        assert_eq!(audio_ctx_for(Duration::ZERO, 0), 8);
    }

    #[test]
    fn a_repetition_loop_collapses_to_one_phrase() {
        assert_eq!(
            collapse_repetition(
                "Kan jeg få det på engelsk? Kan jeg få det på engelsk? Kan jeg få det på eng"
            ),
            "Kan jeg få det på engelsk?"
        );
        assert_eq!(
            collapse_repetition("Skal os pennele. Skal os pennele. skal os"),
            "Skal os pennele."
        );
        assert_eq!(
            collapse_repetition("I need help with my passport."),
            "I need help with my passport."
        );
        assert_eq!(
            collapse_repetition(
                "Ja, I målge, han bestelte, dintelet kørekort. Ja, I målge han bestelte, dintelet"
            ),
            "Ja, I målge, han bestelte, dintelet kørekort.",
            "the second copy cut short by the token limit"
        );
        assert_eq!(collapse_repetition("ja"), "ja");
        assert_eq!(
            collapse_repetition("ja ja"),
            "ja ja",
            "two words are not a loop"
        );
        assert_eq!(
            collapse_repetition("min min min har"),
            "min min min har",
            "only whole-text loops"
        );
        assert_eq!(collapse_repetition(""), "");
    }

    #[test]
    fn hints_become_a_comma_separated_prompt() {
        let h = vec![
            "pas".to_string(),
            " kørekort ".into(),
            "".into(),
            "affald".into(),
        ];
        assert_eq!(prompt_from_hints(&h), "pas, kørekort, affald");
    }

    #[test]
    fn a_missing_model_says_run_make_setup() {
        let c = SttConfig {
            model: "/nonexistent/ggml.bin".into(),
            ..SttConfig::default()
        };
        let e = WhisperStt::load(&c).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/ggml.bin") && e.contains("make setup"),
            "{e}"
        );
    }

    #[test]
    fn requests_are_checked_before_they_queue() {
        let stt = WhisperStt {
            pool: Pool::start(vec![], 1),
            default_language: Lang::Da,
            workers: 0,
            threads: 1,
        };
        let e = stt
            .submit(SttRequest::new(Pcm::new(8000, vec![0; 8000]), Lang::Da))
            .unwrap_err();
        assert!(matches!(e, SttError::WrongSampleRate(8000)));
        let e = stt
            .submit(SttRequest::new(
                Pcm::new(16_000, vec![0; 16_000 * 31]),
                Lang::Da,
            ))
            .unwrap_err();
        assert!(matches!(e, SttError::TooLong(_)));
    }
}
