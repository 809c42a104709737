//! CTranslate2 Whisper -> whisper.cpp ggml (f16), the tensor layout of
//! whisper.cpp `models/convert-pt-to-ggml.py` in the order of the PyTorch
//! state dict, so the output is byte-identical to converting OpenAI's
//! checkpoint.
//!
//! Mapping (N = layer): `encoder/conv{1,2}` -> `encoder.conv{1,2}` (biases as
//! shape (n, 1)); `*/position_encodings/encodings` -> `*.positional_embedding`;
//! `self_attention/linear_0` holds Q, K and V stacked on the first axis ->
//! `attn.query`, `attn.key` (no bias), `attn.value`; `self_attention/linear_1`
//! -> `attn.out`; `self_attention/layer_norm` -> `attn_ln`; decoder
//! `attention/linear_0` -> `cross_attn.query`, `attention/linear_1` (K, V
//! stacked) -> `cross_attn.key`/`cross_attn.value`, `attention/linear_2` ->
//! `cross_attn.out`, `attention/layer_norm` -> `cross_attn_ln`; `ffn/linear_0|1`
//! -> `mlp.0|mlp.2`, `ffn/layer_norm` -> `mlp_ln`; `encoder/layer_norm` ->
//! `encoder.ln_post`; `decoder/layer_norm` -> `decoder.ln`;
//! `decoder/embeddings/weight` -> `decoder.token_embedding.weight`.
//! 1-D tensors, conv biases and positional embeddings are f32, the rest f16.

use half::f16;

use crate::ct2::Model;
use crate::ggml::{Hparams, MelFilters, Tensor, TensorData};
use crate::ModelError;

/// Reads the tiktoken vocabulary (`base64 rank` per line) into tokens in rank order.
pub fn parse_tiktoken(text: &str) -> Result<Vec<Vec<u8>>, ModelError> {
    use base64::Engine as _;
    let mut tokens = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |p: &str| ModelError::Vocab {
            line: i + 1,
            problem: p.to_string(),
        };
        let mut parts = line.split_whitespace();
        let (Some(tok), Some(rank), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected `base64 rank`"));
        };
        // Python's b64decode (what whisper and its converter use) accepts the
        // last entry, a lone "=", as the empty token: decode without padding.
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(tok.trim_end_matches('='))
            .map_err(|_| bad("token is not base64"))?;
        let rank: usize = rank.parse().map_err(|_| bad("rank is not a number"))?;
        if rank != tokens.len() {
            return Err(bad("ranks are not consecutive from 0"));
        }
        tokens.push(bytes);
    }
    Ok(tokens)
}

fn err(name: &str, problem: impl Into<String>) -> ModelError {
    ModelError::Variable {
        name: name.to_string(),
        problem: problem.into(),
    }
}

/// Converts a CTranslate2 Whisper model into whisper.cpp hyper-parameters
/// (ftype 1, f16) and tensors in the order whisper.cpp's converter writes them.
pub fn convert(m: &Model) -> Result<(Hparams, Vec<Tensor>), ModelError> {
    let shape = |name: &str| m.get(name).map(|v| v.shape.clone());
    let heads = |name: &str| -> Result<i32, ModelError> {
        m.get(name)?
            .scalar_int()
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| err(name, "not an integer scalar"))
    };
    let layers = |prefix: &str| {
        (0..)
            .take_while(|i| {
                m.variables
                    .contains_key(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))
            })
            .count()
    };
    let emb = shape("decoder/embeddings/weight")?;
    let conv1 = shape("encoder/conv1/weight")?;
    let enc_pos = shape("encoder/position_encodings/encodings")?;
    let dec_pos = shape("decoder/position_encodings/encodings")?;
    let (
        &[n_vocab, n_text_state],
        &[n_audio_state, n_mels, _],
        &[n_audio_ctx, _],
        &[n_text_ctx, _],
    ) = (&emb[..], &conv1[..], &enc_pos[..], &dec_pos[..])
    else {
        return Err(err(
            "encoder/conv1/weight",
            "embedding, conv or position shapes are not Whisper's",
        ));
    };
    let n_audio_layer = layers("encoder");
    let n_text_layer = layers("decoder");
    if n_audio_layer == 0 || n_text_layer == 0 {
        return Err(err(
            "encoder/layer_0/ffn/linear_0/weight",
            "no encoder or decoder layers",
        ));
    }
    let hp = Hparams {
        n_vocab: n_vocab as i32,
        n_audio_ctx: n_audio_ctx as i32,
        n_audio_state: n_audio_state as i32,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: n_audio_layer as i32,
        n_text_ctx: n_text_ctx as i32,
        n_text_state: n_text_state as i32,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: n_text_layer as i32,
        n_mels: n_mels as i32,
        ftype: 1,
    };

    let mut out = Vec::new();
    let mut t = Tensors { m, out: &mut out };
    t.f32(
        "encoder/position_encodings/encodings",
        "encoder.positional_embedding",
        None,
    )?;
    t.auto("encoder/conv1/weight", "encoder.conv1.weight")?;
    t.f32("encoder/conv1/bias", "encoder.conv1.bias", Some(2))?;
    t.auto("encoder/conv2/weight", "encoder.conv2.weight")?;
    t.f32("encoder/conv2/bias", "encoder.conv2.bias", Some(2))?;
    for i in 0..n_audio_layer {
        let c = format!("encoder/layer_{i}");
        let g = format!("encoder.blocks.{i}");
        t.fused_attn(
            &format!("{c}/self_attention/linear_0"),
            &format!("{g}.attn"),
            &["query", "key", "value"],
        )?;
        t.linear(
            &format!("{c}/self_attention/linear_1"),
            &format!("{g}.attn.out"),
        )?;
        t.norm(
            &format!("{c}/self_attention/layer_norm"),
            &format!("{g}.attn_ln"),
        )?;
        t.linear(&format!("{c}/ffn/linear_0"), &format!("{g}.mlp.0"))?;
        t.linear(&format!("{c}/ffn/linear_1"), &format!("{g}.mlp.2"))?;
        t.norm(&format!("{c}/ffn/layer_norm"), &format!("{g}.mlp_ln"))?;
    }
    t.norm("encoder/layer_norm", "encoder.ln_post")?;
    t.f32(
        "decoder/position_encodings/encodings",
        "decoder.positional_embedding",
        None,
    )?;
    t.auto(
        "decoder/embeddings/weight",
        "decoder.token_embedding.weight",
    )?;
    for i in 0..n_text_layer {
        let c = format!("decoder/layer_{i}");
        let g = format!("decoder.blocks.{i}");
        t.fused_attn(
            &format!("{c}/self_attention/linear_0"),
            &format!("{g}.attn"),
            &["query", "key", "value"],
        )?;
        t.linear(
            &format!("{c}/self_attention/linear_1"),
            &format!("{g}.attn.out"),
        )?;
        t.norm(
            &format!("{c}/self_attention/layer_norm"),
            &format!("{g}.attn_ln"),
        )?;
        t.linear(
            &format!("{c}/attention/linear_0"),
            &format!("{g}.cross_attn.query"),
        )?;
        t.fused_attn(
            &format!("{c}/attention/linear_1"),
            &format!("{g}.cross_attn"),
            &["key", "value"],
        )?;
        t.linear(
            &format!("{c}/attention/linear_2"),
            &format!("{g}.cross_attn.out"),
        )?;
        t.norm(
            &format!("{c}/attention/layer_norm"),
            &format!("{g}.cross_attn_ln"),
        )?;
        t.linear(&format!("{c}/ffn/linear_0"), &format!("{g}.mlp.0"))?;
        t.linear(&format!("{c}/ffn/linear_1"), &format!("{g}.mlp.2"))?;
        t.norm(&format!("{c}/ffn/layer_norm"), &format!("{g}.mlp_ln"))?;
    }
    t.norm("decoder/layer_norm", "decoder.ln")?;
    Ok((hp, out))
}

struct Tensors<'a> {
    m: &'a Model,
    out: &'a mut Vec<Tensor>,
}

impl Tensors<'_> {
    /// f32 tensor; `rank2` reshapes a 1-D bias to (n, 1).
    fn f32(&mut self, src: &str, dst: &str, rank2: Option<usize>) -> Result<(), ModelError> {
        let v = self.m.get(src)?;
        let data = v
            .to_f32()
            .ok_or_else(|| err(src, format!("{:?} is not a float type", v.dtype)))?;
        let shape = match rank2 {
            Some(_) => vec![v.len(), 1],
            None => v.shape.clone(),
        };
        self.out.push(Tensor {
            name: dst.into(),
            shape,
            data: TensorData::F32(data),
        });
        Ok(())
    }

    /// 1-D -> f32, otherwise f16.
    fn auto(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        let v = self.m.get(src)?;
        if v.shape.len() < 2 {
            return self.f32(src, dst, None);
        }
        let data = v.to_f16().ok_or_else(|| err(src, format!("{:?} is not a float type (int8 CTranslate2 models are not supported; convert with --quantization float16)", v.dtype)))?;
        self.out.push(Tensor {
            name: dst.into(),
            shape: v.shape.clone(),
            data: TensorData::F16(data),
        });
        Ok(())
    }

    fn linear(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        self.auto(&format!("{src}/weight"), &format!("{dst}.weight"))?;
        self.f32(&format!("{src}/bias"), &format!("{dst}.bias"), None)
    }

    fn norm(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        self.f32(&format!("{src}/gamma"), &format!("{dst}.weight"), None)?;
        self.f32(&format!("{src}/beta"), &format!("{dst}.bias"), None)
    }

    /// Splits a fused projection (parts stacked on the first axis) into
    /// `{dst}.{part}.weight/bias`; the key projection has no bias in whisper.
    fn fused_attn(&mut self, src: &str, dst: &str, parts: &[&str]) -> Result<(), ModelError> {
        let wn = format!("{src}/weight");
        let bn = format!("{src}/bias");
        let w = self.m.get(&wn)?;
        let b = self.m.get(&bn)?;
        let [rows, cols] = w.shape[..] else {
            return Err(err(&wn, "not 2-D"));
        };
        let n = parts.len();
        if rows % n != 0 || b.len() != rows {
            return Err(err(
                &wn,
                format!("shape {:?} does not split into {n} parts", w.shape),
            ));
        }
        let part_rows = rows / n;
        let wf: Vec<f16> = w.to_f16().ok_or_else(|| err(&wn, "not a float type"))?;
        let bf: Vec<f32> = b.to_f32().ok_or_else(|| err(&bn, "not a float type"))?;
        for (k, part) in parts.iter().enumerate() {
            let rows_k = k * part_rows..(k + 1) * part_rows;
            let data = wf[rows_k.start * cols..rows_k.end * cols].to_vec();
            self.out.push(Tensor {
                name: format!("{dst}.{part}.weight"),
                shape: vec![part_rows, cols],
                data: TensorData::F16(data),
            });
            if *part != "key" {
                self.out.push(Tensor {
                    name: format!("{dst}.{part}.bias"),
                    shape: vec![part_rows],
                    data: TensorData::F32(bf[rows_k].to_vec()),
                });
            }
        }
        Ok(())
    }
}

/// Mel filters for `n_mels` bands from whisper's `mel_filters.npz`.
pub fn mel_filters(npz: &std::path::Path, n_mels: i32) -> Result<MelFilters, ModelError> {
    let a = crate::npy::read_npz_f32_2d(npz, &format!("mel_{n_mels}"))?;
    Ok(MelFilters {
        n_mel: a.rows as i32,
        n_fft: a.cols as i32,
        data: a.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct2::{DType, Variable};

    fn var(shape: &[usize], f: impl Fn(usize) -> f32) -> Variable {
        let n: usize = shape.iter().product();
        Variable {
            shape: shape.to_vec(),
            dtype: DType::F16,
            data: (0..n)
                .flat_map(|i| f16::from_f32(f(i)).to_le_bytes())
                .collect(),
        }
    }

    /// A Whisper with width 4, one layer each side, vocabulary 5, 2 mels.
    fn tiny_whisper() -> Model {
        let mut m = Model {
            version: 6,
            spec: "WhisperSpec".into(),
            revision: 3,
            ..Default::default()
        };
        let mut put = |n: &str, v: Variable| {
            m.variables.insert(n.to_string(), v);
        };
        let s = 4;
        put(
            "encoder/num_heads",
            Variable {
                shape: vec![],
                dtype: DType::I16,
                data: 2i16.to_le_bytes().to_vec(),
            },
        );
        put(
            "decoder/num_heads",
            Variable {
                shape: vec![],
                dtype: DType::I16,
                data: 2i16.to_le_bytes().to_vec(),
            },
        );
        put("encoder/conv1/weight", var(&[s, 2, 3], |i| i as f32));
        put("encoder/conv1/bias", var(&[s], |i| i as f32));
        put("encoder/conv2/weight", var(&[s, s, 3], |i| i as f32));
        put("encoder/conv2/bias", var(&[s], |i| i as f32));
        put(
            "encoder/position_encodings/encodings",
            var(&[6, s], |i| i as f32),
        );
        put(
            "decoder/position_encodings/encodings",
            var(&[3, s], |i| i as f32),
        );
        put("decoder/embeddings/weight", var(&[5, s], |i| i as f32));
        for side in ["encoder", "decoder"] {
            let l = format!("{side}/layer_0");
            // Q rows are 1, K rows 2, V rows 3: the split must keep them apart.
            put(
                &format!("{l}/self_attention/linear_0/weight"),
                var(&[3 * s, s], |i| (i / (s * s) + 1) as f32),
            );
            put(
                &format!("{l}/self_attention/linear_0/bias"),
                var(&[3 * s], |i| (i / s + 1) as f32 * 10.0),
            );
            for lin in ["self_attention/linear_1", "ffn/linear_0", "ffn/linear_1"] {
                put(&format!("{l}/{lin}/weight"), var(&[s, s], |_| 0.5));
                put(&format!("{l}/{lin}/bias"), var(&[s], |_| 0.25));
            }
            for ln in ["self_attention/layer_norm", "ffn/layer_norm"] {
                put(&format!("{l}/{ln}/gamma"), var(&[s], |_| 1.0));
                put(&format!("{l}/{ln}/beta"), var(&[s], |_| 0.0));
            }
            put(&format!("{side}/layer_norm/gamma"), var(&[s], |_| 1.0));
            put(&format!("{side}/layer_norm/beta"), var(&[s], |_| 0.0));
        }
        let l = "decoder/layer_0/attention";
        put(&format!("{l}/linear_0/weight"), var(&[s, s], |_| 7.0));
        put(&format!("{l}/linear_0/bias"), var(&[s], |_| 7.0));
        put(
            &format!("{l}/linear_1/weight"),
            var(&[2 * s, s], |i| (i / (s * s) + 2) as f32),
        );
        put(
            &format!("{l}/linear_1/bias"),
            var(&[2 * s], |i| (i / s + 2) as f32),
        );
        put(&format!("{l}/linear_2/weight"), var(&[s, s], |_| 9.0));
        put(&format!("{l}/linear_2/bias"), var(&[s], |_| 9.0));
        put(&format!("{l}/layer_norm/gamma"), var(&[s], |_| 1.0));
        put(&format!("{l}/layer_norm/beta"), var(&[s], |_| 0.0));
        m
    }

    fn values(t: &Tensor) -> Vec<f32> {
        match &t.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorData::Q8_0(_) | TensorData::Q4_0(_) => unreachable!(),
        }
    }

    #[test]
    fn hyper_parameters_come_from_shapes_and_head_counts() {
        let (hp, _) = convert(&tiny_whisper()).unwrap();
        assert_eq!(
            hp,
            Hparams {
                n_vocab: 5,
                n_audio_ctx: 6,
                n_audio_state: 4,
                n_audio_head: 2,
                n_audio_layer: 1,
                n_text_ctx: 3,
                n_text_state: 4,
                n_text_head: 2,
                n_text_layer: 1,
                n_mels: 2,
                ftype: 1
            }
        );
    }

    #[test]
    fn fused_qkv_is_split_and_key_has_no_bias() {
        let (_, ts) = convert(&tiny_whisper()).unwrap();
        let get = |n: &str| {
            ts.iter()
                .find(|t| t.name == n)
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert_eq!(
            values(get("encoder.blocks.0.attn.query.weight")),
            vec![1.0; 16]
        );
        assert_eq!(
            values(get("encoder.blocks.0.attn.key.weight")),
            vec![2.0; 16]
        );
        assert_eq!(
            values(get("encoder.blocks.0.attn.value.weight")),
            vec![3.0; 16]
        );
        assert_eq!(
            values(get("encoder.blocks.0.attn.value.bias")),
            vec![30.0; 4]
        );
        assert!(ts.iter().all(|t| !t.name.ends_with("key.bias")));
        assert_eq!(
            values(get("decoder.blocks.0.cross_attn.query.weight")),
            vec![7.0; 16]
        );
        assert_eq!(
            values(get("decoder.blocks.0.cross_attn.key.weight")),
            vec![2.0; 16]
        );
        assert_eq!(
            values(get("decoder.blocks.0.cross_attn.value.bias")),
            vec![3.0; 4]
        );
        assert_eq!(
            values(get("decoder.blocks.0.cross_attn.out.weight")),
            vec![9.0; 16]
        );
    }

    #[test]
    fn biases_norms_and_positions_are_f32_and_conv_bias_is_n_by_1() {
        let (_, ts) = convert(&tiny_whisper()).unwrap();
        let get = |n: &str| ts.iter().find(|t| t.name == n).unwrap();
        assert_eq!(get("encoder.conv1.bias").shape, vec![4, 1]);
        for n in [
            "encoder.conv1.bias",
            "encoder.positional_embedding",
            "decoder.positional_embedding",
            "decoder.ln.weight",
            "encoder.blocks.0.mlp.0.bias",
        ] {
            assert!(matches!(get(n).data, TensorData::F32(_)), "{n}");
        }
        for n in [
            "encoder.conv1.weight",
            "decoder.token_embedding.weight",
            "decoder.blocks.0.mlp.2.weight",
        ] {
            assert!(matches!(get(n).data, TensorData::F16(_)), "{n}");
        }
        assert_eq!(
            ts[0].name, "encoder.positional_embedding",
            "PyTorch state-dict order"
        );
        assert_eq!(ts.last().unwrap().name, "decoder.ln.bias");
        // per encoder block: q w+b, k w, v w+b, out w+b, ln w+b, mlp.0 w+b, mlp.2 w+b, mlp_ln w+b = 15
        // per decoder block: 15 + cross q w+b, k w, v w+b, out w+b, ln w+b = 24
        assert_eq!(ts.len(), 5 + 15 + 2 + 2 + 24 + 2);
    }

    #[test]
    fn a_missing_variable_is_named() {
        let mut m = tiny_whisper();
        m.variables
            .remove("decoder/layer_0/attention/linear_2/weight");
        let e = convert(&m).unwrap_err().to_string();
        assert!(
            e.contains("decoder/layer_0/attention/linear_2/weight"),
            "{e}"
        );
    }

    #[test]
    fn tiktoken_lines_decode_in_rank_order() {
        let t = parse_tiktoken("IQ== 0\nIg== 1\nIGhlag== 2\n= 3\n").unwrap();
        assert_eq!(
            t,
            vec![b"!".to_vec(), b"\"".to_vec(), b" hej".to_vec(), Vec::new()],
            "a lone `=` is the empty token"
        );
        assert!(parse_tiktoken("IQ== 1\n").is_err());
        assert!(parse_tiktoken("%%% 0\n").is_err());
    }
}
