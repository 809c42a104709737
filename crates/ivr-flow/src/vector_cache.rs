//! A disk cache of the vectors of flow text (intent examples, keywords, the
//! out-of-scope examples), so that an engine start does not embed every
//! example again.
//!
//! Each vector is stored under the SHA-256 of the encoder's model
//! fingerprint ([`SentenceEncoder::fingerprint`]: the model file's hash),
//! the role and the text, so a new model or a changed example never meets
//! an old vector. Only flow text goes through it: the caching encoder
//! ([`CachingEncoder`]) is used while a store loads and is never the
//! encoder calls embed caller turns with. The file is `0600` in a `0700`
//! folder and written whole (a temporary file renamed over it).
//!
//! File: `intent-vectors.bin` in the configured folder: the magic
//! [`MAGIC`], then entries of a 32-byte key, the dimension (u32, little
//! endian) and that many f32 (little endian). A file that does not read
//! cleanly is ignored (and replaced at the next write); a vector that is
//! not finite and of unit length is dropped.

use std::{
    collections::HashMap,
    fmt,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use sha2::{Digest, Sha256};

use crate::semantic::{EncodeError, Role, SentenceEncoder};

/// The folder the engine's config names by default (`[understanding]
/// cache_dir`), also used by `ivr eval` and `ivr simulate`.
pub const DEFAULT_DIR: &str = "var/intent-cache";
/// First bytes of a cache file.
pub const MAGIC: &[u8; 8] = b"IVRVEC1\n";
/// The file's name in the cache folder.
pub const FILE_NAME: &str = "intent-vectors.bin";
/// At most this many vectors are kept (about 1.5 kB each); beyond it only
/// those used by the last load are written.
pub const MAX_ENTRIES: usize = 50_000;
/// Largest dimension read back (multilingual-e5-small has 384).
const MAX_DIM: usize = 4096;

type Key = [u8; 32];

/// Why the cache could not be written (reading never fails: a bad file is
/// ignored).
#[derive(Debug, thiserror::Error)]
#[error("intent vector cache {path}: {source}")]
pub struct CacheError {
    /// The file or folder.
    pub path: PathBuf,
    /// What failed.
    #[source]
    pub source: std::io::Error,
}

fn key(fingerprint: &str, role: Role, text: &str) -> Key {
    let mut h = Sha256::new();
    h.update(fingerprint.as_bytes());
    h.update([0u8]);
    h.update(match role {
        Role::Query => b"q",
        Role::Passage => b"p",
    });
    h.update([0u8]);
    h.update(text.as_bytes());
    h.finalize().into()
}

fn is_unit(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
        && (v.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() < 1e-3
}

/// Reads a cache file's entries; anything malformed ends the reading (what
/// was read before it is kept).
fn read_entries(bytes: &[u8]) -> HashMap<Key, Arc<[f32]>> {
    let mut out = HashMap::new();
    let Some(mut rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return out;
    };
    while rest.len() >= 36 {
        let (k, r) = rest.split_at(32);
        let (d, r) = r.split_at(4);
        let dim = u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize;
        if dim == 0 || dim > MAX_DIM || r.len() < dim * 4 {
            break;
        }
        let (v, r) = r.split_at(dim * 4);
        let v: Vec<f32> = v
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut kk = [0u8; 32];
        kk.copy_from_slice(k);
        if is_unit(&v) {
            out.insert(kk, v.into());
        }
        rest = r;
    }
    out
}

/// The vectors of one cache folder, and which of them the current load used.
#[derive(Default)]
struct Entries {
    all: HashMap<Key, Arc<[f32]>>,
    used: std::collections::HashSet<Key>,
    added: usize,
}

/// An encoder that answers from the disk cache and embeds (with the inner
/// encoder) only what it does not hold; [`CachingEncoder::save`] writes what
/// was added. For flow text only (see the module docs).
pub struct CachingEncoder {
    inner: Arc<dyn SentenceEncoder>,
    fingerprint: String,
    path: PathBuf,
    entries: Mutex<Entries>,
}

impl fmt::Debug for CachingEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingEncoder")
            .field("path", &self.path)
            .finish()
    }
}

impl CachingEncoder {
    /// A cache in folder `dir` for `inner`; `None` when the encoder has no
    /// [`SentenceEncoder::fingerprint`] (its vectors cannot be keyed).
    pub fn open(inner: Arc<dyn SentenceEncoder>, dir: &Path) -> Option<Self> {
        let fingerprint = inner.fingerprint()?;
        let path = dir.join(FILE_NAME);
        let all = std::fs::read(&path)
            .map(|b| read_entries(&b))
            .unwrap_or_default();
        Some(CachingEncoder {
            inner,
            fingerprint,
            path,
            entries: Mutex::new(Entries {
                all,
                ..Entries::default()
            }),
        })
    }

    /// Vectors embedded now (not found in the cache).
    pub fn added(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.added)
    }

    /// Writes the cache when something was added: a temporary file (0600)
    /// renamed over the old one, in a folder made 0700 when it is new.
    ///
    /// # Errors
    /// [`CacheError`] when the folder or file cannot be written.
    pub fn save(&self) -> Result<(), CacheError> {
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if e.added == 0 {
            return Ok(());
        }
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError { path, source }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err(dir))?;
        }
        let keep: Vec<(&Key, &Arc<[f32]>)> = if e.all.len() > MAX_ENTRIES {
            e.all.iter().filter(|(k, _)| e.used.contains(*k)).collect()
        } else {
            e.all.iter().collect()
        };
        let mut buf = Vec::with_capacity(8 + keep.len() * (36 + 384 * 4));
        buf.extend_from_slice(MAGIC);
        for (k, v) in keep {
            buf.extend_from_slice(k);
            buf.extend_from_slice(&u32::try_from(v.len()).unwrap_or(0).to_le_bytes());
            for x in v.iter() {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
        // Unique per writer: several engines (tests, a cluster on one
        // host) may save the same cache at once; the last rename wins whole.
        static WRITER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .path
            .with_extension(format!("tmp{}-{n}", std::process::id()));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(err(&tmp))?;
            f.write_all(&buf).map_err(err(&tmp))?;
            f.sync_all().map_err(err(&tmp))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(err(&self.path))
    }
}

impl SentenceEncoder for CachingEncoder {
    fn embed(&self, text: &str, role: Role) -> Result<Vec<f32>, EncodeError> {
        let k = key(&self.fingerprint, role, text);
        {
            let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = e.all.get(&k).cloned() {
                if v.len() == self.inner.dim() {
                    e.used.insert(k);
                    return Ok(v.to_vec());
                }
            }
        }
        let v = self.inner.embed(text, role)?;
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.all.insert(k, v.clone().into());
        e.used.insert(k);
        e.added += 1;
        Ok(v)
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn fingerprint(&self) -> Option<String> {
        Some(self.fingerprint.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // reason: tests

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts what it embeds; a deterministic unit vector per text.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize, Option<&'static str>);

    impl SentenceEncoder for Counting {
        fn embed(&self, text: &str, _: Role) -> Result<Vec<f32>, EncodeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let a = (text.len() % 7) as f32 + 1.0;
            let n = (a * a + 1.0).sqrt();
            Ok(vec![a / n, 1.0 / n])
        }
        fn dim(&self) -> usize {
            2
        }
        fn name(&self) -> &str {
            "counting"
        }
        fn fingerprint(&self) -> Option<String> {
            self.1.map(str::to_string)
        }
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ivr-vector-cache-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        d.join("cache")
    }

    #[test]
    fn a_second_start_embeds_nothing_it_already_cached_and_the_file_is_private() {
        let d = dir();
        let inner = Arc::new(Counting(AtomicUsize::new(0), Some("model-a")));
        let c = CachingEncoder::open(inner.clone(), &d).unwrap();
        let v1 = c
            .embed("jeg skal have fornyet mit pas", Role::Query)
            .unwrap();
        c.embed("mit pas er udløbet", Role::Query).unwrap();
        assert_eq!(c.added(), 2);
        c.save().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let file = std::fs::metadata(d.join(FILE_NAME)).unwrap();
        assert_eq!(file.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );

        let again = Arc::new(Counting(AtomicUsize::new(0), Some("model-a")));
        let c2 = CachingEncoder::open(again.clone(), &d).unwrap();
        assert_eq!(
            c2.embed("jeg skal have fornyet mit pas", Role::Query)
                .unwrap(),
            v1
        );
        c2.embed("mit pas er udløbet", Role::Query).unwrap();
        assert_eq!(again.0.load(Ordering::SeqCst), 0);
        assert_eq!(c2.added(), 0);
        std::fs::remove_dir_all(d.parent().unwrap()).ok();
    }

    #[test]
    fn another_model_or_role_does_not_meet_the_cached_vector() {
        let d = dir();
        let c =
            CachingEncoder::open(Arc::new(Counting(AtomicUsize::new(0), Some("a"))), &d).unwrap();
        c.embed("pas", Role::Query).unwrap();
        c.save().unwrap();
        let other = Arc::new(Counting(AtomicUsize::new(0), Some("b")));
        let c2 = CachingEncoder::open(other.clone(), &d).unwrap();
        c2.embed("pas", Role::Query).unwrap();
        c2.embed("pas", Role::Passage).unwrap();
        assert_eq!(other.0.load(Ordering::SeqCst), 2);
        std::fs::remove_dir_all(d.parent().unwrap()).ok();
    }

    #[test]
    fn an_encoder_without_a_fingerprint_is_not_cached_and_a_damaged_file_is_ignored() {
        let d = dir();
        assert!(CachingEncoder::open(Arc::new(Counting::default()), &d).is_none());
        std::fs::create_dir_all(&d).unwrap();
        let mut junk = MAGIC.to_vec();
        junk.extend_from_slice(&[7u8; 40]);
        std::fs::write(d.join(FILE_NAME), junk).unwrap();
        let inner = Arc::new(Counting(AtomicUsize::new(0), Some("a")));
        let c = CachingEncoder::open(inner.clone(), &d).unwrap();
        c.embed("pas", Role::Query).unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        std::fs::remove_dir_all(d.parent().unwrap()).ok();
    }
}
