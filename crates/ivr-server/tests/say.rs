//! `ivr say` writes a playable WAV at the requested rate, and fails with a
//! message naming the problem for an unknown voice.

use std::path::Path;
use std::process::Command;

fn ivr() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ivr"));
    // Paths in the defaults (voices/, models/) are relative to the repository root.
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

#[test]
fn say_writes_danish_speech_at_8k() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hej.wav");
    let o = ivr()
        .args([
            "say",
            "Goddag, du har ringet til kommunen.",
            "--lang",
            "da",
            "--rate",
            "8000",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pcm = ivr_tts::decode_file(&out).unwrap();
    assert_eq!(pcm.sample_rate, 8_000);
    assert!(pcm.duration().as_secs_f64() > 1.0, "{:?}", pcm.duration());
    assert!(String::from_utf8_lossy(&o.stdout).contains("voice espeak-da"));
}

#[test]
fn say_with_an_unknown_voice_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = ivr()
        .args(["say", "Hej", "--voice", "no-such-voice", "-o"])
        .arg(dir.path().join("x.wav"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no voice `no-such-voice`"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
