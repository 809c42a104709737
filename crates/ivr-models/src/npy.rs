//! Reads one little-endian float32 C-order array from a NumPy `.npz` archive
//! (a zip of `.npy` files; format described in NumPy's `numpy.lib.format`):
//! magic `\x93NUMPY`, major and minor version, a header length (`u16` in
//! version 1, `u32` in versions 2 and 3), a Python dict literal with `descr`,
//! `fortran_order` and `shape`, then the data.

use std::io::Read;
use std::path::Path;

use crate::ModelError;

/// A 2-D float32 array.
#[derive(Debug, Clone, PartialEq)]
pub struct Array2 {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Reads array `name` (without `.npy`) from the archive at `path`.
pub fn read_npz_f32_2d(path: &Path, name: &str) -> Result<Array2, ModelError> {
    let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| ModelError::Npy(format!("{}: {e}", path.display())))?;
    let mut entry = zip
        .by_name(&format!("{name}.npy"))
        .map_err(|e| ModelError::Npy(format!("{}: no `{name}.npy` ({e})", path.display())))?;
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| ModelError::io(path, e))?;
    parse_npy_f32_2d(&bytes)
}

/// Parses the bytes of one `.npy` file holding a 2-D `<f4` C-order array.
pub fn parse_npy_f32_2d(bytes: &[u8]) -> Result<Array2, ModelError> {
    let bad = |m: &str| ModelError::Npy(m.to_string());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file (magic missing)"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(ModelError::Npy(format!("unsupported .npy version {v}"))),
    };
    let header = bytes
        .get(start..start + hlen)
        .ok_or_else(|| bad("header runs past the end"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(bad("array is not little-endian float32 (`<f4`)"));
    }
    if !header.contains("'fortran_order': False") {
        return Err(bad("array is in Fortran order"));
    }
    let shape = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape in header"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| bad("shape is not a tuple of integers"))
        })
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(ModelError::Npy(format!(
            "expected a 2-D array, got shape {dims:?}"
        )));
    };
    let data = &bytes[start + hlen..];
    if data.len() != rows * cols * 4 {
        return Err(ModelError::Npy(format!(
            "{} data bytes for shape ({rows}, {cols})",
            data.len()
        )));
    }
    let data = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Array2 { rows, cols, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(shape: &str, values: &[f32]) -> Vec<u8> {
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    #[test]
    fn reads_a_2d_float_array() {
        let a = parse_npy_f32_2d(&npy("(2, 3)", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).unwrap();
        assert_eq!((a.rows, a.cols), (2, 3));
        assert_eq!(a.data[5], 6.0);
    }

    #[test]
    fn rejects_wrong_shapes_and_short_data() {
        assert!(parse_npy_f32_2d(&npy("(6,)", &[0.0; 6])).is_err());
        assert!(parse_npy_f32_2d(&npy("(2, 3)", &[0.0; 5])).is_err());
        assert!(parse_npy_f32_2d(b"\x93NUMPY").is_err());
    }

    #[test]
    fn reads_from_a_deflated_npz() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("ivr-models-npz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mel_filters.npz");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file("mel_80.npy", opts).unwrap();
        z.write_all(&npy("(80, 2)", &[0.5; 160])).unwrap();
        z.finish().unwrap();
        let a = read_npz_f32_2d(&path, "mel_80").unwrap();
        assert_eq!((a.rows, a.cols, a.data[159]), (80, 2, 0.5));
        assert!(read_npz_f32_2d(&path, "mel_128").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
