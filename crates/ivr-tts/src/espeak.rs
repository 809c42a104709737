//! espeak-ng in process: Danish (and fallback English) speech, and the IPA
//! phonemes piper voices are fed with.
//!
//! The library is the one piper-rs links (espeak-rs-sys builds espeak-ng from
//! source and links it statically), so there is one espeak-ng in the process.
//! espeak-ng keeps global state (current voice, rate, output callback): every
//! call goes through [`with_espeak`], which holds one process-wide lock. We
//! initialise it ourselves (synchronous output, our data directory) and never
//! call `espeak_rs::text_to_phonemes`, whose own initialisation would switch the
//! output mode.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_short, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use espeak_rs_sys as sys;

use crate::TtsError;

/// The rate espeak-ng synthesises at (fixed by the library: 22,050 Hz).
pub const ESPEAK_RATE: u32 = 22_050;

/// Where Debian and others install the data (`phontab`, `da_dict`, ...).
const DATA_CANDIDATES: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/espeak-ng-data",
    "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
    "/usr/share/espeak-ng-data",
    "/usr/local/share/espeak-ng-data",
];

/// Finds the espeak-ng data directory (the folder holding `phontab`): the configured
/// one, then `PIPER_ESPEAKNG_DATA_DIRECTORY` (the folder *containing*
/// `espeak-ng-data`, as piper uses it), then the usual install places.
pub fn find_data_dir(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(c) = configured {
        return c.join("phontab").is_file().then(|| c.to_path_buf());
    }
    if let Some(env) = std::env::var_os("PIPER_ESPEAKNG_DATA_DIRECTORY") {
        let d = PathBuf::from(env).join("espeak-ng-data");
        if d.join("phontab").is_file() {
            return Some(d);
        }
    }
    DATA_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("phontab").is_file())
}

/// espeak-ng, initialised. Only reachable through [`with_espeak`].
pub(crate) struct Espeak {
    _private: (),
}

struct State {
    /// `None` before the first call; the result of initialisation after it.
    init: Option<Result<PathBuf, i64>>,
}

static STATE: Mutex<State> = Mutex::new(State { init: None });

thread_local! {
    /// Samples of the synthesis running on this thread (the callback has no user pointer
    /// we can rely on; synchronous mode calls it on the caller's thread).
    static SAMPLES: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn on_samples(
    wav: *mut c_short,
    n: c_int,
    _events: *mut sys::espeak_EVENT,
) -> c_int {
    if !wav.is_null() && n > 0 {
        // SAFETY: espeak-ng passes `n` valid samples at `wav` for the duration of the call.
        let s = unsafe { std::slice::from_raw_parts(wav, n as usize) };
        SAMPLES.with(|b| b.borrow_mut().extend_from_slice(s));
    }
    0 // continue synthesis
}

/// Runs `f` with espeak-ng initialised (once per process) from `data_dir`, under the
/// process-wide espeak lock. The first successful data directory wins for the life of
/// the process (espeak-ng cannot hold two).
pub(crate) fn with_espeak<R>(
    data_dir: &Path,
    f: impl FnOnce(&mut Espeak) -> Result<R, TtsError>,
) -> Result<R, TtsError> {
    // A panic inside `f` cannot leave espeak-ng half-initialised: take the lock anyway.
    let mut st = STATE.lock().unwrap_or_else(|p| p.into_inner());
    if st.init.is_none() || matches!(st.init, Some(Err(_))) {
        st.init = Some(init(data_dir));
    }
    match &st.init {
        Some(Ok(_)) => f(&mut Espeak { _private: () }),
        Some(Err(code)) => Err(TtsError::Espeak {
            operation: "initialisation",
            code: *code,
        }),
        None => Err(TtsError::Espeak {
            operation: "initialisation",
            code: -1,
        }),
    }
}

fn init(data_dir: &Path) -> Result<PathBuf, i64> {
    // espeak-ng wants the folder that *contains* `espeak-ng-data`.
    let parent = data_dir.parent().unwrap_or(data_dir);
    let Ok(c) = CString::new(parent.as_os_str().as_encoded_bytes()) else {
        return Err(-1);
    };
    // SAFETY: plain FFI; `c` outlives the call; espeak-ng copies the path.
    let rate = unsafe {
        sys::espeak_Initialize(
            sys::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            c.as_ptr(),
            sys::espeakINITIALIZE_DONT_EXIT as c_int,
        )
    };
    if rate <= 0 {
        return Err(i64::from(rate));
    }
    // SAFETY: registering a plain function pointer.
    unsafe { sys::espeak_SetSynthCallback(Some(on_samples)) };
    Ok(data_dir.to_path_buf())
}

impl Espeak {
    fn set_voice(&mut self, voice: &str) -> Result<(), TtsError> {
        let c = CString::new(voice).map_err(|_| TtsError::NulInText)?;
        // SAFETY: `c` is a valid C string for the duration of the call.
        let r = unsafe { sys::espeak_SetVoiceByName(c.as_ptr()) };
        if r != sys::espeak_ERROR_EE_OK {
            return Err(TtsError::Espeak {
                operation: "voice selection",
                code: i64::from(r),
            });
        }
        Ok(())
    }

    /// Synthesises `text` with espeak-ng voice `voice` at `wpm` words a minute;
    /// returns 22,050 Hz mono samples.
    pub(crate) fn synthesize(
        &mut self,
        voice: &str,
        wpm: u32,
        text: &str,
    ) -> Result<Vec<i16>, TtsError> {
        self.set_voice(voice)?;
        let wpm = c_int::try_from(wpm.clamp(80, 450)).unwrap_or(175);
        // SAFETY: plain FFI setter.
        let r = unsafe { sys::espeak_SetParameter(sys::espeak_PARAMETER_espeakRATE, wpm, 0) };
        if r != sys::espeak_ERROR_EE_OK {
            return Err(TtsError::Espeak {
                operation: "rate",
                code: i64::from(r),
            });
        }
        let c = CString::new(text).map_err(|_| TtsError::NulInText)?;
        SAMPLES.with(|b| b.borrow_mut().clear());
        // SAFETY: `c` is valid for `len + 1` bytes (with its NUL); synchronous mode
        // returns after the last callback.
        let r = unsafe {
            sys::espeak_Synth(
                c.as_ptr().cast::<c_void>(),
                c.as_bytes_with_nul().len(),
                0,
                sys::espeak_POSITION_TYPE_POS_CHARACTER,
                0,
                sys::espeakCHARS_UTF8,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let samples = SAMPLES.with(|b| std::mem::take(&mut *b.borrow_mut()));
        if r != sys::espeak_ERROR_EE_OK {
            return Err(TtsError::Espeak {
                operation: "synthesis",
                code: i64::from(r),
            });
        }
        Ok(samples)
    }

    /// IPA phonemes of `text` in espeak-ng voice `voice`, one string per sentence,
    /// each clause followed by its punctuation (what piper models are trained on:
    /// the punctuation carries pauses and intonation). This espeak-ng build has no
    /// `TextToPhonemesWithTerminator`, so clauses are cut here and phonemised one by one.
    pub(crate) fn phonemize(&mut self, voice: &str, text: &str) -> Result<Vec<String>, TtsError> {
        self.set_voice(voice)?;
        let mut sentences = Vec::new();
        for sentence in crate::sentences::split_sentences(text) {
            let mut out = String::new();
            for (clause, punct) in clauses(sentence) {
                let ph = self.clause_phonemes(clause)?;
                if ph.is_empty() {
                    continue;
                }
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&ph);
                if let Some(p) = punct {
                    out.push(p);
                }
            }
            if !out.is_empty() {
                sentences.push(out);
            }
        }
        Ok(sentences)
    }

    fn clause_phonemes(&mut self, clause: &str) -> Result<String, TtsError> {
        let mode = sys::espeakINITIALIZE_PHONEME_IPA as c_int;
        let c = CString::new(clause).map_err(|_| TtsError::NulInText)?;
        let mut ptr: *const c_void = c.as_ptr().cast();
        let mut parts: Vec<String> = Vec::new();
        // espeak-ng may still cut a long clause; bounded so bad input cannot spin.
        for _ in 0..1_000 {
            if ptr.is_null() {
                break;
            }
            // SAFETY: espeak-ng reads one clause from `ptr`, advances it within `c`
            // (or sets it to null at the end) and returns a string it owns until the
            // next call, which we copy at once.
            let res = unsafe {
                sys::espeak_TextToPhonemes(&mut ptr, sys::espeakCHARS_UTF8 as c_int, mode)
            };
            if res.is_null() {
                break;
            }
            // SAFETY: non-null, NUL-terminated, owned by espeak-ng until the next call.
            let s = unsafe { CStr::from_ptr(res as *const c_char) }
                .to_string_lossy()
                .into_owned();
            let s = strip_language_switches(&s);
            let s = s.trim();
            if !s.is_empty() {
                parts.push(s.to_string());
            }
        }
        Ok(parts.join(" "))
    }
}

/// Cuts a sentence into clauses at `, ; : . ? !` followed by white space or the
/// end (so `10,5` and `10.30` stay whole), keeping each clause's punctuation.
fn clauses(sentence: &str) -> Vec<(&str, Option<char>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = sentence.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if matches!(c, ',' | ';' | ':' | '.' | '?' | '!') {
            let at_break = it.peek().is_none_or(|(_, n)| n.is_whitespace())
                && !(c == '.' && crate::sentences::is_abbreviation(&sentence[start..i]));
            if at_break {
                let text = sentence[start..i].trim();
                if !text.is_empty() {
                    out.push((text, Some(c)));
                }
                start = i + c.len_utf8();
            }
        }
    }
    let rest = sentence[start..].trim();
    if !rest.is_empty() {
        out.push((rest, None));
    }
    out
}

/// espeak-ng marks words it reads in another language with `(en)`...`(da)`; piper
/// models have no phoneme for those markers.
fn strip_language_switches(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> PathBuf {
        find_data_dir(None).expect("espeak-ng data missing: run `make setup` (apt espeak-ng-data)")
    }

    #[test]
    fn language_switch_markers_are_removed() {
        assert_eq!(
            strip_language_switches("(en)hˈɛloʊ(da) dˈɑː"),
            "hˈɛloʊ dˈɑː"
        );
    }

    #[test]
    fn danish_synthesis_gives_audio() {
        let s = with_espeak(&data(), |e| {
            e.synthesize("da", 150, "Goddag, du har ringet til kommunen.")
        })
        .unwrap();
        // About two seconds of speech at 22,050 Hz.
        assert!(s.len() > ESPEAK_RATE as usize, "{} samples", s.len());
        assert!(s.iter().any(|x| x.unsigned_abs() > 3000), "silent");
    }

    #[test]
    fn clauses_keep_punctuation_and_numbers() {
        assert_eq!(
            clauses("Ja, det er 10,5 kr. i alt."),
            [
                ("Ja", Some(',')),
                ("det er 10,5 kr", Some('.')),
                ("i alt", Some('.'))
            ]
        );
        assert_eq!(clauses("kl. 10.30"), [("kl. 10.30", None)]);
    }

    #[test]
    fn phonemes_come_one_string_per_sentence() {
        let p = with_espeak(&data(), |e| {
            e.phonemize("en-us", "Hello there. How are you?")
        })
        .unwrap();
        assert_eq!(p, ["həlˈoʊ ðˈɛɹ.", "hˈaʊ ɑːɹ juː?"]);
    }
}
