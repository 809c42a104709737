//! `ivr doctor`: checks what the engine needs on this machine (the config,
//! the whisper model and its sha256, onnxruntime, the voices of
//! `voices/*.toml`, espeak-ng data) and prints what it found. Exit status 1
//! when anything is wrong, with a one-line fix per problem.
//!
//! Every check looks at files only: onnxruntime is never loaded (ort hangs
//! instead of failing when the library is missing) and voices are read from
//! their manifests without the TTS crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, Config};

/// Arguments of `ivr doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Config file to check.
    #[arg(long, default_value = "config/default.toml")]
    config: PathBuf,
    /// Folder of model manifests (`*.toml`) and fetched models.
    #[arg(long, default_value = "models")]
    models_dir: PathBuf,
    /// Folder of voice manifests (`*.toml`) and fetched voices.
    #[arg(long, default_value = "voices")]
    voices_dir: PathBuf,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    /// What was checked, e.g. `whisper model`.
    what: String,
    /// What was found.
    found: String,
    /// `None` when fine; otherwise the one-line fix.
    fix: Option<String>,
}

impl Check {
    fn ok(what: impl Into<String>, found: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            found: found.into(),
            fix: None,
        }
    }
    fn problem(what: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Runs `ivr doctor`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let checks = run_checks(&args, |k| std::env::var_os(k).map(PathBuf::from));
    let mut problems = 0;
    for c in &checks {
        match &c.fix {
            None => println!("ok    {:<18} {}", c.what, c.found),
            Some(fix) => {
                problems += 1;
                println!("FAIL  {:<18} {}", c.what, c.found);
                println!("      fix: {fix}");
            }
        }
    }
    if problems == 0 {
        println!("all {} checks passed", checks.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{problems} of {} checks failed", checks.len());
        Ok(ExitCode::FAILURE)
    }
}

fn run_checks(args: &Args, env: impl Fn(&str) -> Option<PathBuf>) -> Vec<Check> {
    let mut checks = Vec::new();
    let config = match config::load(&args.config) {
        Ok(c) => {
            checks.push(Check::ok("config", args.config.display().to_string()));
            c
        }
        Err(e) => {
            checks.push(Check::problem(
                "config",
                e.to_string(),
                "correct the key at that position (see config/default.toml for every key)",
            ));
            Config::default()
        }
    };
    checks.push(check_whisper_model(&config.stt.model, &args.models_dir));
    checks.push(check_embedding_model(
        &config.understanding.model,
        &args.models_dir,
        config.understanding.required,
    ));
    checks.push(check_onnxruntime(
        env("ORT_DYLIB_PATH"),
        &config.tts.onnxruntime,
    ));
    checks.extend(check_turn_models(&config.turn));
    let espeak = espeak_data_dir(env("PIPER_ESPEAKNG_DATA_DIRECTORY"));
    checks.push(match &espeak {
        Some(d) => Check::ok("espeak-ng data", d.display().to_string()),
        None => Check::problem(
            "espeak-ng data",
            "no espeak-ng-data folder with `phontab` found",
            "apt-get install espeak-ng-data (or set PIPER_ESPEAKNG_DATA_DIRECTORY)",
        ),
    });
    checks.extend(check_voices(&args.voices_dir, espeak.as_deref()));
    if let Some(tls) = config.sip.tls.settings() {
        checks.push(check_tls(&tls));
    }
    checks.extend(check_personal_data(&config));
    checks
}

/// The TLS certificate, key and roots load as `ivr serve` would load them
/// (names files, never prints their contents).
fn check_tls(s: &ivr_engine::sip::TlsSettings) -> Check {
    match ivr_engine::sip::Tls::load(s) {
        Ok(_) => Check::ok("SIP TLS", s.cert_file.display().to_string()),
        Err(e) => Check::problem(
            "SIP TLS",
            e.to_string(),
            "point [sip.tls] cert_file/key_file/ca_file at PEM files (chain leaf first, the key that matches it)",
        ),
    }
}

/// The oldest row of personal data per kind, against its retention period
/// (a row older than that means the retention task has not run: the engine
/// was stopped, or its passes fail). Connects as the engine would (which
/// applies pending migrations), then only reads. The database URL is never
/// printed (it may hold a password).
fn check_personal_data(config: &Config) -> Vec<Check> {
    let url = &config.integrations.database_url;
    if let Some(file) = url.strip_prefix("sqlite:") {
        let file = file.split('?').next().unwrap_or(file);
        if file.contains(":memory:") || !Path::new(file).exists() {
            return vec![Check::ok("personal data", "no database file yet")];
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return vec![Check::problem("personal data", e.to_string(), "rerun")],
    };
    let found = rt.block_on(async {
        let db = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            ivr_integrations::db::Db::connect(url),
        )
        .await
        .map_err(|_| "the database did not answer within 5 s".to_string())?
        .map_err(|e| e.to_string())?;
        let mut oldest = db.oldest_personal().await.map_err(|e| e.to_string())?;
        let records = ivr_engine::records::Records::open(db.clone())
            .await
            .map_err(|e| e.to_string())?;
        oldest.push((
            "call_records",
            records.oldest().await.map_err(|e| e.to_string())?,
        ));
        db.close().await;
        Ok::<_, String>(oldest)
    });
    let oldest = match found {
        Ok(o) => o,
        Err(e) => {
            return vec![Check::problem(
                "personal data",
                format!("cannot read the database: {e}"),
                "check [integrations] database_url (or database_url_env / database_url_file)",
            )]
        }
    };
    let now = chrono::Utc::now();
    let days = |kind: &str| match kind {
        "call_records" => config.records.retention_days,
        _ => config.integrations.retention_days,
    };
    oldest
        .into_iter()
        .map(|(kind, at)| {
            let what = format!("oldest {kind}");
            match at {
                None => Check::ok(what, "none stored"),
                Some(t) => {
                    let age = (now - t).num_days();
                    let keep = days(kind);
                    let found = format!("{} ({age} days old; kept {keep} days)", t.format("%Y-%m-%d"));
                    // Callbacks still waiting and failed mails are kept until
                    // handled: older than the period is only a warning sign
                    // for rows the task deletes.
                    if keep > 0 && age > i64::from(keep) + 1 && kind == "call_records" {
                        Check::problem(
                            what,
                            found,
                            "run `ivr serve` (its retention task purges hourly) or check its log for failed retention passes",
                        )
                    } else {
                        Check::ok(what, found)
                    }
                }
            }
        })
        .collect()
}

/// The model file exists, is a ggml file, and matches its manifest when one pins it.
fn check_whisper_model(model: &Path, models_dir: &Path) -> Check {
    const WHAT: &str = "whisper model";
    let setup_fix =
        "run `make setup` (prepares Whisper base), or set [stt] model to a whisper.cpp ggml file";
    let magic = std::fs::File::open(model).and_then(|mut f| {
        let mut b = [0u8; 4];
        std::io::Read::read_exact(&mut f, &mut b).map(|_| b)
    });
    match magic {
        Err(_) => return Check::problem(WHAT, format!("{} missing", model.display()), setup_fix),
        Ok(b) if u32::from_le_bytes(b) != ivr_models::ggml::MAGIC => {
            return Check::problem(
                WHAT,
                format!("{} is not a whisper.cpp ggml file", model.display()),
                setup_fix,
            )
        }
        Ok(_) => {}
    }
    let Some((manifest_path, key, entry)) = pinning_manifest(model, models_dir) else {
        return Check::ok(
            WHAT,
            format!(
                "{} (ggml; not pinned by a manifest in {}: operator's model)",
                model.display(),
                models_dir.display()
            ),
        );
    };
    match ivr_models::manifest::verify(model, &entry) {
        Ok(()) => Check::ok(
            WHAT,
            format!(
                "{} ({} bytes, sha256 {}... matches {} [files.{key}])",
                model.display(),
                entry.size,
                &entry.sha256[..12],
                manifest_path.display()
            ),
        ),
        Err(e) => Check::problem(
            WHAT,
            e.to_string(),
            format!("delete {} and run `make setup`", model.display()),
        ),
    }
}

/// The manifest in `models_dir` whose `[files.*]` entry is `model`.
fn pinning_manifest(
    model: &Path,
    models_dir: &Path,
) -> Option<(PathBuf, String, ivr_models::manifest::FileEntry)> {
    let want = model.canonicalize().ok()?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(models_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        // Other manifests (voices, onnxruntime) have other shapes: skip what does not parse.
        let Ok(m) = ivr_models::manifest::Manifest::read(&path) else {
            continue;
        };
        for (key, f) in &m.files {
            if models_dir.join(&f.path).canonicalize().ok().as_ref() == Some(&want) {
                return Some((path, key.clone(), f.clone()));
            }
        }
    }
    None
}

/// The end-of-turn models `[turn]` asks for (files only; the engine runs
/// without them, with the energy VAD and the plain end silence).
fn check_turn_models(turn: &ivr_engine::config::TurnConfig) -> Vec<Check> {
    let fix = "run `make setup` (scripts/setup/50-turn-models.sh), or turn it off in [turn]";
    let mut v = Vec::new();
    let mut file = |what: &'static str, on: bool, p: &Path| {
        if !on {
            v.push(Check::ok(what, "off in [turn]".to_string()));
        } else if p.is_file() {
            v.push(Check::ok(what, p.display().to_string()));
        } else {
            v.push(Check::problem(
                what,
                format!("{} missing", p.display()),
                fix,
            ));
        }
    };
    file(
        "silero VAD",
        turn.vad == ivr_engine::config::VadKind::Silero,
        &turn.silero_model,
    );
    file("smart turn", turn.smart_turn, &turn.smart_turn_model);
    v
}

/// The sentence-embedding model of `[understanding]`: present, a complete
/// e5 file, pinned by `models/e5-small.toml` (sha256), and the engine
/// compiled into this build. Without it the engine still runs (intents by
/// their words alone) unless `required`; either way it is reported.
fn check_embedding_model(model: &Path, models_dir: &Path, required: bool) -> Check {
    let what = "intent model";
    let degraded = if required {
        "the engine refuses to start without it ([understanding] required = true)"
    } else {
        "until then the engine recognises intents by their words alone"
    };
    let info = match ivr_embed::check_model_file(model) {
        Ok(i) => i,
        Err(e) => {
            return Check::problem(
                what,
                e.to_string(),
                format!("run `make setup` (scripts/setup/15-embeddings.sh); {degraded}"),
            )
        }
    };
    if !ivr_embed::engine_built() {
        return Check::problem(
            what,
            format!(
                "{} present, but this `ivr` was built without the e5 engine",
                model.display()
            ),
            format!("rebuild (cargo build) now that `make setup` has fetched models/e5-small/src; {degraded}"),
        );
    }
    // The manifest pins the file by its path relative to models/.
    let manifest = models_dir.join("e5-small.toml");
    let pinned = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("file").and_then(|f| f.as_array()).cloned())
        .and_then(|files| {
            files.iter().find_map(|f| {
                let p = f.get("path")?.as_str()?;
                let sha = f.get("sha256")?.as_str()?;
                (models_dir.join(p) == model).then(|| sha.to_string())
            })
        });
    match pinned {
        Some(sha) => match ivr_models::manifest::sha256_file(model) {
            Ok((got, _)) if got.eq_ignore_ascii_case(&sha) => Check::ok(
                what,
                format!(
                    "{} (multilingual-e5-small q4, {} dimensions, sha256-verified)",
                    model.display(),
                    info.dim
                ),
            ),
            Ok((got, _)) => Check::problem(
                what,
                format!(
                    "{} has sha256 {got}, {} pins {sha}",
                    model.display(),
                    manifest.display()
                ),
                format!("delete {} and run `make setup`", model.display()),
            ),
            Err(e) => Check::problem(what, e.to_string(), "run `make setup`"),
        },
        None => Check::ok(
            what,
            format!(
                "{} ({} dimensions; not pinned by {}: operator's model)",
                model.display(),
                info.dim,
                manifest.display()
            ),
        ),
    }
}

/// The onnxruntime shared library piper needs, checked as a file (ELF), never loaded.
/// `configured` is `[tts] onnxruntime`; `ORT_DYLIB_PATH` wins over it, as in ort itself.
fn check_onnxruntime(env_path: Option<PathBuf>, configured: &Path) -> Check {
    const WHAT: &str = "onnxruntime";
    let (path, origin) = match env_path {
        Some(p) => (p, "ORT_DYLIB_PATH"),
        None => (configured.to_path_buf(), "[tts] onnxruntime"),
    };
    let head = std::fs::File::open(&path).and_then(|mut f| {
        let mut b = [0u8; 4];
        std::io::Read::read_exact(&mut f, &mut b).map(|_| b)
    });
    match head {
        Ok(b) if &b == b"\x7fELF" => Check::ok(WHAT, format!("{} ({origin}; not loaded by doctor)", path.display())),
        Ok(_) => Check::problem(WHAT, format!("{} is not a shared library", path.display()), "run `make setup` to fetch libonnxruntime.so again"),
        Err(_) => Check::problem(
            WHAT,
            format!("{} missing ({origin})", path.display()),
            "run `make setup` (fetches libonnxruntime.so), or set ORT_DYLIB_PATH to an existing libonnxruntime.so",
        ),
    }
}

/// espeak-ng's data folder: the env override (the folder or its parent), else the Debian locations.
fn espeak_data_dir(env_dir: Option<PathBuf>) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(d) = env_dir {
        candidates.push(d.join("espeak-ng-data"));
        candidates.push(d);
    }
    for d in [
        "/usr/lib/x86_64-linux-gnu/espeak-ng-data",
        "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
        "/usr/share/espeak-ng-data",
    ] {
        candidates.push(PathBuf::from(d));
    }
    candidates.into_iter().find(|d| d.join("phontab").is_file())
}

/// Every voice manifest: piper voices need their files (sha256-checked when
/// listed under `[[file]]`); espeak voices need their language dictionary.
fn check_voices(voices_dir: &Path, espeak: Option<&Path>) -> Vec<Check> {
    let mut manifests: Vec<PathBuf> = match std::fs::read_dir(voices_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(_) => {
            return vec![Check::problem(
                "voices",
                format!("{} missing", voices_dir.display()),
                "run from the repository root, or pass --voices-dir",
            )]
        }
    };
    manifests.sort();
    if manifests.is_empty() {
        return vec![Check::problem(
            "voices",
            format!("no *.toml in {}", voices_dir.display()),
            "restore voices/*.toml from git",
        )];
    }
    manifests
        .iter()
        .map(|m| check_voice(m, voices_dir, espeak))
        .collect()
}

fn check_voice(manifest: &Path, voices_dir: &Path, espeak: Option<&Path>) -> Check {
    let name = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let what = format!("voice {name}");
    let table: toml::Table = match std::fs::read_to_string(manifest)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            t.parse()
                .map_err(|e: toml::de::Error| e.message().to_string())
        }) {
        Ok(t) => t,
        Err(e) => {
            return Check::problem(
                what,
                format!("{}: {e}", manifest.display()),
                "correct the voice manifest",
            )
        }
    };
    let s = |k: &str| table.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let (id, engine, lang) = (s("id"), s("engine"), s("language"));
    match engine {
        "piper" => {
            let mut missing = Vec::new();
            for key in ["model", "config"] {
                let p = voices_dir.join(s(key));
                if s(key).is_empty() || !p.is_file() {
                    missing.push(p.display().to_string());
                }
            }
            if !missing.is_empty() {
                return Check::problem(
                    what,
                    format!("piper {id} ({lang}): {} missing", missing.join(", ")),
                    "run `make setup` (fetches the piper voices)",
                );
            }
            let files = table
                .get("file")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default();
            for f in &files {
                let (Some(path), Some(sha)) = (
                    f.get("path").and_then(|v| v.as_str()),
                    f.get("sha256").and_then(|v| v.as_str()),
                ) else {
                    continue;
                };
                let p = voices_dir.join(path);
                match ivr_models::manifest::sha256_file(&p) {
                    Ok((got, _)) if got.eq_ignore_ascii_case(sha) => {}
                    Ok((got, _)) => {
                        return Check::problem(
                            what,
                            format!(
                                "{} has sha256 {got}, {} pins {sha}",
                                p.display(),
                                manifest.display()
                            ),
                            format!("delete {} and run `make setup`", p.display()),
                        )
                    }
                    Err(_) => {
                        return Check::problem(
                            what,
                            format!("{} missing", p.display()),
                            "run `make setup` (fetches the piper voices)",
                        )
                    }
                }
            }
            Check::ok(
                what,
                format!("piper {id} ({lang}), {} files sha256-verified", files.len()),
            )
        }
        "espeak" => match espeak {
            Some(d) if d.join(format!("{lang}_dict")).is_file() => Check::ok(
                what,
                format!("espeak-ng {id} ({lang}), {}_dict present", lang),
            ),
            Some(d) => Check::problem(
                what,
                format!("espeak-ng has no {lang}_dict in {}", d.display()),
                "apt-get install --reinstall espeak-ng-data",
            ),
            None => Check::problem(
                what,
                format!("espeak-ng {id} ({lang}): no espeak-ng data"),
                "apt-get install espeak-ng-data",
            ),
        },
        other => Check::problem(
            what,
            format!("{}: unknown engine `{other}`", manifest.display()),
            "use engine = \"piper\" or \"espeak\"",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(PathBuf);
    impl Tmp {
        fn new(name: &str) -> Self {
            let d = std::env::temp_dir().join(format!("ivr-doctor-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Tmp(d)
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_fresh_machine_is_told_to_run_make_setup() {
        let t = Tmp::new("fresh");
        let c = check_whisper_model(
            &t.0.join("models/whisper-base/ggml-base-q8_0.bin"),
            &t.0.join("models"),
        );
        assert!(c.fix.as_deref().unwrap().contains("make setup"), "{c:?}");
        let c = check_onnxruntime(None, &t.0.join("models/onnxruntime/libonnxruntime.so"));
        assert!(c.found.contains("libonnxruntime.so missing"), "{c:?}");
        assert!(c.fix.as_deref().unwrap().contains("make setup"));
    }

    #[test]
    fn a_model_that_differs_from_its_manifest_is_a_problem() {
        let t = Tmp::new("sha");
        let models = t.0.join("models");
        std::fs::create_dir_all(models.join("w")).unwrap();
        let mut bytes = ivr_models::ggml::MAGIC.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"rest");
        std::fs::write(models.join("w/m.bin"), &bytes).unwrap();
        let manifest = "name='w'\ndescription=''\nlicence='MIT'\nlanguages=['da']\nsample_rate=16000\n[files.q8_0]\npath='w/m.bin'\nsize=8\nsha256='0000000000000000000000000000000000000000000000000000000000000000'\n";
        std::fs::write(models.join("w.toml"), manifest).unwrap();
        let c = check_whisper_model(&models.join("w/m.bin"), &models);
        assert!(c.found.contains("sha256"), "{c:?}");
        assert!(c.fix.as_deref().unwrap().contains("make setup"));
        // An operator's model outside any manifest is fine if it is ggml.
        std::fs::write(t.0.join("hviske.bin"), &bytes).unwrap();
        let c = check_whisper_model(&t.0.join("hviske.bin"), &models);
        assert_eq!(c.fix, None, "{c:?}");
        std::fs::write(t.0.join("not-ggml.bin"), b"GGUF....").unwrap();
        assert!(check_whisper_model(&t.0.join("not-ggml.bin"), &models)
            .fix
            .is_some());
    }

    #[test]
    fn onnxruntime_is_checked_as_a_file_and_never_loaded() {
        let t = Tmp::new("ort");
        let fake = t.0.join("libonnxruntime.so");
        std::fs::write(&fake, b"\x7fELF not really").unwrap();
        let c = check_onnxruntime(Some(fake.clone()), &t.0);
        assert_eq!(
            c.fix, None,
            "an ELF file passes without being loaded: {c:?}"
        );
        std::fs::write(&fake, b"text").unwrap();
        assert!(check_onnxruntime(Some(fake), &t.0).fix.is_some());
    }

    #[test]
    fn piper_voice_files_are_checked_from_the_manifest() {
        let t = Tmp::new("voices");
        let v = t.0.join("voices");
        std::fs::create_dir_all(v.join("joe")).unwrap();
        std::fs::write(
            v.join("joe-en.toml"),
            "id='piper-en-joe'\nengine='piper'\nlanguage='en'\nmodel='joe/m.onnx'\nconfig='joe/m.onnx.json'\n[[file]]\npath='joe/m.onnx'\nsha256='ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'\n",
        )
        .unwrap();
        let checks = check_voices(&v, None);
        assert!(
            checks[0].fix.as_deref().unwrap().contains("make setup"),
            "{checks:?}"
        );
        std::fs::write(v.join("joe/m.onnx"), b"abc").unwrap();
        std::fs::write(v.join("joe/m.onnx.json"), b"{}").unwrap();
        assert_eq!(check_voices(&v, None)[0].fix, None);
        std::fs::write(v.join("joe/m.onnx"), b"abd").unwrap();
        assert!(check_voices(&v, None)[0].found.contains("sha256"));
    }

    #[test]
    fn a_config_error_is_reported_with_its_position() {
        let t = Tmp::new("config");
        let cfg = t.0.join("ivr.toml");
        std::fs::write(&cfg, "[stt]\nworkers = \"many\"\n").unwrap();
        let args = Args {
            config: cfg,
            models_dir: t.0.join("models"),
            voices_dir: t.0.join("voices"),
        };
        let checks = run_checks(&args, |_| None);
        assert!(checks[0].found.contains("ivr.toml:2:11"), "{:?}", checks[0]);
        assert!(
            checks.iter().filter(|c| c.fix.is_some()).count() >= 3,
            "config, model, onnxruntime, voices"
        );
    }

    #[test]
    fn the_oldest_call_record_is_reported_and_no_secret_reaches_the_output() {
        let t = Tmp::new("personal");
        let db = t.0.join("ivr.db");
        let url = format!("sqlite:{}", db.display());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let old = chrono::Utc::now() - chrono::Duration::days(200);
        rt.block_on(async {
            let d = ivr_integrations::db::Db::connect(&url).await.unwrap();
            let r = ivr_engine::records::Records::open(d.clone()).await.unwrap();
            r.insert(&ivr_engine::records::CallRecordRow {
                call_ref: "c1".into(),
                municipality: "nordby".into(),
                called: ivr_core::Pii::new("+4570101010".into()),
                calling: ivr_core::Pii::new("+4522334455".into()),
                started_at: old,
                ended_at: old,
                talk_ms: 1,
                steps: vec![],
                intents: vec![],
                outcome: "abandoned".into(),
                transferred_to: None,
                lang: "da".into(),
                turns: 0,
                transcript: None,
                questions: vec![],
                turn_log: vec![],
                origin: ivr_engine::records::CallOrigin::Phone,
            })
            .await
            .unwrap();
            d.close().await;
        });
        let pw = t.0.join("trunk.pw");
        std::fs::write(&pw, "Tr0mbone-Secret\n").unwrap();
        let cfg = t.0.join("ivr.toml");
        std::fs::write(
            &cfg,
            format!(
                "[integrations]\ndatabase_url = \"{url}\"\n\
                 [[trunk]]\nname = \"sbc\"\nsources = [\"10.0.0.1\"]\nusername = \"u\"\npassword_file = \"{}\"\n",
                pw.display()
            ),
        )
        .unwrap();
        let args = Args {
            config: cfg,
            models_dir: t.0.join("models"),
            voices_dir: t.0.join("voices"),
        };
        let checks = run_checks(&args, |_| None);
        let calls = checks
            .iter()
            .find(|c| c.what == "oldest call_records")
            .expect("the oldest call record is reported");
        assert!(calls.found.contains("200 days old"), "{calls:?}");
        assert!(calls.fix.is_some(), "a row past its retention is a problem");
        let shown = format!("{checks:?}");
        assert!(!shown.contains("Tr0mbone"), "{shown}");
        assert!(!shown.contains("+4522334455"), "{shown}");
    }
}
