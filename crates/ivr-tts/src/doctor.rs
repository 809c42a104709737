//! Checks of everything text to speech needs on this machine, for `ivr doctor`:
//! each with what was found and, when something is wrong, a one-line fix.

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::registry::hex;
use crate::{espeak, piper, Config, EngineSpec, VoiceRegistry};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`voice piper-en-joe`, `onnxruntime`, ...).
    pub what: String,
    /// What was found (paths, counts).
    pub found: String,
    /// `None` when fine; otherwise the one-line fix.
    pub fix: Option<String>,
}

impl Check {
    fn ok(what: impl Into<String>, found: impl Into<String>) -> Self {
        Check {
            what: what.into(),
            found: found.into(),
            fix: None,
        }
    }
    fn bad(what: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            what: what.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Checks the voice registry, the configured voices, every voice's files against
/// their sha256, onnxruntime (the file, then loading it) and espeak-ng's data.
/// Reads every model file once (about 0.2 s for the shipped voices).
pub fn checks(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let reg = match VoiceRegistry::load_dir(&config.voices_dir) {
        Ok(r) if r.is_empty() => {
            out.push(Check::bad(
                "voice registry",
                format!("no voice manifests in {}", config.voices_dir.display()),
                "run from the repository root or set tts.voices_dir",
            ));
            return out;
        }
        Ok(r) => {
            out.push(Check::ok(
                "voice registry",
                format!("{} voices in {}", r.len(), config.voices_dir.display()),
            ));
            r
        }
        Err(e) => {
            out.push(Check::bad(
                "voice registry",
                e.to_string(),
                "fix the manifest named above",
            ));
            return out;
        }
    };
    for lang in ivr_core::Lang::ALL {
        let Some(id) = config.voice.get(lang) else {
            continue;
        };
        match reg.get(id) {
            Some(_) => out.push(Check::ok(format!("tts.voice.{lang}"), id.to_string())),
            None => out.push(Check::bad(
                format!("tts.voice.{lang}"),
                format!("`{id}` is not in the registry"),
                format!(
                    "use one of: {}",
                    reg.iter()
                        .map(|v| v.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    let mut needs_onnx = false;
    let data = espeak::find_data_dir(config.espeak_data.as_deref());
    for v in reg.iter() {
        let what = format!("voice {}", v.id);
        let mut problems = Vec::new();
        for (path, sha) in &v.files {
            match sha256_file(path) {
                Ok(got) if got == *sha => {}
                Ok(got) => problems.push(format!(
                    "{} has sha256 {got}, manifest says {sha}",
                    path.display()
                )),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        match &v.engine {
            EngineSpec::Piper {
                model, config: cfg, ..
            } => {
                needs_onnx = true;
                for f in [model, cfg] {
                    if !f.is_file() && !v.files.iter().any(|(p, _)| p == f) {
                        problems.push(format!("{} missing", f.display()));
                    }
                }
            }
            EngineSpec::Espeak { voice, .. } => {
                let lang = voice.split(['-', '_']).next().unwrap_or(voice);
                if let Some(d) = &data {
                    if !d.join(format!("{lang}_dict")).is_file() {
                        problems.push(format!(
                            "espeak-ng has no `{lang}` dictionary in {}",
                            d.display()
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            out.push(Check::ok(
                what,
                format!(
                    "{} {} ({} Hz), files verified",
                    v.engine.name(),
                    v.language,
                    v.sample_rate
                ),
            ));
        } else {
            out.push(Check::bad(
                what,
                problems.join("; "),
                "run `make setup` (scripts/setup/20-voices.sh)",
            ));
        }
    }
    match &data {
        Some(d) => out.push(Check::ok("espeak-ng data", d.display().to_string())),
        None => out.push(Check::bad(
            "espeak-ng data",
            "not found",
            "apt-get install espeak-ng-data, or set tts.espeak_data / PIPER_ESPEAKNG_DATA_DIRECTORY",
        )),
    }
    if needs_onnx {
        match piper::ensure_onnxruntime(&config.onnxruntime) {
            Ok(()) => out.push(Check::ok(
                "onnxruntime",
                format!("{} loads", config.onnxruntime.display()),
            )),
            Err(e) => out.push(Check::bad(
                "onnxruntime",
                e,
                "run `make setup` (scripts/setup/20-voices.sh) or set tts.onnxruntime",
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_missing_voice_folder_and_library_are_reported_with_fixes() {
        let c = Config {
            voices_dir: Path::new("/nonexistent/voices").to_path_buf(),
            onnxruntime: Path::new("/nonexistent/libonnxruntime.so").to_path_buf(),
            ..Config::default()
        };
        let r = checks(&c);
        assert_eq!(r.len(), 1);
        assert!(r[0].fix.is_some(), "{r:?}");
    }

    #[test]
    fn a_corrupted_model_is_reported_by_sha256() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("m")).unwrap();
        std::fs::write(dir.path().join("m/v.onnx"), b"not the model").unwrap();
        std::fs::write(dir.path().join("m/v.onnx.json"), b"{}").unwrap();
        std::fs::write(
            dir.path().join("v.toml"),
            "id='piper-x'\nengine='piper'\nlanguage='en'\nsample_rate=22050\nmodel='m/v.onnx'\n\
             [[file]]\npath='m/v.onnx'\nsha256='0000000000000000000000000000000000000000000000000000000000000000'\n",
        )
        .unwrap();
        let mut c = Config {
            voices_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        c.voice.en = "piper-x".into();
        c.voice.da = "piper-x".into();
        let r = checks(&c);
        let v = r.iter().find(|c| c.what == "voice piper-x").unwrap();
        assert!(v.found.contains("manifest says 0000"), "{v:?}");
        assert!(v.fix.as_deref().unwrap().contains("make setup"));
    }
}
