//! Which content an engine serves, so several engines behind one load
//! balancer can be checked to serve the same: a version of the flows folder
//! (flows, knowledge, audio prompts: everything under `[flows] dir`) and of
//! the crisis announcements in force (from the shared database).
//!
//! The flows version is a content hash, not a time: engines reading the same
//! shared folder (or copies of it made by a deploy tool) report the same
//! version whatever their clocks and file times say. It is computed at start
//! and after each successful reload, logged, shown on `/version`, in the
//! console's flows page and in `/api/v1/municipalities/{m}/flows`. A reload
//! that fails keeps the previous version (the previous flows keep serving).
//!
//! sha256 over every regular file below the folder, in byte order of the
//! relative path (`/`-separated): the path, its length, the file's length and
//! its bytes; hidden files and folders (a leading `.`: editor swap files,
//! `.git`) are left out. The first 16 hex digits are shown.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Hex digits of a version shown.
const SHOWN: usize = 16;

/// The version of the content of `root` (see the module docs).
///
/// # Errors
/// A file or folder that cannot be read.
pub fn folder_version(root: &Path) -> std::io::Result<String> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            let kind = e.file_type()?;
            // Symbolic links are followed (a deploy tool may link the current release).
            let is_dir = kind.is_dir() || (kind.is_symlink() && p.is_dir());
            if is_dir {
                todo.push(p);
            } else if p.is_file() {
                let rel = p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push((rel, p));
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    h.update(b"ivr-flows-v1");
    for (rel, path) in &files {
        let bytes = std::fs::read(path)?;
        h.update((rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(shown(&h.finalize()))
}

/// [`folder_version`], or `unreadable` (logged) when the folder cannot be read.
pub fn folder_version_or_unreadable(root: &Path) -> String {
    folder_version(root).unwrap_or_else(|e| {
        tracing::warn!(dir = %root.display(), error = %e, "flows folder not readable for its version");
        "unreadable".to_string()
    })
}

/// A version of a list of parts (each part hashed with its length).
pub fn parts_version<'a>(tag: &str, parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut h = Sha256::new();
    h.update(tag.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    shown(&h.finalize())
}

fn shown(digest: &[u8]) -> String {
    let mut s: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    s.truncate(SHOWN);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("temp dir");
        for (rel, text) in files {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("folder");
            std::fs::write(p, text).expect("file");
        }
        d
    }

    #[test]
    fn the_same_content_in_two_places_has_one_version_and_any_change_makes_another() {
        let files = [
            ("tenants.toml", "[[tenant]]"),
            ("nordby/main.toml", "start = \"a\""),
            ("nordby/knowledge/affald.md", "Storskrald hentes ..."),
        ];
        let a = folder(&files);
        let b = folder(&files);
        let va = folder_version(a.path()).expect("readable");
        assert_eq!(va, folder_version(b.path()).expect("readable"));
        assert_eq!(va.len(), SHOWN);
        // An editor's swap file is not content.
        std::fs::write(b.path().join("nordby/.main.toml.swp"), "x").expect("swap");
        assert_eq!(va, folder_version(b.path()).expect("readable"));
        std::fs::write(
            b.path().join("nordby/knowledge/affald.md"),
            "Storskrald: ring",
        )
        .expect("edit");
        assert_ne!(va, folder_version(b.path()).expect("readable"));
        // The same bytes under another name are another version.
        let c = folder(&[
            ("tenants.toml", "[[tenant]]"),
            ("nordby/main2.toml", "start = \"a\""),
            ("nordby/knowledge/affald.md", "Storskrald hentes ..."),
        ]);
        assert_ne!(va, folder_version(c.path()).expect("readable"));
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_version() {
        assert!(folder_version(Path::new("/nonexistent/ivr-flows")).is_err());
        assert_eq!(
            folder_version_or_unreadable(Path::new("/nonexistent/ivr-flows")),
            "unreadable"
        );
    }

    #[test]
    fn parts_are_told_apart_by_their_lengths() {
        let ab_c = parts_version("t", [b"ab".as_slice(), b"c".as_slice()]);
        let a_bc = parts_version("t", [b"a".as_slice(), b"bc".as_slice()]);
        assert_ne!(ab_c, a_bc);
    }
}
