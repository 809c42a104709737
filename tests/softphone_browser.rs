//! The console's softphone in a real browser: headless Debian chromium
//! (driven by playwright-core, `tests/console/softphone.mjs`) logs in as a
//! Nordby operator, opens "Call this flow" and calls Nordby's Danish menu
//! over WebRTC (ICE-lite on loopback, DTLS-SRTP, Opus). Chromium's fake
//! microphone plays a caller's utterance from the speech test set
//! (`da-koerekort-01`: "Jeg vil gerne bestille tid til et kørekort."). The test
//! proves that the page received the bot's audio (an AnalyserNode on the
//! remote track), that the engine routed the call by what it heard (the
//! page's debugger shows the intent `koerekort` and a step past the menu), and
//! that hanging up in the page ends the engine's call. Screenshots go to
//! `target/softphone-screenshots/`.
//!
//! Needs what `console_browser.rs` needs (chromium, node with
//! `tests/console/node_modules`, voices, whisper, onnxruntime: `make setup`).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ivr_engine::config::EngineConfig;
use ivr_engine::console::accounts::{Accounts, Role, Scope};
use tokio::io::{AsyncBufReadExt, BufReader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn engine_config(dir: &Path) -> EngineConfig {
    let r = root();
    assert!(
        r.join("models/onnxruntime/libonnxruntime.so").exists(),
        "models/onnxruntime missing: run `make setup`"
    );
    let text = format!(
        r#"
[sip]
udp = ["127.0.0.1:0"]
[media]
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
[webrtc]
candidate_ips = ["127.0.0.1"]
[flows]
dir = "{flows}"
reload_poll_ms = 0
fixed_time = "2026-12-01T09:00:00Z"
[stt]
model = "{model}"
[understanding]
model = "{e5}"
required = true
[tts]
voices_dir = "{voices}"
onnxruntime = "{ort}"
[tts.cache]
dir = "{cache}"
[http]
listen = "127.0.0.1:0"
[integrations]
database_url = "sqlite:{db}"
[integrations.callbacks]
handoff = false
[records]
keep_transcripts = true
"#,
        rtp_min = 41_000 + (std::process::id() % 100) * 100,
        rtp_max = 41_000 + (std::process::id() % 100) * 100 + 98,
        flows = r.join("flows").display(),
        voices = r.join("voices").display(),
        ort = r.join("models/onnxruntime/libonnxruntime.so").display(),
        cache = r.join("target/e2e-tts-cache").display(),
        model = r.join("models/whisper-base/ggml-base-q8_0.bin").display(),
        e5 = r.join("models/e5-small/e5-small-q4.bin").display(),
        db = dir.join("ivr.db").display(),
    );
    EngineConfig::parse(&text).unwrap()
}

/// The caller for Chromium's fake microphone: the speech set's `da-koerekort-01`
/// followed by 6 s of silence (Chromium loops the file; the silence ends
/// each utterance, as a caller waiting for the answer would).
fn caller_wav(dir: &Path) -> PathBuf {
    let src = root().join("tests/vectors/speech/wav/da-koerekort-01.wav");
    let mut r = hound::WavReader::open(&src).unwrap();
    let spec = r.spec();
    let samples: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let out = dir.join("caller-da-koerekort-01.wav");
    let mut w = hound::WavWriter::create(&out, spec).unwrap();
    for s in samples
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0, spec.sample_rate as usize * 6))
    {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_to_the_danish_menu_is_routed_by_what_the_caller_said_and_hears_the_bot() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    assert!(
        root()
            .join("tests/console/node_modules/playwright-core")
            .is_dir(),
        "playwright-core missing: run `make setup` (scripts/setup/50-console-browser.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    let engine = ivr_engine::engine::start(engine_config(dir.path()))
        .await
        .unwrap();
    let http = engine.http.unwrap();
    let db = ivr_integrations::db::Db::connect(&format!(
        "sqlite:{}",
        dir.path().join("ivr.db").display()
    ))
    .await
    .unwrap();
    let password = "ring selv op 2026";
    Accounts::new(db.clone())
        .add_user(
            "nordby-op",
            password,
            &Scope::Municipality("nordby".into()),
            Role::Operator,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let shots = root().join("target/softphone-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut browser = tokio::process::Command::new("node")
        .arg(root().join("tests/console/softphone.mjs"))
        .env("IVR_BASE", format!("http://{http}"))
        .env("IVR_USER", "nordby-op")
        .env("IVR_PASSWORD", password)
        .env("IVR_SHOTS", &shots)
        .env("IVR_PROFILE", dir.path().join("chromium-profile"))
        .env("IVR_CALLER_WAV", caller_wav(dir.path()))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (make setup)");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut state = None;
    let mut done = false;
    let mut failed = None;
    let read = async {
        while let Some(l) = lines.next_line().await.unwrap() {
            eprintln!("browser: {l}");
            if l.starts_with("FAIL") {
                failed = Some(l.clone());
            }
            if let Some(j) = l.strip_prefix("STATE ") {
                state = Some(serde_json::from_str::<serde_json::Value>(j).unwrap());
            }
            done |= l == "DONE";
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(180), read).await;
    // What the engine heard, turn by turn (synthetic test speech), to read
    // beside a failure.
    for _ in 0..100 {
        if engine.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ivr_integrations::db::Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    let turns: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT input, step, intent, heard FROM call_turns ORDER BY call_ref, seq")
            .fetch_all(pool)
            .await
            .unwrap();
    for t in &turns {
        eprintln!("turn: {t:?}");
    }
    finished.expect("the browser test finishes within 3 minutes");
    assert_eq!(failed, None, "the browser test failed");
    assert!(done, "the browser script did not finish");
    assert!(browser.wait().await.unwrap().success());
    let state = state.expect("the page reported the debugger's view");
    assert_eq!(
        state["intent"], "koerekort",
        "routed by what was heard: {state}"
    );
    let step = state["step"].as_str().unwrap();
    assert!(
        !step.is_empty() && !step.starts_with("main/menu") && step != "main/welcome",
        "the flow moved past the menu: {state}"
    );
    assert_eq!(state["codec"], "opus", "{state}");
    // The page's hang-up ended the engine's call.
    for _ in 0..100 {
        if engine.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(engine.active_calls(), 0, "the call ended");
    engine.shutdown(Duration::from_secs(1)).await;
}
