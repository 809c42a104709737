//! Draft flows: an operator edits a copy of a municipality's flow folder,
//! checks it (`ivr check`'s loader), calls it from the browser while phone
//! callers keep the published version, then publishes it (the flows folder
//! changes and the engine reloads, as the hot reload would) or restores
//! the version before the last publish.
//!
//! ```text
//! [console] drafts_dir/<m>/draft/      the draft: a copy of flows/<m>/ with the edits
//! [console] drafts_dir/<m>/previous/   flows/<m>/ as it was before the last publish
//! [console] drafts_dir/<m>/stage/      a whole deployment (flows/ with <m> = the draft),
//!                                      loaded to check the draft and to call it
//! ```
//!
//! Files are TOML (and a flow folder's subfolders, e.g. `knowledge/`); a
//! file name is a relative path of `[A-Za-z0-9_.-]` parts, never `..`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ivr_flow::{FlowStore, Route};
use serde::Serialize;

/// Largest file accepted in a draft.
pub const MAX_FILE: usize = 512 * 1024;
/// Most files in a draft.
pub const MAX_FILES: usize = 64;

/// Why a draft operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DraftError {
    /// No draft of this municipality exists.
    #[error("no draft: create one first")]
    NoDraft,
    /// Nothing was published from the console yet: nothing to restore.
    #[error("no previous version to restore")]
    NoPrevious,
    /// The file name is not a plain relative path (or not `.toml`).
    #[error("file name must be a relative path of letters, digits, '_', '-', '.' ending in .toml")]
    BadName,
    /// The file is too large, or the draft has too many files.
    #[error("a draft file is at most 512 KiB and a draft at most 64 files")]
    TooLarge,
    /// The draft does not load: publishing refused.
    #[error("the draft has errors; fix them before publishing")]
    Invalid(Vec<String>),
    /// Reading or writing the folders failed.
    #[error("draft files: {0}")]
    Io(#[from] std::io::Error),
}

/// A draft file.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DraftFile {
    /// Path inside the municipality's folder (`main.toml`).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// What `ivr check` says of a draft.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckReport {
    /// It loads (no errors).
    pub ok: bool,
    /// Errors, `file:line:col: message`.
    pub errors: Vec<String>,
    /// Warnings, same form.
    pub warnings: Vec<String>,
}

/// The drafts of this engine.
#[derive(Clone)]
pub struct Drafts {
    dir: PathBuf,
    flows_dir: PathBuf,
    flows: Arc<FlowStore>,
}

fn valid_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    name.ends_with(".toml")
        && name.len() <= 200
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
}

/// Copies a folder tree (files and subfolders).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

fn remove(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The `.toml` files under `dir`, by relative name.
fn files(dir: &Path) -> std::io::Result<Vec<DraftFile>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                let name = p
                    .strip_prefix(dir)
                    .map(|r| r.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                out.push(DraftFile {
                    name,
                    text: std::fs::read_to_string(&p)?,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

impl Drafts {
    /// Drafts kept under `dir` for the flows folder `flows_dir`.
    pub fn new(dir: PathBuf, flows_dir: PathBuf, flows: Arc<FlowStore>) -> Self {
        Drafts {
            dir,
            flows_dir,
            flows,
        }
    }

    /// The flows folder drafts are published into.
    pub fn flows_dir(&self) -> &Path {
        &self.flows_dir
    }

    fn draft_dir(&self, m: &str) -> PathBuf {
        self.dir.join(m).join("draft")
    }

    fn previous_dir(&self, m: &str) -> PathBuf {
        self.dir.join(m).join("previous")
    }

    /// Whether `m` has a draft.
    pub fn exists(&self, m: &str) -> bool {
        self.draft_dir(m).is_dir()
    }

    /// Whether a previous version of `m` can be restored.
    pub fn has_previous(&self, m: &str) -> bool {
        self.previous_dir(m).is_dir()
    }

    /// A draft of `m` from its published folder (replacing any draft).
    ///
    /// # Errors
    /// [`DraftError::Io`].
    pub fn create(&self, m: &str) -> Result<(), DraftError> {
        let d = self.draft_dir(m);
        remove(&d)?;
        copy_tree(&self.flows_dir.join(m), &d)?;
        Ok(())
    }

    /// Drops the draft of `m`.
    ///
    /// # Errors
    /// [`DraftError::Io`].
    pub fn discard(&self, m: &str) -> Result<(), DraftError> {
        remove(&self.draft_dir(m))?;
        Ok(())
    }

    /// The draft's files.
    ///
    /// # Errors
    /// [`DraftError::NoDraft`], [`DraftError::Io`].
    pub fn files(&self, m: &str) -> Result<Vec<DraftFile>, DraftError> {
        if !self.exists(m) {
            return Err(DraftError::NoDraft);
        }
        Ok(files(&self.draft_dir(m))?)
    }

    /// Writes one file of the draft (creating the draft from the published
    /// version first if there is none).
    ///
    /// # Errors
    /// [`DraftError::BadName`], [`DraftError::TooLarge`], [`DraftError::Io`].
    pub fn write(&self, m: &str, name: &str, text: &str) -> Result<(), DraftError> {
        if !valid_name(name) {
            return Err(DraftError::BadName);
        }
        if text.len() > MAX_FILE {
            return Err(DraftError::TooLarge);
        }
        if !self.exists(m) {
            self.create(m)?;
        }
        let path = self.draft_dir(m).join(name);
        if !path.exists() && files(&self.draft_dir(m))?.len() >= MAX_FILES {
            return Err(DraftError::TooLarge);
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
        Ok(())
    }

    /// A whole deployment with `m`'s draft in place of its folder.
    fn stage(&self, m: &str) -> Result<PathBuf, DraftError> {
        if !self.exists(m) {
            return Err(DraftError::NoDraft);
        }
        let stage = self.dir.join(m).join("stage");
        remove(&stage)?;
        copy_tree(&self.flows_dir, &stage)?;
        remove(&stage.join(m))?;
        copy_tree(&self.draft_dir(m), &stage.join(m))?;
        Ok(stage)
    }

    /// Loads the draft as `ivr check` does: the report, and the store when
    /// it loads. Without the sentence encoder: embedding every knowledge
    /// entry again (the store caches intent examples' vectors, not
    /// knowledge's) took longer than an HTTP request may on a busy machine,
    /// so a draft call understands callers by their words (intents and
    /// knowledge); the published flows get the encoder at publish.
    fn load(&self, m: &str) -> Result<(CheckReport, Option<FlowStore>), DraftError> {
        let stage = self.stage(m)?;
        let fmt = |d: &ivr_flow::Diagnostic| {
            let file = d
                .file
                .strip_prefix(&stage)
                .unwrap_or(&d.file)
                .display()
                .to_string();
            format!("{file}:{}:{}: {}", d.line, d.col, d.message)
        };
        match FlowStore::load(&stage) {
            Ok((store, diags)) => Ok((
                CheckReport {
                    ok: true,
                    errors: Vec::new(),
                    warnings: diags.iter().map(fmt).collect(),
                },
                Some(store),
            )),
            Err(ivr_flow::StoreError::Invalid(diags)) => Ok((
                CheckReport {
                    ok: false,
                    errors: diags.iter().filter(|d| d.is_error()).map(fmt).collect(),
                    warnings: diags.iter().filter(|d| !d.is_error()).map(fmt).collect(),
                },
                None,
            )),
            Err(e) => Ok((
                CheckReport {
                    ok: false,
                    errors: vec![e.to_string()],
                    warnings: Vec::new(),
                },
                None,
            )),
        }
    }

    /// `ivr check` on the draft.
    ///
    /// # Errors
    /// [`DraftError::NoDraft`], [`DraftError::Io`].
    pub fn check(&self, m: &str) -> Result<CheckReport, DraftError> {
        Ok(self.load(m)?.0)
    }

    /// The draft's route, to call it (the draft's own snapshot: a later
    /// edit does not change a call in progress).
    ///
    /// # Errors
    /// [`DraftError::Invalid`] when it does not load.
    pub fn route(&self, m: &str) -> Result<Route, DraftError> {
        match self.load(m)? {
            (_, Some(store)) => store.municipality(m).ok_or(DraftError::NoDraft),
            (report, None) => Err(DraftError::Invalid(report.errors)),
        }
    }

    /// Publishes the draft: the published folder is kept as the previous
    /// version, the draft becomes `flows/<m>/`, and the engine reloads the
    /// flows now (new calls get it; calls in progress keep theirs).
    ///
    /// # Errors
    /// [`DraftError::Invalid`] (nothing changed), [`DraftError::Io`].
    pub fn publish(&self, m: &str) -> Result<(), DraftError> {
        let (report, _) = self.load(m)?;
        if !report.ok {
            return Err(DraftError::Invalid(report.errors));
        }
        let live = self.flows_dir.join(m);
        let prev = self.previous_dir(m);
        remove(&prev)?;
        copy_tree(&live, &prev)?;
        self.replace(&self.draft_dir(m), &live)?;
        remove(&self.draft_dir(m))?;
        self.reload();
        Ok(())
    }

    /// Restores the version before the last publish (the current one
    /// becomes the previous, so a restore can be undone the same way).
    ///
    /// # Errors
    /// [`DraftError::NoPrevious`], [`DraftError::Io`].
    pub fn restore(&self, m: &str) -> Result<(), DraftError> {
        let prev = self.previous_dir(m);
        if !prev.is_dir() {
            return Err(DraftError::NoPrevious);
        }
        let live = self.flows_dir.join(m);
        let swap = self.dir.join(m).join("swap");
        remove(&swap)?;
        copy_tree(&live, &swap)?;
        self.replace(&prev, &live)?;
        remove(&prev)?;
        std::fs::rename(&swap, &prev)?;
        self.reload();
        Ok(())
    }

    /// Makes `live` hold exactly the files of `from`.
    fn replace(&self, from: &Path, live: &Path) -> std::io::Result<()> {
        // Built beside it, then swapped in: a reload never sees half a folder.
        let tmp = live.with_extension("publishing");
        remove(&tmp)?;
        copy_tree(from, &tmp)?;
        let old = live.with_extension("replaced");
        remove(&old)?;
        std::fs::rename(live, &old)?;
        std::fs::rename(&tmp, live)?;
        remove(&old)
    }

    fn reload(&self) {
        if let Err(e) = self.flows.reload() {
            tracing::warn!(error = %e, "flows do not load after a publish; the old version keeps serving");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_file_names_are_plain_relative_toml_paths() {
        for ok in ["main.toml", "knowledge/pas.toml", "a-b_c.1.toml"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "../main.toml",
            "/etc/x.toml",
            "main.txt",
            "a//b.toml",
            ".hidden.toml",
            "a/../b.toml",
            "sp ace.toml",
            "",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
