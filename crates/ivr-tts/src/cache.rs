//! The prompt cache: synthesised audio keyed by text, voice and rate, in memory
//! (bounded, least recently used go first) and on disk (bounded by size, oldest
//! used go first), so static prompts cost nothing after the first call and a
//! restart does not synthesise them again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ivr_core::Pcm;
use sha2::{Digest, Sha256};

use crate::registry::hex;
use crate::TtsError;

/// What identifies one cached prompt: sha256 of the voice (its id and manifest
/// fingerprint), the output rate and the text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key for `text` spoken by a voice at `rate` Hz.
    pub fn new(voice_id: &str, voice_fingerprint: &str, rate: u32, text: &str) -> Self {
        let mut h = Sha256::new();
        for part in [
            // v2: synthesised audio starts at its onset
            // (`audio::trim_leading_silence`); v1 entries are not reused.
            b"ivr-tts-cache-v2".as_slice(),
            voice_id.as_bytes(),
            voice_fingerprint.as_bytes(),
            rate.to_string().as_bytes(),
            text.as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        CacheKey(hex(&h.finalize()))
    }

    /// The key as hex (the disk file's name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hit and miss counts since the cache was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Found in memory.
    pub memory_hits: u64,
    /// Found on disk (and loaded into memory).
    pub disk_hits: u64,
    /// Not found: synthesised.
    pub misses: u64,
}

struct Memory {
    map: HashMap<CacheKey, (Arc<Pcm>, u64)>,
    tick: u64,
}

struct Disk {
    dir: PathBuf,
    max_bytes: u64,
    /// Bytes of `*.wav` in `dir`, as far as this process knows.
    used: Mutex<u64>,
}

/// The cache. Shared between calls (`&self` everywhere).
pub struct PromptCache {
    memory_entries: usize,
    memory: Mutex<Memory>,
    disk: Option<Disk>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for PromptCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptCache")
            .field("memory_entries", &self.memory_entries)
            .field("disk", &self.disk.as_ref().map(|d| &d.dir))
            .field("stats", &self.stats())
            .finish()
    }
}

impl PromptCache {
    /// A cache holding up to `memory_entries` prompts in memory and, when `disk` is
    /// given, up to `max_bytes` of WAV files in that folder (created if missing).
    pub fn new(memory_entries: usize, disk: Option<(&Path, u64)>) -> Result<Self, TtsError> {
        let disk = match disk {
            None => None,
            Some((dir, max_bytes)) => {
                std::fs::create_dir_all(dir).map_err(|source| TtsError::CacheIo {
                    path: dir.to_path_buf(),
                    source,
                })?;
                let used = wav_files(dir).iter().map(|(_, _, len)| len).sum();
                Some(Disk {
                    dir: dir.to_path_buf(),
                    max_bytes,
                    used: Mutex::new(used),
                })
            }
        };
        Ok(PromptCache {
            memory_entries,
            memory: Mutex::new(Memory {
                map: HashMap::new(),
                tick: 0,
            }),
            disk,
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// Looks a prompt up in memory, then on disk. Counts a miss when absent.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<Pcm>> {
        {
            let mut m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            m.tick += 1;
            let tick = m.tick;
            if let Some((pcm, used)) = m.map.get_mut(key) {
                *used = tick;
                self.memory_hits.fetch_add(1, Ordering::Relaxed);
                return Some(pcm.clone());
            }
        }
        if let Some(pcm) = self.disk_get(key) {
            self.disk_hits.fetch_add(1, Ordering::Relaxed);
            let pcm = Arc::new(pcm);
            self.memory_put(key, pcm.clone());
            return Some(pcm);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Stores a prompt in memory and on disk. A disk failure is returned after the
    /// memory copy is stored, so the caller can log it and carry on.
    pub fn put(&self, key: &CacheKey, pcm: Arc<Pcm>) -> Result<(), TtsError> {
        self.memory_put(key, pcm.clone());
        self.disk_put(key, &pcm)
    }

    /// Hit and miss counts.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Prompts held in memory.
    pub fn memory_len(&self) -> usize {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    /// Bytes of WAV files in the disk cache (0 without one).
    pub fn disk_bytes(&self) -> u64 {
        self.disk
            .as_ref()
            .map_or(0, |d| *d.used.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn memory_put(&self, key: &CacheKey, pcm: Arc<Pcm>) {
        if self.memory_entries == 0 {
            return;
        }
        let mut m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        m.tick += 1;
        let tick = m.tick;
        m.map.insert(key.clone(), (pcm, tick));
        // Evict the least recently used. O(n), n is small (hundreds of prompts).
        while m.map.len() > self.memory_entries {
            let Some(oldest) = m
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            m.map.remove(&oldest);
        }
    }

    fn disk_path(d: &Disk, key: &CacheKey) -> PathBuf {
        d.dir.join(format!("{}.wav", key.as_str()))
    }

    fn disk_get(&self, key: &CacheKey) -> Option<Pcm> {
        let d = self.disk.as_ref()?;
        let path = Self::disk_path(d, key);
        let read = || -> Result<Pcm, hound::Error> {
            let mut r = hound::WavReader::open(&path)?;
            let spec = r.spec();
            if spec.channels != 1
                || spec.bits_per_sample != 16
                || spec.sample_format != hound::SampleFormat::Int
            {
                return Err(hound::Error::Unsupported);
            }
            let samples = r.samples::<i16>().collect::<Result<Vec<_>, _>>()?;
            Ok(Pcm::new(spec.sample_rate, samples))
        };
        match read() {
            Ok(p) => {
                // Mark as recently used for the disk eviction order.
                if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                Some(p)
            }
            Err(hound::Error::IoError(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                // A torn or foreign file: drop it, it will be synthesised again.
                tracing::warn!(path = %path.display(), error = %e, "removing unreadable prompt cache file");
                if let Ok(meta) = std::fs::metadata(&path) {
                    let mut used = d.used.lock().unwrap_or_else(|p| p.into_inner());
                    *used = used.saturating_sub(meta.len());
                }
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn disk_put(&self, key: &CacheKey, pcm: &Pcm) -> Result<(), TtsError> {
        let Some(d) = &self.disk else { return Ok(()) };
        let path = Self::disk_path(d, key);
        if path.exists() {
            return Ok(());
        }
        // Write beside and rename: a crash never leaves a half file under the real name.
        let tmp = d
            .dir
            .join(format!(".{}.{}.tmp", key.as_str(), std::process::id()));
        crate::audio::write_wav(&tmp, pcm).map_err(|e| TtsError::CacheIo {
            path: tmp.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let len = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
        std::fs::rename(&tmp, &path).map_err(|source| TtsError::CacheIo {
            path: path.clone(),
            source,
        })?;
        let mut used = d.used.lock().unwrap_or_else(|p| p.into_inner());
        *used += len;
        if *used > d.max_bytes {
            let mut files = wav_files(&d.dir);
            files.sort_by_key(|(_, t, _)| *t);
            let mut total: u64 = files.iter().map(|(_, _, l)| l).sum();
            for (p, _, l) in files {
                if total <= d.max_bytes {
                    break;
                }
                if std::fs::remove_file(&p).is_ok() {
                    total = total.saturating_sub(l);
                }
            }
            *used = total;
        }
        Ok(())
    }
}

/// `(path, last used, bytes)` of the cache's WAV files.
fn wav_files(dir: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "wav"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((
                e.path(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(n: usize) -> Arc<Pcm> {
        Arc::new(Pcm::new(16_000, (0..n).map(|i| (i % 100) as i16).collect()))
    }

    #[test]
    fn key_depends_on_every_part() {
        let k = CacheKey::new("v", "f", 16_000, "hej");
        assert_eq!(k, CacheKey::new("v", "f", 16_000, "hej"));
        assert_ne!(k, CacheKey::new("w", "f", 16_000, "hej"));
        assert_ne!(k, CacheKey::new("v", "g", 16_000, "hej"));
        assert_ne!(k, CacheKey::new("v", "f", 8_000, "hej"));
        assert_ne!(k, CacheKey::new("v", "f", 16_000, "hej."));
        // No ambiguity from concatenation.
        assert_ne!(
            CacheKey::new("ab", "", 1, "c"),
            CacheKey::new("a", "b", 1, "c")
        );
    }

    #[test]
    fn memory_is_bounded_least_recently_used_first() {
        let c = PromptCache::new(2, None).unwrap();
        let (a, b, d) = (
            CacheKey::new("v", "", 1, "a"),
            CacheKey::new("v", "", 1, "b"),
            CacheKey::new("v", "", 1, "d"),
        );
        c.put(&a, pcm(10)).unwrap();
        c.put(&b, pcm(20)).unwrap();
        assert!(c.get(&a).is_some()); // a is now more recent than b
        c.put(&d, pcm(30)).unwrap();
        assert_eq!(c.memory_len(), 2);
        assert!(c.get(&b).is_none(), "b was least recently used");
        assert!(c.get(&a).is_some() && c.get(&d).is_some());
        assert_eq!(
            c.stats(),
            CacheStats {
                memory_hits: 3,
                disk_hits: 0,
                misses: 1
            }
        );
    }

    #[test]
    fn disk_survives_a_new_cache_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = CacheKey::new("v", "", 16_000, "one");
        let k2 = CacheKey::new("v", "", 16_000, "two");
        {
            let c = PromptCache::new(8, Some((dir.path(), 1_000_000))).unwrap();
            c.put(&k1, pcm(1000)).unwrap();
        }
        let c = PromptCache::new(8, Some((dir.path(), 1_000_000))).unwrap();
        assert_eq!(*c.get(&k1).unwrap(), *pcm(1000));
        assert_eq!(
            c.stats(),
            CacheStats {
                memory_hits: 0,
                disk_hits: 1,
                misses: 0
            }
        );
        // Budget 3000 bytes: a second 2000-byte prompt pushes the older-used one out.
        let f1 = dir.path().join(format!("{}.wav", k1.as_str()));
        std::fs::File::options()
            .append(true)
            .open(&f1)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
            .unwrap();
        let small = PromptCache::new(0, Some((dir.path(), 3_000))).unwrap();
        small.put(&k2, pcm(1000)).unwrap();
        assert!(small.disk_bytes() <= 3_000, "{}", small.disk_bytes());
        assert!(!f1.exists());
        assert!(small.get(&k2).is_some());
    }

    #[test]
    fn torn_disk_file_is_a_miss_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let k = CacheKey::new("v", "", 16_000, "x");
        std::fs::write(dir.path().join(format!("{}.wav", k.as_str())), b"RIFF\x00").unwrap();
        let c = PromptCache::new(8, Some((dir.path(), 1_000_000))).unwrap();
        assert!(c.get(&k).is_none());
        assert!(!dir.path().join(format!("{}.wav", k.as_str())).exists());
    }
}
