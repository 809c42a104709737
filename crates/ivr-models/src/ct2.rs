//! Reader of CTranslate2 `model.bin` files (binary format versions 1-6).
//!
//! Layout (little endian): `u32` version; if version >= 2 the spec name
//! (string) and a `u32` revision; `u32` variable count; per variable its name
//! (string), `u8` rank, `rank` x `u32` dimensions, a `u8` dtype (version >= 4;
//! older files store the item size instead), a `u32` byte count (element count
//! before version 4) and the raw data; if version >= 3 a `u32` alias count and
//! per alias two strings (alias, target). A string is a `u16` length that
//! counts a trailing NUL, then the bytes.

use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};

use crate::ModelError;

/// Element type of a CTranslate2 variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 8-bit signed integer (quantised weights, or flags).
    I8,
    /// 16-bit signed integer.
    I16,
    /// 32-bit signed integer.
    I32,
    /// IEEE half float.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    /// The CTranslate2 type id (version >= 4 files).
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }

    /// The CTranslate2 type id.
    pub fn id(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 3,
            DType::F16 => 4,
            DType::Bf16 => 5,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::Bf16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One named array of the model.
#[derive(Clone, PartialEq)]
pub struct Variable {
    /// Dimensions, outermost first (row-major).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Raw little-endian data, `shape.product() * dtype.size()` bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Variable({:?}, {:?}, {} bytes)",
            self.dtype,
            self.shape,
            self.data.len()
        )
    }
}

impl Variable {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the variable holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (float types only).
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        let c = self.data.chunks_exact(self.dtype.size());
        Some(match self.dtype {
            DType::F32 => c
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::F16 => c
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            DType::Bf16 => c
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            _ => return None,
        })
    }

    /// The values as IEEE half floats (float types only). f16 data is taken
    /// bit for bit; f32 and bf16 are rounded to nearest even, as NumPy's
    /// `astype(float16)` does.
    pub fn to_f16(&self) -> Option<Vec<f16>> {
        match self.dtype {
            DType::F16 => Some(
                self.data
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            ),
            _ => self
                .to_f32()
                .map(|v| v.into_iter().map(f16::from_f32).collect()),
        }
    }

    /// The value of a scalar integer variable (e.g. `encoder/num_heads`).
    pub fn scalar_int(&self) -> Option<i64> {
        if self.len() != 1 {
            return None;
        }
        let b = &self.data;
        Some(match self.dtype {
            DType::I8 => i64::from(b[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => return None,
        })
    }
}

/// A parsed CTranslate2 model.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Binary format version.
    pub version: u32,
    /// Spec name (e.g. `WhisperSpec`), empty before version 2.
    pub spec: String,
    /// Spec revision (0 before version 2).
    pub revision: u32,
    /// Variables by name.
    pub variables: BTreeMap<String, Variable>,
    /// Aliases: alias name -> variable name.
    pub aliases: BTreeMap<String, String>,
}

impl Model {
    /// Reads and parses a `model.bin`.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::parse(&bytes)
    }

    /// Parses the bytes of a `model.bin`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut c = Cursor { b: bytes, pos: 0 };
        let version = c.u32()?;
        if !(1..=6).contains(&version) {
            return Err(ModelError::Ct2(format!(
                "unsupported binary version {version} (known: 1-6)"
            )));
        }
        let (spec, revision) = if version >= 2 {
            (c.string()?, c.u32()?)
        } else {
            (String::new(), 0)
        };
        let count = c.u32()?;
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = c.string()?;
            let rank = usize::from(c.u8()?);
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(c.u32()? as usize);
            }
            let (dtype, nbytes) = if version >= 4 {
                let id = c.u8()?;
                let dtype = DType::from_id(id).ok_or_else(|| {
                    ModelError::Ct2(format!("variable `{name}`: unknown dtype {id}"))
                })?;
                (dtype, c.u32()? as usize)
            } else {
                let item = c.u8()?;
                let dtype = match item {
                    1 => DType::I8,
                    2 => DType::I16,
                    4 => DType::F32,
                    _ => {
                        return Err(ModelError::Ct2(format!(
                            "variable `{name}`: unknown item size {item}"
                        )))
                    }
                };
                (dtype, (c.u32()? as usize).saturating_mul(usize::from(item)))
            };
            let elements: usize = shape.iter().product();
            if elements.checked_mul(dtype.size()) != Some(nbytes) {
                return Err(ModelError::Ct2(format!(
                    "variable `{name}`: {nbytes} bytes do not fit shape {shape:?} of {dtype:?}"
                )));
            }
            let data = c.take(nbytes)?.to_vec();
            variables.insert(name, Variable { shape, dtype, data });
        }
        let mut aliases = BTreeMap::new();
        if version >= 3 && c.pos < bytes.len() {
            let n = c.u32()?;
            for _ in 0..n {
                let alias = c.string()?;
                let target = c.string()?;
                aliases.insert(alias, target);
            }
        }
        Ok(Model {
            version,
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// A variable by name (following aliases).
    pub fn get(&self, name: &str) -> Result<&Variable, ModelError> {
        let target = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.variables
            .get(target)
            .ok_or_else(|| ModelError::Variable {
                name: name.to_string(),
                problem: "missing".into(),
            })
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| {
                ModelError::Ct2(format!(
                    "file ends at byte {} while {n} more bytes were expected",
                    self.b.len()
                ))
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ModelError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, ModelError> {
        let n = usize::from(self.u16()?);
        let b = self.take(n)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec())
            .map_err(|_| ModelError::Ct2(format!("string at byte {} is not UTF-8", self.pos)))
    }
}

/// Writes a CTranslate2 `model.bin` (version 6). Used by tests to build small
/// models; setup never writes CTranslate2 files.
pub fn write(model: &Model) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&6u32.to_le_bytes());
    string(&mut out, &model.spec);
    out.extend_from_slice(&model.revision.to_le_bytes());
    out.extend_from_slice(&(model.variables.len() as u32).to_le_bytes());
    for (name, v) in &model.variables {
        string(&mut out, name);
        out.push(v.shape.len() as u8);
        for d in &v.shape {
            out.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        out.push(v.dtype.id());
        out.extend_from_slice(&(v.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&v.data);
    }
    out.extend_from_slice(&(model.aliases.len() as u32).to_le_bytes());
    for (a, t) in &model.aliases {
        string(&mut out, a);
        string(&mut out, t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_var(shape: &[usize], values: &[f32]) -> Variable {
        Variable {
            shape: shape.to_vec(),
            dtype: DType::F16,
            data: values
                .iter()
                .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                .collect(),
        }
    }

    #[test]
    fn reads_back_what_a_version_6_file_holds() {
        let mut m = Model {
            version: 6,
            spec: "WhisperSpec".into(),
            revision: 3,
            ..Default::default()
        };
        m.variables.insert(
            "encoder/num_heads".into(),
            Variable {
                shape: vec![],
                dtype: DType::I16,
                data: 8i16.to_le_bytes().to_vec(),
            },
        );
        m.variables.insert(
            "w".into(),
            f16_var(&[2, 3], &[1.0, -2.0, 0.5, 0.25, 3.0, -0.125]),
        );
        m.aliases
            .insert("decoder/projection/weight".into(), "w".into());
        let bytes = write(&m);
        let back = Model::parse(&bytes).unwrap();
        assert_eq!(back.version, 6);
        assert_eq!(back.spec, "WhisperSpec");
        assert_eq!(back.revision, 3);
        assert_eq!(back.get("encoder/num_heads").unwrap().scalar_int(), Some(8));
        let w = back.get("decoder/projection/weight").unwrap();
        assert_eq!(w.shape, vec![2, 3]);
        assert_eq!(w.to_f32().unwrap(), vec![1.0, -2.0, 0.5, 0.25, 3.0, -0.125]);
    }

    #[test]
    fn a_truncated_file_is_an_error_not_a_panic() {
        let mut m = Model {
            version: 6,
            spec: "WhisperSpec".into(),
            ..Default::default()
        };
        m.variables
            .insert("w".into(), f16_var(&[4], &[1.0, 2.0, 3.0, 4.0]));
        let bytes = write(&m);
        for cut in 0..bytes.len() - 4 {
            assert!(Model::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn byte_count_must_match_the_shape() {
        let mut m = Model {
            version: 6,
            spec: "S".into(),
            ..Default::default()
        };
        m.variables.insert(
            "w".into(),
            Variable {
                shape: vec![3],
                dtype: DType::F16,
                data: vec![0; 4],
            },
        );
        let err = Model::parse(&write(&m)).unwrap_err();
        assert!(err.to_string().contains("do not fit"), "{err}");
    }
}
