//! The `ivr` configuration file (`config/default.toml` and deployments).
//!
//! Parse, don't validate: the file becomes a [`Config`] at load, unknown keys
//! are errors, and an error names the file, line and column. Each area owns
//! its section (`[stt]` is `ivr_stt::SttConfig`); every key has a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// `[stt]`: speech to text (model path, workers, queue, default language).
    pub(crate) stt: ivr_stt::SttConfig,
}

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
}

impl Config {
    /// Reads and validates a config file.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses config text; `path` names it in errors.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let (line, column) = line_column(text, offset);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })
    }
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
        Config::parse(Path::new("ivr.toml"), text)
    }

    #[test]
    fn the_shipped_default_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.stt.model,
            PathBuf::from("models/whisper-base/ggml-base-q8_0.bin")
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
        let e = Config::load(Path::new("/nonexistent/ivr.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/ivr.toml:"), "{e}");
    }
}
