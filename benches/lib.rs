//! Shared helpers of the benches (writing results as JSON under `target/bench/`).
//!
//! Each bench is declared as a `[[bench]]` (criterion, `harness = false`) or a
//! `[[bin]]` harness in `benches/Cargo.toml`.

pub mod turn_set {
    //! The end-of-turn set (`tests/vectors/turn/`): turns with mid-sentence
    //! pauses in Danish and English through G.711, rendered once into
    //! `target/turn-vectors` by `tests/vectors/turn/generate.py`, for the
    //! `turn_detect` and `turn_answer` harnesses.

    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use ivr_core::{Lang, Pcm};

    /// The workspace root.
    pub fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// One rendered turn.
    pub struct TurnFile {
        /// `<turn id>-<speaker variant>`.
        pub id: String,
        /// The language spoken.
        pub lang: Lang,
        /// The kind of question the turn answers (`turns.toml`).
        pub question: String,
        /// The audio at 8 kHz (as the call hears it).
        pub audio8: Vec<i16>,
        /// The same at 16 kHz.
        pub audio16: Vec<i16>,
        /// Where the speech truly ends (ms from the start).
        pub speech_end_ms: u32,
        /// How many mid-sentence pauses it has.
        pub pauses: usize,
    }

    /// Every rendered turn, sorted by id; renders the set first when it is
    /// missing (exits with a message when that fails). `who` names the
    /// harness in messages.
    pub fn load(who: &str) -> Vec<TurnFile> {
        let dir = root().join("target/turn-vectors");
        if !dir.join("truth.toml").is_file() {
            println!("{who}: rendering the turns (tests/vectors/turn/generate.py, ~2 min)");
            let ok = std::process::Command::new("python3")
                .arg(root().join("tests/vectors/turn/generate.py"))
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!(
                    "{who}: generate.py failed (needs python3, piper-tts 1.8, espeak-ng, sox)"
                );
                std::process::exit(2);
            }
        }
        let read = |p: PathBuf| -> toml::Value {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let turns = read(root().join("tests/vectors/turn/turns.toml"));
        let question: HashMap<String, String> = turns["turn"]
            .as_array()
            .expect("turns.toml: [[turn]]")
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap_or_default().to_string(),
                    t["question"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let truth = read(dir.join("truth.toml"));
        let mut out = Vec::new();
        for (id, t) in truth["file"].as_table().expect("truth.toml: [file]") {
            let wav = dir.join("g711").join(format!("{id}.wav"));
            let mut r =
                hound::WavReader::open(&wav).unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
            let audio8: Vec<i16> = r
                .samples::<i16>()
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
            let audio16 = ivr_core::resample::resample(&Pcm::new(8000, audio8.clone()), 16_000)
                .expect("8 -> 16 kHz")
                .samples;
            let base = id.rsplit_once('-').map_or(id.as_str(), |(b, _)| b);
            out.push(TurnFile {
                id: id.clone(),
                lang: t["lang"]
                    .as_str()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or_else(|| panic!("{id}: lang")),
                question: question
                    .get(base)
                    .unwrap_or_else(|| panic!("{id}: no turn {base} in turns.toml"))
                    .clone(),
                audio8,
                audio16,
                speech_end_ms: t["speech_end_ms"].as_integer().unwrap_or(0) as u32,
                pauses: t["pauses_ms"].as_array().map_or(0, Vec::len),
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}
