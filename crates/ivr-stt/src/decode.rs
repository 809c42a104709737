//! whisper's decoder driven step by step instead of through `whisper_full`:
//! one encoder pass per utterance (shared with language identification),
//! greedy decoding that stops as soon as a repetition loop shows, the
//! no-speech probability read where OpenAI's whisper reads it, every token's
//! log-probability, and teacher-forced scoring of the phrases a question
//! expects against the same encoder output ([`Decoder::spot`]).
//!
//! The logit filters are those `whisper_full` applies with the engine's old
//! settings (no timestamps, `suppress_blank`, `suppress_nst`): every special
//! token but end-of-text is suppressed, end-of-text and a bare space on the
//! first step, and the non-speech symbols whisper.cpp lists.

use whisper_rs::{WhisperContext, WhisperError, WhisperState, WhisperTokenId};

/// whisper.cpp's `non_speech_tokens`, suppressed with and without a leading space.
const NON_SPEECH: [&str; 55] = [
    "\"",
    "#",
    "(",
    ")",
    "*",
    "+",
    "/",
    ":",
    ";",
    "<",
    "=",
    ">",
    "@",
    "[",
    "\\",
    "]",
    "^",
    "_",
    "`",
    "{",
    "|",
    "}",
    "~",
    "「",
    "」",
    "『",
    "』",
    "<<",
    ">>",
    "<<<",
    ">>>",
    "--",
    "---",
    "-(",
    "-[",
    "('",
    "(\"",
    "((",
    "))",
    "(((",
    ")))",
    "[[",
    "]]",
    "{{",
    "}}",
    "♪♪",
    "♪♪♪",
    "♩",
    "♪",
    "♫",
    "♬",
    "♭",
    "♮",
    "♯",
    " -",
];

/// The model's token ids the decoder needs, and which tokens it never emits.
pub(crate) struct Vocab {
    sot: WhisperTokenId,
    eot: WhisperTokenId,
    nosp: WhisperTokenId,
    not: WhisperTokenId,
    transcribe: WhisperTokenId,
    prev: WhisperTokenId,
    /// The bare-space token (suppressed on the first step).
    blank: Option<WhisperTokenId>,
    /// Suppressed on every step.
    suppressed: Vec<bool>,
    /// Each token's bytes (text tokens; specials are empty).
    bytes: Vec<Vec<u8>>,
}

impl Vocab {
    /// Reads the ids and the token texts from the model.
    pub(crate) fn new(ctx: &WhisperContext) -> Self {
        let n = usize::try_from(ctx.n_vocab()).unwrap_or(0);
        let eot = ctx.token_eot();
        let mut bytes = vec![Vec::new(); n];
        let mut suppressed = vec![false; n];
        let mut blank = None;
        for (id, slot) in bytes.iter_mut().enumerate() {
            let Ok(tid) = WhisperTokenId::try_from(id) else {
                break;
            };
            if tid >= eot {
                suppressed[id] = tid != eot;
                continue;
            }
            let b = ctx
                .token_to_bytes(tid)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            if b == b" " {
                blank = Some(tid);
            }
            if let Ok(s) = std::str::from_utf8(&b) {
                if NON_SPEECH
                    .iter()
                    .any(|t| s == *t || (s.starts_with(' ') && &s[1..] == *t) || s == " '")
                {
                    suppressed[id] = true;
                }
            }
            *slot = b;
        }
        Self {
            sot: ctx.token_sot(),
            eot,
            nosp: ctx.token_nosp(),
            not: ctx.token_not(),
            transcribe: ctx.token_transcribe(),
            prev: ctx.token_prev(),
            blank,
            suppressed,
            bytes,
        }
    }

    /// The text of tokens (UTF-8 may be split across tokens).
    pub(crate) fn text(&self, tokens: &[WhisperTokenId]) -> String {
        let mut b = Vec::new();
        for t in tokens {
            if let Some(tb) = usize::try_from(*t).ok().and_then(|i| self.bytes.get(i)) {
                b.extend_from_slice(tb);
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    }
}

/// One greedy decoding.
#[derive(Debug, Clone, Default)]
pub(crate) struct Greedy {
    /// The text tokens chosen.
    pub tokens: Vec<WhisperTokenId>,
    /// Each one's log-probability (after the filters).
    pub logprobs: Vec<f32>,
    /// The end-of-text token's log-probability where decoding ended (0 when
    /// it was cut by the token limit or a loop).
    pub eot_logprob: f32,
    /// whisper's probability that there is no speech (read at the
    /// start-of-transcript position, before any filter).
    pub no_speech: f32,
    /// Decoding stopped because the last tokens repeated a loop.
    pub looped: bool,
    /// Decoder calls made.
    pub steps: u32,
}

impl Greedy {
    /// Mean log-probability of the text tokens and the end (OpenAI's `avg_logprob`).
    pub(crate) fn avg_logprob(&self) -> f32 {
        let n = self.logprobs.len() + 1;
        (self.logprobs.iter().sum::<f32>() + self.eot_logprob) / n as f32
    }
}

/// Where a candidate phrase occurs in decoded tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Occurrence {
    /// Index of the candidate (label).
    pub candidate: usize,
    /// Index of the phrase within the candidate.
    pub phrase: usize,
    /// The tokens it spans (`start..end`).
    pub start: usize,
    /// One past its last token.
    pub end: usize,
}

/// The candidate phrases (`phrases[c]`: candidate c's phrases) that occur in
/// `tokens` as whole words, case and punctuation aside, each with the tokens
/// it spans. A longer phrase wins over one inside it ("nyt pas" over "pas").
pub(crate) fn occurrences(
    vocab: &Vocab,
    tokens: &[WhisperTokenId],
    phrases: &[Vec<String>],
) -> Vec<Occurrence> {
    // The text, lower-cased, with each character's token.
    let mut chars: Vec<(char, usize)> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if let Some(b) = usize::try_from(*t).ok().and_then(|k| vocab.bytes.get(k)) {
            pending.extend_from_slice(b);
        }
        // Emit whatever is valid UTF-8 so far (a letter may span tokens).
        let valid = match std::str::from_utf8(&pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        if valid > 0 {
            let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
            for c in text.chars().flat_map(char::to_lowercase) {
                let c = if c.is_alphanumeric() { c } else { ' ' };
                chars.push((c, i));
            }
            pending.drain(..valid);
        }
    }
    let text: Vec<char> = chars.iter().map(|(c, _)| *c).collect();
    let mut found: Vec<Occurrence> = Vec::new();
    for (ci, list) in phrases.iter().enumerate() {
        for (pi, p) in list.iter().enumerate() {
            let words: Vec<String> = p
                .to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            let needle: Vec<char> = words.join(" ").chars().collect();
            if needle.is_empty() || needle.len() > text.len() {
                continue;
            }
            for at in 0..=text.len() - needle.len() {
                let before = at == 0 || text[at - 1] == ' ';
                let after = at + needle.len() == text.len() || text[at + needle.len()] == ' ';
                if before && after && text[at..at + needle.len()] == needle[..] {
                    found.push(Occurrence {
                        candidate: ci,
                        phrase: pi,
                        start: chars[at].1,
                        end: chars[at + needle.len() - 1].1 + 1,
                    });
                }
            }
        }
    }
    // Drop an occurrence inside a longer one.
    let all = found.clone();
    found.retain(|o| {
        !all.iter().any(|b| {
            b != o && b.start <= o.start && o.end <= b.end && (b.end - b.start) > (o.end - o.start)
        })
    });
    found.dedup_by(|a, b| a.start == b.start && a.end == b.end);
    found
}

/// Levenshtein distance between two strings, in characters.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// An expected phrase written almost right: a run of whole words in the
/// transcript whose letters are close to the phrase's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Near {
    /// Where, as for an exact occurrence.
    pub at: Occurrence,
    /// Edit distance over the phrase's length (letters, spaces left out).
    pub distance: f32,
}

/// Phrases of at least this many letters may be matched nearly (shorter
/// ones, "pas", "ja", are other words after one changed letter).
pub(crate) const NEAR_MIN_LETTERS: usize = 6;

/// The candidate phrases that occur in `tokens` nearly: runs of one to
/// (phrase words + 1) whole words whose letters (case, spaces and
/// punctuation aside) are within `max_distance` edits per letter of a
/// phrase's, for phrases of at least [`NEAR_MIN_LETTERS`] letters ("skårekort"
/// for "kørekort", "hjemmehælp" for "hjemmehjælp"). Only runs that whole
/// tokens cover (no token shared with a word outside the run), so that the
/// phrase's tokens can take their place. Exact occurrences are left out
/// (see [`occurrences`]); the nearest first.
pub(crate) fn near_occurrences(
    vocab: &Vocab,
    tokens: &[WhisperTokenId],
    phrases: &[Vec<String>],
    max_distance: f32,
) -> Vec<Near> {
    // Each token's text, and the words (letters only, lower case) with the
    // tokens they span.
    let texts: Vec<String> = tokens
        .iter()
        .map(|t| {
            let b = usize::try_from(*t)
                .ok()
                .and_then(|k| vocab.bytes.get(k))
                .cloned()
                .unwrap_or_default();
            String::from_utf8_lossy(&b).into_owned()
        })
        .collect();
    // A token holding a partial UTF-8 character prints U+FFFD: such
    // tokens never bound a run (the letter they split is inside a word).
    let mut words: Vec<(Vec<char>, usize, usize)> = Vec::new();
    let mut in_word = false;
    for (i, t) in texts.iter().enumerate() {
        for c in t.chars() {
            let letter = c.is_alphanumeric() || c == '\u{fffd}';
            if letter {
                if !in_word {
                    words.push((Vec::new(), i, i + 1));
                    in_word = true;
                }
                if let Some(w) = words.last_mut() {
                    w.0.extend(c.to_lowercase());
                    w.2 = i + 1;
                }
            } else {
                in_word = false;
            }
        }
    }
    // A token shared by two words cannot be replaced by one of them alone.
    let shared = |tok: usize, from: usize, to: usize| {
        words
            .iter()
            .enumerate()
            .any(|(k, w)| (k < from || k >= to) && w.1 <= tok && tok < w.2)
    };
    let mut out: Vec<Near> = Vec::new();
    for (ci, list) in phrases.iter().enumerate() {
        for (pi, p) in list.iter().enumerate() {
            let letters: Vec<char> = p
                .chars()
                .flat_map(char::to_lowercase)
                .filter(|c| c.is_alphanumeric())
                .collect();
            if letters.len() < NEAR_MIN_LETTERS {
                continue;
            }
            let n_words = p.split_whitespace().count().max(1);
            for from in 0..words.len() {
                for to in from + 1..=(from + n_words + 1).min(words.len()) {
                    let run: Vec<char> = words[from..to]
                        .iter()
                        .flat_map(|w| w.0.iter().copied())
                        .collect();
                    if run == letters {
                        continue; // exact: `occurrences` has it
                    }
                    let d = edit_distance(&run, &letters) as f32 / letters.len() as f32;
                    if d > max_distance {
                        continue;
                    }
                    let (start, end) = (words[from].1, words[to - 1].2);
                    if shared(start, from, to) || shared(end - 1, from, to) {
                        continue;
                    }
                    out.push(Near {
                        at: Occurrence {
                            candidate: ci,
                            phrase: pi,
                            start,
                            end,
                        },
                        distance: d,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    out
}

/// Drives one state's decoder over the encoder output already in it.
pub(crate) struct Decoder<'a> {
    pub state: &'a mut WhisperState,
    pub vocab: &'a Vocab,
    pub threads: crate::threads::Threads,
    /// Tokens before the first text token (prompt, sot, language, task, no-timestamps).
    prefix_len: usize,
}

/// Log-softmax of `logits` with the suppressed tokens at -inf, into `out`.
pub(crate) fn log_softmax(
    logits: &[f32],
    suppressed: &[bool],
    extra: &[WhisperTokenId],
    out: &mut Vec<f32>,
) {
    out.clear();
    out.extend(logits.iter().enumerate().map(|(i, l)| {
        if suppressed.get(i).copied().unwrap_or(false) {
            f32::NEG_INFINITY
        } else {
            *l
        }
    }));
    for t in extra {
        if let Some(v) = usize::try_from(*t).ok().and_then(|i| out.get_mut(i)) {
            *v = f32::NEG_INFINITY;
        }
    }
    let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return;
    }
    let sum: f32 = out.iter().map(|l| (l - max).exp()).sum();
    let log_sum = max + sum.ln();
    for v in out.iter_mut() {
        *v -= log_sum;
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// The last tokens repeat a sequence of 1 to 12 tokens at least `times`
/// times in a row (3 for one-token loops, else 2 with at least 4 tokens each).
fn loops(tokens: &[WhisperTokenId]) -> Option<usize> {
    let n = tokens.len();
    for period in 1..=12usize.min(n / 2) {
        let times = if period < 4 { 3 } else { 2 };
        if n < period * times {
            continue;
        }
        let tail = &tokens[n - period..];
        if (1..times).all(|k| &tokens[n - period * (k + 1)..n - period * k] == tail) {
            return Some(period * (times - 1));
        }
    }
    None
}

impl<'a> Decoder<'a> {
    /// A decoder over `state`, whose encoder output is current.
    pub(crate) fn new(
        state: &'a mut WhisperState,
        vocab: &'a Vocab,
        threads: crate::threads::Threads,
    ) -> Self {
        Self {
            state,
            vocab,
            threads,
            prefix_len: 0,
        }
    }

    fn logits(&self) -> Result<Vec<f32>, WhisperError> {
        Ok(self.state.get_logits()?.to_vec())
    }

    /// Decodes `tokens` at `n_past` so that the logits after the last one
    /// can be read: whisper.cpp computes every row of a batch but
    /// `whisper_get_logits` points at the first row, which holds the last
    /// token's logits only for a batch of one. So the batch is all but the
    /// last token, then the last alone. Returns the decoder calls made.
    fn feed(&mut self, tokens: &[WhisperTokenId], n_past: usize) -> Result<u32, WhisperError> {
        let Some((last, head)) = tokens.split_last() else {
            return Ok(0);
        };
        let mut calls = 1;
        if !head.is_empty() {
            self.state.decode(head, n_past, self.threads.now())?;
            calls += 1;
        }
        self.state
            .decode(&[*last], n_past + head.len(), self.threads.now())?;
        Ok(calls)
    }

    /// Greedy decoding of at most `max_tokens` text tokens in language token
    /// `lang` with `prompt` tokens as the initial prompt. `stop` is asked
    /// before every step: when it says so, decoding ends there (the request
    /// was withdrawn; the tokens so far are returned).
    pub(crate) fn greedy(
        &mut self,
        lang: WhisperTokenId,
        prompt: &[WhisperTokenId],
        max_tokens: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<Greedy, WhisperError> {
        let v = self.vocab;
        let mut out = Greedy::default();
        // [prev, prompt..., sot]: the logits at sot give the no-speech probability.
        let mut head = Vec::with_capacity(prompt.len() + 2);
        if !prompt.is_empty() {
            head.push(v.prev);
            head.extend_from_slice(prompt);
        }
        head.push(v.sot);
        out.steps += self.feed(&head, 0)?;
        let mut lp = Vec::new();
        log_softmax(&self.logits()?, &[], &[], &mut lp);
        out.no_speech = usize::try_from(v.nosp)
            .ok()
            .and_then(|i| lp.get(i))
            .map_or(0.0, |l| l.exp());
        let task = [lang, v.transcribe, v.not];
        out.steps += self.feed(&task, head.len())?;
        self.prefix_len = head.len() + task.len();
        let first_extra = [v.eot, v.blank.unwrap_or(v.eot)];
        loop {
            if stop() {
                break;
            }
            let logits = self.logits()?;
            let extra: &[WhisperTokenId] = if out.tokens.is_empty() {
                &first_extra
            } else {
                &[]
            };
            log_softmax(&logits, &v.suppressed, extra, &mut lp);
            let best = argmax(&lp);
            let Ok(best_id) = WhisperTokenId::try_from(best) else {
                break;
            };
            if best_id == v.eot {
                out.eot_logprob = lp[best];
                break;
            }
            if out.tokens.len() >= max_tokens {
                break;
            }
            out.tokens.push(best_id);
            out.logprobs.push(lp[best]);
            if let Some(cut) = loops(&out.tokens) {
                let keep = out.tokens.len() - cut;
                out.tokens.truncate(keep);
                out.logprobs.truncate(keep);
                out.looped = true;
                break;
            }
            self.state.decode(
                &[best_id],
                self.prefix_len + out.tokens.len() - 1,
                self.threads.now(),
            )?;
            out.steps += 1;
        }
        Ok(out)
    }
}

impl Decoder<'_> {
    /// Teacher-forces `prefix` then `tokens` in language token `lang`
    /// without a prompt, and returns for each of `tokens` how far it is
    /// from the decoder's own first choice there: its log-probability minus
    /// the best token's (0 when it is the first choice). The prefix is fed
    /// in one batch (its tokens are not judged), then one decoder step per
    /// token. Returns the gaps and the decoder calls.
    pub(crate) fn force_after(
        &mut self,
        lang: WhisperTokenId,
        prefix: &[WhisperTokenId],
        tokens: &[WhisperTokenId],
    ) -> Result<(Vec<f32>, u32), WhisperError> {
        let v = self.vocab;
        let mut head = vec![v.sot, lang, v.transcribe, v.not];
        head.extend_from_slice(prefix);
        let mut steps = self.feed(&head, 0)?;
        self.prefix_len = head.len();
        let mut lp = Vec::new();
        let mut out = Vec::with_capacity(tokens.len());
        let first_extra = [v.eot, v.blank.unwrap_or(v.eot)];
        for (i, t) in tokens.iter().enumerate() {
            let extra: &[WhisperTokenId] = if i == 0 && prefix.is_empty() {
                &first_extra
            } else {
                &[]
            };
            log_softmax(&self.logits()?, &v.suppressed, extra, &mut lp);
            let best = lp[argmax(&lp)];
            let own = usize::try_from(*t)
                .ok()
                .and_then(|i| lp.get(i))
                .copied()
                .unwrap_or(f32::NEG_INFINITY);
            out.push(own - best);
            if i + 1 < tokens.len() {
                self.state
                    .decode(&[*t], self.prefix_len + i, self.threads.now())?;
                steps += 1;
            }
        }
        Ok((out, steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_is_found_at_the_end_only() {
        assert_eq!(loops(&[1, 2, 3, 4]), None);
        assert_eq!(loops(&[5, 7, 7, 7]), Some(2), "one token three times");
        assert_eq!(loops(&[9, 1, 2, 3, 4, 1, 2, 3, 4]), Some(4));
        assert_eq!(loops(&[1, 2, 1, 2]), None, "a short pair twice is speech");
        assert_eq!(loops(&[1, 2, 1, 2, 1, 2]), Some(4));
    }

    /// A vocabulary of byte strings (token id = index), "ø" split in two.
    fn vocab(tokens: &[&[u8]]) -> Vocab {
        Vocab {
            sot: 100,
            eot: 99,
            nosp: 101,
            not: 102,
            transcribe: 103,
            prev: 104,
            blank: None,
            suppressed: vec![false; tokens.len()],
            bytes: tokens.iter().map(|t| t.to_vec()).collect(),
        }
    }

    #[test]
    fn expected_answers_are_found_as_whole_words_across_tokens() {
        let o = "ø".as_bytes();
        let v = vocab(&[
            b" Jeg",
            b" skal",
            b" k",
            &o[..1],
            &o[1..],
            b"rek",
            b"ort",
            b",",
            b" pas",
            b"ser",
            b" nyt",
            b" pas",
        ]);
        let phrases = vec![
            vec!["kørekort".to_string()],
            vec!["pas".to_string(), "nyt pas".to_string()],
        ];
        let all: Vec<WhisperTokenId> = (0..12).collect();
        let found = occurrences(&v, &all, &phrases);
        assert_eq!(
            found,
            vec![
                Occurrence {
                    candidate: 0,
                    phrase: 0,
                    start: 2,
                    end: 7
                },
                Occurrence {
                    candidate: 1,
                    phrase: 1,
                    start: 10,
                    end: 12
                },
            ],
            "\"passer\" is not \"pas\", and \"nyt pas\" holds the \"pas\" inside it"
        );
        assert_eq!(v.text(&all[..7]), " Jeg skal kørekort");
        assert!(occurrences(&v, &[], &phrases).is_empty());
    }

    #[test]
    fn log_softmax_leaves_out_suppressed_tokens() {
        let mut out = Vec::new();
        log_softmax(&[1.0, 1.0, 5.0], &[false, false, true], &[], &mut out);
        assert!((out[0] - 0.5f32.ln()).abs() < 1e-6);
        assert_eq!(out[2], f32::NEG_INFINITY);
        log_softmax(&[1.0, 1.0, 5.0], &[false; 3], &[2], &mut out);
        assert!((out[1] - 0.5f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn edit_distance_counts_changed_added_and_dropped_letters() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(edit_distance(&c("skårekort"), &c("kørekort")), 2);
        assert_eq!(edit_distance(&c("hjemmehælp"), &c("hjemmehjælp")), 1);
        assert_eq!(edit_distance(&c(""), &c("pas")), 3);
        assert_eq!(edit_distance(&c("pas"), &c("pas")), 0);
    }

    #[test]
    fn near_answers_are_whole_words_written_almost_right() {
        let v = vocab(&[
            b" mit",
            b" sk",
            "å".as_bytes(),
            b"rek",
            b"ort",
            b",",
            " pæs".as_bytes(),
            b" hjemme",
            b"h",
            "æ".as_bytes(),
            b"lp",
            " kørekort".as_bytes(),
        ]);
        let phrases = vec![
            vec!["kørekort".to_string()],
            vec!["pas".to_string()],
            vec!["hjemmehjælp".to_string()],
        ];
        let near = near_occurrences(&v, &(0..11).collect::<Vec<_>>(), &phrases, 0.3);
        let spans: Vec<(usize, usize, usize)> = near
            .iter()
            .map(|n| (n.at.candidate, n.at.start, n.at.end))
            .collect();
        assert_eq!(
            spans,
            vec![(2, 7, 11), (0, 1, 5)],
            "\"hjemmehælp\" (1 of 11) before \"skårekort\" (2 of 8); \"pæs\" is too short to match nearly"
        );
        assert!(
            near_occurrences(&v, &[11], &phrases, 0.3).is_empty(),
            "an exact answer is not a near one"
        );
        assert!(
            near_occurrences(&v, &(0..11).collect::<Vec<_>>(), &phrases, 0.1)
                .iter()
                .all(|n| n.at.candidate == 2)
        );
    }
}
