//! espeak-ng (built from source by espeak-rs-sys for piper-rs) calls libsonic
//! for speed changes; espeak-rs-sys finds the system library (apt
//! `libsonic-dev`) at configure time but does not link it: we do.
fn main() {
    println!("cargo:rustc-link-lib=sonic");
    println!("cargo:rerun-if-changed=build.rs");
}
