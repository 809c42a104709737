//! The flow store: every municipality of a deployment folder, behind an
//! `Arc` snapshot. New calls get the newest snapshot; calls in progress keep
//! the `Arc` they started with. A reload that finds an error keeps serving
//! the previous snapshot and returns the diagnostics.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::SystemTime,
};

use ivr_core::Lang;

use crate::{
    diag::Diagnostic,
    interp::{builtin_prompts, Route},
    load::{load, normalize_number, Deployment},
    semantic::{EncodeError, SentenceEncoder},
};

/// Why a load or reload was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The files have errors; the previous version (if any) keeps serving.
    #[error("{} error(s) in flows; first: {}", .0.iter().filter(|d| d.is_error()).count(), .0.first().map(|d| format!("{}:{}:{}: {}", d.file.display(), d.line, d.col, d.message)).unwrap_or_default())]
    Invalid(Vec<Diagnostic>),
    /// The sentence encoder failed on an intent example.
    #[error("embedding intent examples: {0}")]
    Embed(#[from] EncodeError),
}

/// Loaded flows of every municipality, reloadable while calls run.
#[derive(Debug)]
pub struct FlowStore {
    root: PathBuf,
    current: RwLock<(Arc<Deployment>, Option<SystemTime>)>,
    /// Embeds intent examples and knowledge entries at each (re)load;
    /// `None`: words only.
    encoder: Option<Arc<dyn SentenceEncoder>>,
}

/// Gives every municipality's knowledge base the semantic signal: its
/// entries are embedded now, once per load. An entry the encoder cannot
/// embed leaves that knowledge base lexical only (a warning).
fn embed_knowledge(
    d: &mut Deployment,
    encoder: &Arc<dyn SentenceEncoder>,
    diags: &mut Vec<Diagnostic>,
) {
    for m in d.municipalities.values_mut() {
        if m.knowledge.is_empty() {
            continue;
        }
        let mut kb = (*m.knowledge).clone();
        match kb.embed(encoder.clone()) {
            Ok(()) => {
                let mut muni = (**m).clone();
                muni.knowledge = Arc::new(kb);
                *m = Arc::new(muni);
            }
            Err(e) => diags.push(Diagnostic {
                severity: crate::diag::Severity::Warning,
                file: d.root.join(&m.id).join("knowledge"),
                line: 0,
                col: 0,
                message: format!("knowledge is matched by words only: {e}"),
                hint: None,
                source_line: None,
            }),
        }
    }
}

fn newest_mtime(root: &Path) -> Option<SystemTime> {
    let mut newest: Option<SystemTime> = None;
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                newest = Some(newest.map_or(m, |n| n.max(m)));
            }
        }
    }
    newest
}

/// Example vectors by encoder and text, kept for the life of the process:
/// a reload, and every store of the same flows (tests start many engines),
/// embeds only texts it has not seen. Flow text only, never what a caller
/// said; emptied if it ever holds more than [`MAX_CACHED_VECTORS`].
type VectorCache = HashMap<(String, String), Arc<[f32]>>;
static VECTORS: std::sync::OnceLock<Mutex<VectorCache>> = std::sync::OnceLock::new();
/// Bound of the example-vector cache (about 1.5 kB a vector).
const MAX_CACHED_VECTORS: usize = 50_000;

/// Attaches the encoder and example vectors to every municipality.
fn embed(
    encoder: Option<&Arc<dyn SentenceEncoder>>,
    mut d: Deployment,
) -> Result<Deployment, StoreError> {
    let Some(enc) = encoder else {
        return Ok(d);
    };
    let mut all = VECTORS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if all.len() > MAX_CACHED_VECTORS {
        all.clear();
    }
    let name = enc.name().to_string();
    let mut cache: HashMap<String, Arc<[f32]>> = all
        .iter()
        .filter(|((n, _), _)| *n == name)
        .map(|((_, t), v)| (t.clone(), v.clone()))
        .collect();
    for m in d.municipalities.values_mut() {
        crate::intents::embed_examples(Arc::make_mut(m), enc, &mut cache)?;
    }
    for (t, v) in cache {
        all.insert((name.clone(), t), v);
    }
    Ok(d)
}

impl FlowStore {
    /// Loads a deployment folder (`flows/`). Warnings are returned beside
    /// the store. Intents are recognised by their words alone (see
    /// [`FlowStore::load_with`]).
    pub fn load(root: impl Into<PathBuf>) -> Result<(Self, Vec<Diagnostic>), StoreError> {
        Self::load_with(root, None)
    }

    /// [`FlowStore::load`] with a sentence encoder: every intent example and
    /// keyword is embedded once now (and again at a reload only when its text
    /// is new), and calls embed each caller turn with it
    /// ([`crate::intents`]); knowledge entries are embedded at this load and
    /// every reload ([`crate::knowledge`]).
    pub fn load_with(
        root: impl Into<PathBuf>,
        encoder: Option<Arc<dyn SentenceEncoder>>,
    ) -> Result<(Self, Vec<Diagnostic>), StoreError> {
        let root = root.into();
        let stamp = newest_mtime(&root);
        let loaded = load(&root);
        let mut diags = loaded.diagnostics;
        match loaded.deployment {
            Some(d) => {
                let mut d = embed(encoder.as_ref(), d)?;
                if let Some(enc) = &encoder {
                    embed_knowledge(&mut d, enc, &mut diags);
                }
                Ok((
                    Self {
                        root,
                        current: RwLock::new((Arc::new(d), stamp)),
                        encoder,
                    },
                    diags,
                ))
            }
            None => Err(StoreError::Invalid(diags)),
        }
    }

    /// The encoder intents are scored with, if any.
    pub fn encoder(&self) -> Option<&Arc<dyn SentenceEncoder>> {
        self.encoder.as_ref()
    }

    /// Loads the folder again. On success new calls get the new version and
    /// the warnings are returned; on error the old version keeps serving.
    pub fn reload(&self) -> Result<Vec<Diagnostic>, StoreError> {
        let stamp = newest_mtime(&self.root);
        let loaded = load(&self.root);
        let mut diags = loaded.diagnostics;
        match loaded.deployment {
            Some(d) => {
                let mut d = embed(self.encoder.as_ref(), d)?;
                if let Some(enc) = &self.encoder {
                    embed_knowledge(&mut d, enc, &mut diags);
                }
                let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
                *cur = (Arc::new(d), stamp);
                Ok(diags)
            }
            None => Err(StoreError::Invalid(diags)),
        }
    }

    /// True when a file under the folder changed since the last (re)load
    /// (the engine polls this, then calls [`FlowStore::reload`]).
    pub fn changed(&self) -> bool {
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
        newest_mtime(&self.root) != cur.1
    }

    /// The current version.
    pub fn snapshot(&self) -> Arc<Deployment> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Which municipality and entry flow answer a called number. Numbers
    /// match on digits; "70101010" matches a tenant "+4570101010".
    pub fn route(&self, called: &str) -> Option<Route> {
        let snap = self.snapshot();
        let n = normalize_number(called);
        let digits = |s: &str| s.trim_start_matches('+').to_string();
        let t = snap.tenants.iter().find(|t| t.number == n).or_else(|| {
            snap.tenants.iter().find(|t| {
                let (a, b) = (digits(&t.number), digits(&n));
                a.len() >= 8 && b.len() >= 8 && (a.ends_with(&b) || b.ends_with(&a))
            })
        })?;
        let m = snap.municipalities.get(&t.municipality)?.clone();
        Some(Route {
            municipality: m,
            entry: t.entry.clone(),
        })
    }

    /// A municipality by folder name, with its first tenant's entry flow (or `main`).
    pub fn municipality(&self, id: &str) -> Option<Route> {
        let snap = self.snapshot();
        let m = snap.municipalities.get(id)?.clone();
        let entry = snap
            .tenants
            .iter()
            .find(|t| t.municipality == id)
            .map_or("main".to_string(), |t| t.entry.clone());
        Some(Route {
            municipality: m,
            entry,
        })
    }

    /// Every static prompt of every municipality plus the built-in ones,
    /// deduplicated, for TTS pre-rendering.
    pub fn static_prompts(&self) -> Vec<(Lang, String)> {
        let snap = self.snapshot();
        let mut out = builtin_prompts();
        for m in snap.municipalities.values() {
            for p in m.static_prompts() {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }
}
