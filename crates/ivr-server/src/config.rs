//! The `ivr` configuration file (`config/default.toml` and deployments).
//!
//! Parse, don't validate: the file becomes the engine's
//! [`ivr_engine::config::EngineConfig`] at load, unknown keys are errors, and
//! an error names the file, line and column. Each area owns its section
//! (`[stt]` is `ivr_stt::SttConfig`, `[tts]` is `ivr_tts::Config`, ...); every
//! key has a default. Every subcommand that reads `--config` goes through
//! [`Config::load`], so `ivr doctor`, `ivr transcribe` and `ivr serve` accept
//! exactly the same files.

use std::path::{Path, PathBuf};

/// The whole configuration: one type for every subcommand.
pub(crate) type Config = ivr_engine::config::EngineConfig;

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or holds an unknown key or a wrong value.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong and, for unknown keys, the keys that exist.
        message: String,
    },
    /// A secret given by `*_env` / `*_file` cannot be had.
    #[error("{path}: {source}")]
    Secret {
        /// The file.
        path: PathBuf,
        /// Which key and which variable or file.
        source: ivr_engine::secrets::SecretError,
    },
    /// The file parses but a value cannot work (e.g. no SIP listen address).
    #[error("{path}: {source}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What the engine's validation says, with the fix (boxed: the
        /// engine's error is large and config errors are rare).
        source: Box<ivr_engine::config::ConfigError>,
    },
}

/// Reads and validates a config file; errors name file, line and column.
pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses config text; `path` names it in errors.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    // Secrets from `*_env` / `*_file` first; line numbers stay the same.
    let text =
        &ivr_engine::secrets::resolve(text, &|k| std::env::var(k).ok()).map_err(|source| {
            ConfigError::Secret {
                path: path.to_path_buf(),
                source,
            }
        })?;
    let config: Config = toml::from_str(text).map_err(|e: toml::de::Error| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let (line, column) = line_column(text, offset);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    config.validate().map_err(|source| ConfigError::Unusable {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    Ok(config)
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        super::parse(Path::new("ivr.toml"), text)
    }

    #[test]
    fn the_shipped_default_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let c = load(&path).unwrap();
        assert_eq!(
            c.stt.model,
            PathBuf::from("models/whisper-base/ggml-base-q4_0.bin")
        );
    }

    #[test]
    fn an_unknown_key_names_file_line_and_column() {
        let e = parse("# comment\n[stt]\nmodel = \"m.bin\"\n  modle = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("ivr.toml:4:3: unknown field `modle`"), "{e}");
        assert!(e.contains("model"), "lists the known keys: {e}");
    }

    #[test]
    fn an_unknown_section_is_an_error() {
        let e = parse("[sst]\n").unwrap_err().to_string();
        assert!(e.starts_with("ivr.toml:1:2: unknown field `sst`"), "{e}");
    }

    #[test]
    fn a_wrong_value_is_an_error_with_its_position() {
        let e = parse("[stt]\nlanguage = \"th\"\n").unwrap_err().to_string();
        assert!(e.starts_with("ivr.toml:2:12:"), "{e}");
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let e = load(Path::new("/nonexistent/ivr.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/ivr.toml:"), "{e}");
    }

    #[test]
    fn every_section_of_the_shipped_config_is_known() {
        // The shipped file has a section per area ([sip], [tts], [integrations], ...):
        // doctor and transcribe must accept what serve accepts.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let c = load(&path).unwrap();
        assert_eq!(c.tts.voice.da, "espeak-da");
        assert!(!c.sip.udp.is_empty(), "serve needs a SIP address");
    }

    #[test]
    fn a_value_that_cannot_work_is_refused_with_the_file_named() {
        let e = parse("[sip]\nudp = []\ntcp = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("ivr.toml: "), "{e}");
        assert!(e.contains("[sip]"), "{e}");
    }
}
