//! whisper.cpp ggml model files: writer, reader and the q8_0 quantiser.
//!
//! Layout (all integers `i32` little endian), as whisper.cpp `whisper.cpp`
//! `whisper_model_load` reads it:
//! 1. magic `0x67676d6c` ("ggml");
//! 2. hyper-parameters: n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
//!    n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer,
//!    n_mels, ftype (1 = mostly f16; quantised files `type + 1000 * 2`, the
//!    ggml quantisation version 2);
//! 3. mel filters: n_mel, n_fft, then n_mel x n_fft f32;
//! 4. vocabulary: token count, then per token its byte length and bytes;
//! 5. tensors until the end: n_dims, name length, ggml type (0 f32, 1 f16,
//!    8 q8_0), the dimensions innermost first, the name, the data.
//!
//! q8_0 (ggml `quantize_row_q8_0_ref`): blocks of 32 values, each an f16
//! scale `d = max|x| / 127` and 32 `i8` values `round(x / d)`.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use half::f16;

use crate::ModelError;

/// File magic, "ggml".
pub const MAGIC: u32 = 0x6767_6d6c;
/// ggml type id of f32.
pub const TYPE_F32: i32 = 0;
/// ggml type id of f16.
pub const TYPE_F16: i32 = 1;
/// ggml type id of q4_0.
pub const TYPE_Q4_0: i32 = 2;
/// ggml type id of q8_0.
pub const TYPE_Q8_0: i32 = 8;
/// Model file type "mostly q8_0" (ggml `GGML_FTYPE_MOSTLY_Q8_0`).
pub const FTYPE_MOSTLY_Q8_0: i32 = 7;
/// Model file type "mostly q4_0" (ggml `GGML_FTYPE_MOSTLY_Q4_0`).
pub const FTYPE_MOSTLY_Q4_0: i32 = 2;
/// ggml quantisation version written into quantised headers.
pub const QNT_VERSION: i32 = 2;
/// Multiplier of the quantisation version in the header's ftype field.
pub const QNT_VERSION_FACTOR: i32 = 1000;
/// Values per q8_0 block.
pub const QK8_0: usize = 32;
/// Bytes per q8_0 block (f16 scale + 32 i8).
pub const Q8_0_BLOCK_BYTES: usize = 2 + QK8_0;
/// Bytes per q4_0 block (f16 scale + 32 nibbles).
pub const Q4_0_BLOCK_BYTES: usize = 2 + QK8_0 / 2;

/// Hyper-parameters of a whisper model, in header order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hparams {
    /// Vocabulary size (51865 multilingual).
    pub n_vocab: i32,
    /// Encoder positions (1500 for 30 s).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions (448).
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands (80, or 128 for large-v3).
    pub n_mels: i32,
    /// File type (1 f16; quantised: type + 2000).
    pub ftype: i32,
}

impl Hparams {
    fn fields(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }
}

/// The mel filter bank.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilters {
    /// Mel bands.
    pub n_mel: i32,
    /// FFT bins (201).
    pub n_fft: i32,
    /// `n_mel * n_fft` values, row-major.
    pub data: Vec<f32>,
}

/// Tensor data in one of the ggml types this crate writes.
#[derive(Clone, PartialEq)]
pub enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// Half floats.
    F16(Vec<f16>),
    /// q8_0 blocks, already encoded.
    Q8_0(Vec<u8>),
    /// q4_0 blocks, already encoded.
    Q4_0(Vec<u8>),
}

impl TensorData {
    /// ggml type id.
    pub fn type_id(&self) -> i32 {
        match self {
            TensorData::F32(_) => TYPE_F32,
            TensorData::F16(_) => TYPE_F16,
            TensorData::Q8_0(_) => TYPE_Q8_0,
            TensorData::Q4_0(_) => TYPE_Q4_0,
        }
    }
}

/// One named tensor.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    /// whisper.cpp name, e.g. `encoder.blocks.0.attn.query.weight`.
    pub name: String,
    /// Dimensions outermost first (NumPy order); the file stores them reversed.
    pub shape: Vec<usize>,
    /// The values.
    pub data: TensorData,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor({}, {:?}, type {})",
            self.name,
            self.shape,
            self.data.type_id()
        )
    }
}

/// Writes the header, mel filters and vocabulary.
pub fn write_preamble(
    out: &mut impl Write,
    hp: &Hparams,
    mel: &MelFilters,
    vocab: &[Vec<u8>],
) -> std::io::Result<()> {
    out.write_all(&MAGIC.to_le_bytes())?;
    for v in hp.fields() {
        out.write_all(&v.to_le_bytes())?;
    }
    out.write_all(&mel.n_mel.to_le_bytes())?;
    out.write_all(&mel.n_fft.to_le_bytes())?;
    for v in &mel.data {
        out.write_all(&v.to_le_bytes())?;
    }
    out.write_all(&(vocab.len() as i32).to_le_bytes())?;
    for t in vocab {
        out.write_all(&(t.len() as i32).to_le_bytes())?;
        out.write_all(t)?;
    }
    Ok(())
}

/// Writes one tensor record.
pub fn write_tensor(out: &mut impl Write, t: &Tensor) -> std::io::Result<()> {
    out.write_all(&(t.shape.len() as i32).to_le_bytes())?;
    out.write_all(&(t.name.len() as i32).to_le_bytes())?;
    out.write_all(&t.data.type_id().to_le_bytes())?;
    for d in t.shape.iter().rev() {
        out.write_all(&(*d as i32).to_le_bytes())?;
    }
    out.write_all(t.name.as_bytes())?;
    match &t.data {
        TensorData::F32(v) => v.iter().try_for_each(|x| out.write_all(&x.to_le_bytes())),
        TensorData::F16(v) => v.iter().try_for_each(|x| out.write_all(&x.to_le_bytes())),
        TensorData::Q8_0(b) | TensorData::Q4_0(b) => out.write_all(b),
    }
}

/// Writes a whole model file.
pub fn write_file(
    path: &Path,
    hp: &Hparams,
    mel: &MelFilters,
    vocab: &[Vec<u8>],
    tensors: &[Tensor],
) -> Result<(), ModelError> {
    let f = std::fs::File::create(path).map_err(|e| ModelError::io(path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let io = |e| ModelError::io(path, e);
    write_preamble(&mut w, hp, mel, vocab).map_err(io)?;
    for t in tensors {
        write_tensor(&mut w, t).map_err(io)?;
    }
    w.flush().map_err(io)
}

/// Quantises `x` (length a multiple of 32) into q8_0 blocks, exactly as ggml
/// `quantize_row_q8_0_ref` does (f32 arithmetic, round half away from zero,
/// f16 scale rounded to nearest even).
pub fn quantize_q8_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / QK8_0 * Q8_0_BLOCK_BYTES);
    for block in x.chunks_exact(QK8_0) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
    }
    out
}

/// Quantises `x` (length a multiple of 32) into q4_0 blocks, exactly as ggml
/// `quantize_row_q4_0_ref` does: per block the value of largest magnitude
/// `m` gives the f16 scale `d = m / -8`, each value becomes
/// `min(15, trunc(x / d + 8.5))`, the first 16 in the low nibbles and the
/// last 16 in the high ones.
pub fn quantize_q4_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / QK8_0 * Q4_0_BLOCK_BYTES);
    for block in x.chunks_exact(QK8_0) {
        let mut amax = 0.0f32;
        let mut max = 0.0f32;
        for v in block {
            if amax < v.abs() {
                amax = v.abs();
                max = *v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
        let (lo, hi) = block.split_at(QK8_0 / 2);
        out.extend(lo.iter().zip(hi).map(|(a, b)| q(*a) | (q(*b) << 4)));
    }
    out
}

/// Decodes q4_0 blocks back to f32 (what ggml computes with).
pub fn dequantize_q4_0(blocks: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() / Q4_0_BLOCK_BYTES * QK8_0);
    for b in blocks.chunks_exact(Q4_0_BLOCK_BYTES) {
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        out.extend(b[2..].iter().map(|q| (f32::from(q & 0x0f) - 8.0) * d));
        out.extend(b[2..].iter().map(|q| (f32::from(q >> 4) - 8.0) * d));
    }
    out
}

/// Which ggml type a quantised model file gives its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quant {
    /// Every quantisable tensor q8_0 (the model `make setup` prepares).
    Q8_0,
    /// Every quantisable tensor q4_0: whisper.cpp repacks q4_0 for AVX2 /
    /// AVX-512 and AMX. (whisper.cpp gives every matrix the file type's
    /// ggml type: one file cannot mix q4_0 and q8_0.)
    Q4_0,
}

/// Decodes q8_0 blocks back to f32 (what ggml computes with).
pub fn dequantize_q8_0(blocks: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() / Q8_0_BLOCK_BYTES * QK8_0);
    for b in blocks.chunks_exact(Q8_0_BLOCK_BYTES) {
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        out.extend(b[2..].iter().map(|q| f32::from(*q as i8) * d));
    }
    out
}

/// A parsed ggml file (the quantiser's input).
#[derive(Debug, Clone)]
pub struct GgmlFile {
    /// Hyper-parameters.
    pub hparams: Hparams,
    /// Mel filter bank.
    pub mel: MelFilters,
    /// Vocabulary tokens in rank order.
    pub vocab: Vec<Vec<u8>>,
    /// Tensors in file order.
    pub tensors: Vec<Tensor>,
}

impl GgmlFile {
    /// Reads an f32/f16 whisper ggml file.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| ModelError::io(path, e))?;
        Self::parse(&bytes)
    }

    /// Parses the bytes of an f32/f16 whisper ggml file.
    pub fn parse(b: &[u8]) -> Result<Self, ModelError> {
        let pos = std::cell::Cell::new(0usize);
        let take = |n: usize| -> Result<&[u8], ModelError> {
            let p = pos.get();
            let s = p
                .checked_add(n)
                .and_then(|end| b.get(p..end))
                .ok_or_else(|| {
                    ModelError::Ggml(format!("file ends early (byte {p}, wanted {n} more)"))
                })?;
            pos.set(p + n);
            Ok(s)
        };
        fn i32_of(s: &[u8]) -> i32 {
            i32::from_le_bytes([s[0], s[1], s[2], s[3]])
        }
        fn count(v: i32, what: &str) -> Result<usize, ModelError> {
            usize::try_from(v).map_err(|_| ModelError::Ggml(format!("negative {what} {v}")))
        }
        if i32_of(take(4)?) as u32 != MAGIC {
            return Err(ModelError::Ggml("not a ggml file (bad magic)".into()));
        }
        let mut f = [0i32; 11];
        for v in &mut f {
            *v = i32_of(take(4)?);
        }
        let hparams = Hparams {
            n_vocab: f[0],
            n_audio_ctx: f[1],
            n_audio_state: f[2],
            n_audio_head: f[3],
            n_audio_layer: f[4],
            n_text_ctx: f[5],
            n_text_state: f[6],
            n_text_head: f[7],
            n_text_layer: f[8],
            n_mels: f[9],
            ftype: f[10],
        };
        let n_mel = i32_of(take(4)?);
        let n_fft = i32_of(take(4)?);
        let n = count(n_mel, "n_mel")?.saturating_mul(count(n_fft, "n_fft")?);
        let mel_bytes = take(n.saturating_mul(4))?;
        let mel = MelFilters {
            n_mel,
            n_fft,
            data: mel_bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        };
        let n_tokens = count(i32_of(take(4)?), "token count")?;
        let mut vocab = Vec::with_capacity(n_tokens.min(1 << 20));
        for _ in 0..n_tokens {
            let len = count(i32_of(take(4)?), "token length")?;
            vocab.push(take(len)?.to_vec());
        }
        let mut tensors = Vec::new();
        while pos.get() < b.len() {
            let n_dims = count(i32_of(take(4)?), "n_dims")?;
            let name_len = count(i32_of(take(4)?), "name length")?;
            let ttype = i32_of(take(4)?);
            if n_dims > 4 {
                return Err(ModelError::Ggml(format!("tensor with {n_dims} dimensions")));
            }
            let mut shape = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                shape.push(count(i32_of(take(4)?), "dimension")?);
            }
            shape.reverse();
            let name = String::from_utf8(take(name_len)?.to_vec())
                .map_err(|_| ModelError::Ggml("tensor name is not UTF-8".into()))?;
            let elements: usize = shape.iter().product();
            let data = match ttype {
                TYPE_F32 => TensorData::F32(
                    take(elements.saturating_mul(4))?
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                TYPE_F16 => TensorData::F16(
                    take(elements.saturating_mul(2))?
                        .chunks_exact(2)
                        .map(|c| f16::from_le_bytes([c[0], c[1]]))
                        .collect(),
                ),
                t => {
                    return Err(ModelError::Ggml(format!(
                        "tensor `{name}` has type {t}; only f32/f16 inputs are read"
                    )))
                }
            };
            tensors.push(Tensor { name, shape, data });
        }
        Ok(GgmlFile {
            hparams,
            mel,
            vocab,
            tensors,
        })
    }

    /// The q8_0 version of this model, as whisper.cpp's `quantize` tool makes
    /// it: 2-D tensors whose rows divide by 32 become q8_0, except the conv
    /// biases and positional embeddings; everything else is copied.
    pub fn quantize_q8_0(&self) -> GgmlFile {
        self.quantize(Quant::Q8_0)
    }

    /// The model quantised as `how` says: 2-D tensors whose rows divide by
    /// 32 are quantised, except the conv biases and positional embeddings;
    /// everything else is copied.
    pub fn quantize(&self, how: Quant) -> GgmlFile {
        const SKIP: [&str; 4] = [
            "encoder.conv1.bias",
            "encoder.conv2.bias",
            "encoder.positional_embedding",
            "decoder.positional_embedding",
        ];
        let tensors = self
            .tensors
            .iter()
            .map(|t| {
                let row = t.shape.last().copied().unwrap_or(0);
                let quantize =
                    t.shape.len() == 2 && row % QK8_0 == 0 && !SKIP.contains(&t.name.as_str());
                let q4 = how == Quant::Q4_0;
                let pack = |v: &[f32]| {
                    if q4 {
                        TensorData::Q4_0(quantize_q4_0(v))
                    } else {
                        TensorData::Q8_0(quantize_q8_0(v))
                    }
                };
                let data = match (&t.data, quantize) {
                    (TensorData::F16(v), true) => {
                        pack(&v.iter().map(|x| x.to_f32()).collect::<Vec<_>>())
                    }
                    (TensorData::F32(v), true) => pack(v),
                    (d, _) => d.clone(),
                };
                Tensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    data,
                }
            })
            .collect();
        let ftype = match how {
            Quant::Q8_0 => FTYPE_MOSTLY_Q8_0,
            Quant::Q4_0 => FTYPE_MOSTLY_Q4_0,
        } + QNT_VERSION * QNT_VERSION_FACTOR;
        GgmlFile {
            hparams: Hparams {
                ftype,
                ..self.hparams
            },
            mel: self.mel.clone(),
            vocab: self.vocab.clone(),
            tensors,
        }
    }

    /// Writes the model to `path`.
    pub fn write(&self, path: &Path) -> Result<(), ModelError> {
        write_file(path, &self.hparams, &self.mel, &self.vocab, &self.tensors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> GgmlFile {
        GgmlFile {
            hparams: Hparams {
                n_vocab: 3,
                n_audio_ctx: 2,
                n_audio_state: 32,
                n_audio_head: 1,
                n_audio_layer: 1,
                n_text_ctx: 2,
                n_text_state: 32,
                n_text_head: 1,
                n_text_layer: 1,
                n_mels: 2,
                ftype: 1,
            },
            mel: MelFilters {
                n_mel: 2,
                n_fft: 3,
                data: vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5],
            },
            vocab: vec![b"!".to_vec(), b"hej".to_vec()],
            tensors: vec![
                Tensor {
                    name: "encoder.conv1.bias".into(),
                    shape: vec![32, 1],
                    data: TensorData::F32(vec![0.25; 32]),
                },
                Tensor {
                    name: "encoder.blocks.0.mlp.0.weight".into(),
                    shape: vec![2, 32],
                    data: TensorData::F16(
                        (0..64)
                            .map(|i| f16::from_f32(i as f32 / 8.0 - 4.0))
                            .collect(),
                    ),
                },
                Tensor {
                    name: "encoder.ln_post.bias".into(),
                    shape: vec![32],
                    data: TensorData::F32(vec![1.0; 32]),
                },
            ],
        }
    }

    fn bytes_of(m: &GgmlFile) -> Vec<u8> {
        let mut out = Vec::new();
        write_preamble(&mut out, &m.hparams, &m.mel, &m.vocab).unwrap();
        for t in &m.tensors {
            write_tensor(&mut out, t).unwrap();
        }
        out
    }

    #[test]
    fn header_layout_is_what_whisper_cpp_reads() {
        let b = bytes_of(&tiny());
        let i = |k: usize| i32::from_le_bytes([b[4 * k], b[4 * k + 1], b[4 * k + 2], b[4 * k + 3]]);
        assert_eq!(&b[..4], b"lmgg", "magic 0x67676d6c little endian");
        assert_eq!(
            (i(1), i(2), i(3), i(10), i(11)),
            (3, 2, 32, 2, 1),
            "n_vocab, n_audio_ctx, n_audio_state, n_mels, ftype"
        );
        assert_eq!((i(12), i(13)), (2, 3), "mel filter n_mel, n_fft");
        assert_eq!(
            f32::from_le_bytes(b[14 * 4 + 20..14 * 4 + 24].try_into().unwrap()),
            2.5
        );
        let v = 14 * 4 + 24;
        assert_eq!(i(v / 4), 2, "token count");
        assert_eq!(&b[v + 4..v + 9], b"\x01\x00\x00\x00!");
        assert_eq!(&b[v + 9..v + 16], b"\x03\x00\x00\x00hej");
        let t = v + 16;
        // first tensor: n_dims 2, name length 18, type f32, dims reversed (1, 32), name
        assert_eq!(
            &b[t..t + 20],
            &[2, 0, 0, 0, 18, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 32, 0, 0, 0]
        );
        assert_eq!(&b[t + 20..t + 38], b"encoder.conv1.bias");
    }

    #[test]
    fn write_then_read_gives_the_same_model() {
        let m = tiny();
        let back = GgmlFile::parse(&bytes_of(&m)).unwrap();
        assert_eq!(back.hparams, m.hparams);
        assert_eq!(back.mel, m.mel);
        assert_eq!(back.vocab, m.vocab);
        assert_eq!(back.tensors, m.tensors);
        for cut in [0, 3, 40, 100, bytes_of(&m).len() - 1] {
            assert!(
                GgmlFile::parse(&bytes_of(&m)[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn q8_0_round_trip_error_is_within_half_a_step() {
        let x: Vec<f32> = (0..96)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0)
            .collect();
        let q = quantize_q8_0(&x);
        assert_eq!(q.len(), 3 * Q8_0_BLOCK_BYTES);
        let y = dequantize_q8_0(&q);
        for (block_x, block_y) in x.chunks(32).zip(y.chunks(32)) {
            let amax = block_x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let step = amax / 127.0;
            for (a, b) in block_x.iter().zip(block_y) {
                assert!((a - b).abs() <= step * 0.5 + amax * 1e-3, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn q8_0_block_layout_scale_then_values() {
        let mut x = vec![0.0f32; 32];
        x[0] = 127.0;
        x[1] = -63.5; // exactly half a step: rounds away from zero
        x[2] = 1.0;
        let q = quantize_q8_0(&x);
        assert_eq!(
            f16::from_le_bytes([q[0], q[1]]).to_f32(),
            1.0,
            "scale max|x|/127"
        );
        assert_eq!(q[2] as i8, 127);
        assert_eq!(q[3] as i8, -64);
        assert_eq!(q[4] as i8, 1);
        assert_eq!(
            quantize_q8_0(&[0.0; 32]),
            vec![0u8; 34],
            "all-zero block has scale 0"
        );
    }

    #[test]
    fn quantising_keeps_biases_and_marks_the_file_q8_0() {
        let q = tiny().quantize_q8_0();
        assert_eq!(q.hparams.ftype, 2007);
        assert_eq!(q.tensors[0].data.type_id(), TYPE_F32, "conv bias stays f32");
        assert_eq!(q.tensors[1].data.type_id(), TYPE_Q8_0);
        assert_eq!(q.tensors[2].data.type_id(), TYPE_F32, "1-D stays f32");
        let TensorData::Q8_0(b) = &q.tensors[1].data else {
            unreachable!()
        };
        assert_eq!(b.len(), 2 * Q8_0_BLOCK_BYTES);
    }

    #[test]
    fn q4_0_blocks_match_ggml_reference_rounding() {
        // ggml quantize_row_q4_0_ref on 0, 1, ..., 15, -16, ..., -1:
        // largest magnitude -16 gives d = 2, values x / 2 + 8.5 truncated.
        let x: Vec<f32> = (0..16).chain(-16..0).map(|v| v as f32).collect();
        let q = quantize_q4_0(&x);
        assert_eq!(q.len(), Q4_0_BLOCK_BYTES);
        assert_eq!(f16::from_le_bytes([q[0], q[1]]).to_f32(), 2.0);
        assert_eq!(q[2] & 0x0f, 8, "0 -> 8");
        assert_eq!(q[2] >> 4, 0, "-16 -> 0");
        assert_eq!(q[17] & 0x0f, 15, "15 / 2 + 8.5 = 16 is capped at 15");
        let back = dequantize_q4_0(&q);
        assert!(x.iter().zip(&back).all(|(a, b)| (a - b).abs() <= 2.0));
        let z = quantize_q4_0(&[0.0; 32]);
        assert_eq!(
            f16::from_le_bytes([z[0], z[1]]).to_f32(),
            0.0,
            "all-zero block has scale 0"
        );
        assert!(
            z[2..].iter().all(|q| *q == 0x88),
            "and every value 8 (zero)"
        );
    }

    #[test]
    fn quantising_to_q4_0_keeps_biases_and_marks_the_file_q4_0() {
        let q = tiny().quantize(Quant::Q4_0);
        assert_eq!(q.hparams.ftype, 2002);
        assert_eq!(q.tensors[0].data.type_id(), TYPE_F32, "conv bias stays f32");
        assert_eq!(q.tensors[1].data.type_id(), TYPE_Q4_0);
        assert_eq!(q.tensors[2].data.type_id(), TYPE_F32, "1-D stays f32");
    }
}
