//! The console's softphone in a real browser: headless Debian chromium
//! (driven by playwright-core, `tests/console/softphone.mjs`) logs in as a
//! Nordby operator, opens "Call this flow" and calls Nordby's Danish menu
//! over WebRTC (ICE-lite on loopback, DTLS-SRTP, Opus). Chromium's fake
//! microphone plays a caller's utterance from the speech test set
//! (`da-koerekort-01`: "Jeg vil gerne bestille tid til et kørekort."). The test
//! proves that the page received the bot's audio (an AnalyserNode on the
//! remote track), that the engine routed the call by what it heard (the
//! page's debugger shows the intent `koerekort` and a step past the menu),
//! that the page's flow debugger (server-sent events) shows what was heard
//! with its confidence, the intent scores, the steps and the turn timings,
//! that in a second, muted call a key on the page's keypad reaches the flow
//! (RFC 4733 from `RTCDTMFSender`: "2" is the menu's key for driving
//! licences), and that hanging up in the page ends the engine's call. Screenshots go to
//! `target/softphone-screenshots/`.
//!
//! A second test makes a draft of Nordby with a new welcome (through the API
//! with the page's session), calls the draft from the browser, and while that
//! call is up a SIPp call to Nordby's number: the browser call hears the
//! draft's welcome, the phone call the published one. Both tests check the
//! call records: browser calls write theirs as they go, as phone calls do,
//! marked `browser` or `draft` (origin), with `calling` naming the operator.
//!
//! Needs what `console_browser.rs` needs (chromium, node with
//! `tests/console/node_modules`, voices, whisper, onnxruntime: `make setup`).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ivr_engine::config::EngineConfig;
use ivr_engine::console::accounts::{Accounts, Role, Scope};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One chromium at a time: the two browser tests of this file share the
/// machine's two cores with an engine each.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
media_timeout_s = 120
# The SIPp caller of the draft test sends no RTP.
first_media_timeout_s = 0
[console]
drafts_dir = "{drafts}"
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
        drafts = dir.join("drafts").display(),
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
    let _one = BROWSER.lock().await;
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
    let mut keyed = None;
    let mut debug = None;
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
            if let Some(j) = l.strip_prefix("DEBUG ") {
                debug = Some(serde_json::from_str::<serde_json::Value>(j).unwrap());
            }
            if let Some(j) = l.strip_prefix("KEYED ") {
                keyed = Some(serde_json::from_str::<serde_json::Value>(j).unwrap());
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
    assert!(
        state["shown"].as_str().unwrap().starts_with("koerekort"),
        "the page shows the intent: {state}"
    );
    assert_eq!(state["codec"], "opus", "{state}");
    // The flow debugger (server-sent events) showed what was heard with its
    // confidence, the intent scores that chose the route, the steps, and the
    // turn's timings.
    let debug = debug.expect("the page reported the debugger's events");
    let heard = debug["heard"].as_array().unwrap();
    assert!(!heard.is_empty(), "{debug}");
    assert!(
        heard.iter().all(|h| {
            let c = h["confidence"].as_f64().unwrap();
            c > 0.0 && c <= 1.0 && h["words"].as_u64().unwrap() > 0
        }),
        "{debug}"
    );
    assert!(
        debug["explanations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("koerekort")),
        "the intent scores name the chosen intent: {debug}"
    );
    assert!(
        debug["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "main/menu"),
        "{debug}"
    );
    let turn = &debug["turns"][0];
    assert!(turn["latency_ms"].as_i64().unwrap() > 0, "{debug}");
    assert!(turn["stt_ms"].as_i64().unwrap() > 0, "{debug}");
    assert!(
        debug["shownHeard"].as_u64().unwrap() >= 1,
        "the page lists what was heard: {debug}"
    );
    assert!(
        debug["shownTurns"].as_u64().unwrap() >= 1,
        "the page lists the turn timings: {debug}"
    );
    // A second call, microphone muted: the on-screen keypad's "2" reached
    // the flow as a key (RFC 4733 from RTCDTMFSender through the peer
    // connection) and the menu took it as its key for driving licences.
    let keyed = keyed.expect("the page pressed a key in the second call");
    assert_eq!(keyed["keys"], "2", "{keyed}");
    assert_eq!(keyed["intent"], "koerekort", "{keyed}");
    assert_eq!(
        keyed["heard"], 0,
        "nothing was said in the muted call: {keyed}"
    );
    // The page cleared the first call's debugger: what it lists as heard is
    // this call's key only, not the first call's words.
    assert_eq!(keyed["shownHeard"], 1, "{keyed}");
    // The page's hang-up ended the engine's call.
    for _ in 0..100 {
        if engine.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(engine.active_calls(), 0, "the call ended");
    // Both calls are on record as the operator's browser test calls, with
    // their turns, as phone calls are.
    let records: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT outcome, origin, calling, turns FROM call_records ORDER BY started_at",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    for (outcome, origin, calling, turns) in &records {
        assert_eq!(
            (origin.as_str(), calling.as_str()),
            ("browser", "browser:nordby-op")
        );
        assert_ne!(outcome, "in_progress");
        assert!(*turns >= 1, "{records:?}");
    }
    assert!(
        turns
            .iter()
            .any(|(input, step, _, _)| input == "speech" && step == "main/menu"),
        "the spoken turn at the menu is in call_turns: {turns:?}"
    );
    engine.shutdown(Duration::from_secs(1)).await;
}

/// The engine with a Nordby operator: (engine, database, password).
async fn engine_with_operator(
    dir: &Path,
) -> (
    ivr_engine::engine::Running,
    ivr_integrations::db::Db,
    &'static str,
) {
    let engine = ivr_engine::engine::start(engine_config(dir)).await.unwrap();
    let db = ivr_integrations::db::Db::connect(&format!("sqlite:{}", dir.join("ivr.db").display()))
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
    (engine, db, password)
}

/// What the bot said first in each finished call, by call reference.
async fn first_said(db: &ivr_integrations::db::Db) -> Vec<(String, String)> {
    let ivr_integrations::db::Db::Sqlite(pool) = db else {
        unreachable!()
    };
    sqlx::query_as("SELECT call_ref, said FROM call_turns WHERE input = 'start' ORDER BY call_ref")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A call's record: (outcome, origin, calling).
async fn record_of(
    db: &ivr_integrations::db::Db,
    call_ref: &str,
) -> Option<(String, String, String)> {
    let ivr_integrations::db::Db::Sqlite(pool) = db else {
        unreachable!()
    };
    sqlx::query_as("SELECT outcome, origin, calling FROM call_records WHERE call_ref = $1")
        .bind(call_ref)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_to_a_draft_hears_the_draft_while_a_phone_call_at_the_same_time_hears_the_published_flow(
) {
    let _one = BROWSER.lock().await;
    let draft_welcome = "Velkommen til Nordby Kommune. Dette er en prøveversion.";
    let dir = tempfile::tempdir().unwrap();
    let (engine, db, password) = engine_with_operator(dir.path()).await;
    let http = engine.http.unwrap();
    let shots = root().join("target/softphone-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut browser = tokio::process::Command::new("node")
        .arg(root().join("tests/console/softphone_draft.mjs"))
        .env("IVR_BASE", format!("http://{http}"))
        .env("IVR_USER", "nordby-op")
        .env("IVR_PASSWORD", password)
        .env("IVR_SHOTS", &shots)
        .env("IVR_PROFILE", dir.path().join("chromium-profile"))
        .env("IVR_CALLER_WAV", caller_wav(dir.path()))
        .env("IVR_DRAFT_WELCOME", draft_welcome)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (make setup)");
    let mut to_browser = browser.stdin.take().unwrap();
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut draft_call = None;
    while let Some(l) = lines.next_line().await.unwrap() {
        eprintln!("browser: {l}");
        assert!(!l.starts_with("FAIL"), "the browser test failed: {l}");
        if let Some(c) = l.strip_prefix("CALL ") {
            draft_call = Some(c.to_string());
            break;
        }
    }
    let draft_call = draft_call.expect("the page placed the draft call");
    // While it is up, the draft call's record is written as it goes, as a
    // phone call's is: an `in_progress` row marked as a draft test call,
    // with its beginning in call_turns.
    let mut in_progress = None;
    for _ in 0..100 {
        in_progress = record_of(&db, &draft_call).await;
        if in_progress.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (outcome, origin, calling) =
        in_progress.expect("the draft call's record is written while it is up");
    assert_eq!(
        (outcome.as_str(), origin.as_str(), calling.as_str()),
        ("in_progress", "draft", "browser:nordby-op")
    );
    assert!(
        first_said(&db).await.iter().any(|(c, _)| *c == draft_call),
        "the draft call's first turn is in call_turns while it is up"
    );
    // A phone call to Nordby while the draft call is up.
    let sip = engine.sip_udp.unwrap();
    let d = dir.path().to_path_buf();
    let phone = tokio::spawn(async move { sipp_call(sip, &d, "silent_caller.xml").await });
    for _ in 0..100 {
        if engine.active_calls() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        engine.active_calls(),
        2,
        "the draft call and the phone call are up together"
    );
    to_browser.write_all(b"GO\n").await.unwrap();
    // Closed, so the script's reader lets node exit when it is done.
    drop(to_browser);
    let mut done = false;
    while let Some(l) = lines.next_line().await.unwrap() {
        eprintln!("browser: {l}");
        assert!(!l.starts_with("FAIL"), "the browser test failed: {l}");
        done |= l == "DONE";
    }
    assert!(done, "the browser script did not finish");
    assert!(browser.wait().await.unwrap().success());
    let (code, log) = phone.await.unwrap();
    assert_eq!(code, Some(0), "sipp: {log}");
    for _ in 0..100 {
        if engine.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let starts = first_said(&db).await;
    assert_eq!(starts.len(), 2, "{starts:?}");
    let (outcome, origin, _) = record_of(&db, &draft_call).await.unwrap();
    assert_eq!(origin, "draft");
    assert_ne!(
        outcome, "in_progress",
        "the draft call's record was completed"
    );
    for (call_ref, said) in &starts {
        if *call_ref == draft_call {
            assert!(
                said.contains(draft_welcome),
                "the draft call heard the draft: {said}"
            );
        } else {
            assert!(
                !said.contains("prøveversion") && said.contains("Velkommen til Nordby Kommune"),
                "the phone call heard the published welcome: {said}"
            );
            let (_, origin, _) = record_of(&db, call_ref).await.unwrap();
            assert_eq!(origin, "phone");
        }
    }
    engine.shutdown(Duration::from_secs(1)).await;
}

/// A SIPp call to Nordby playing `scenario` (`tests/calls/`): exit code and log.
async fn sipp_call(
    target: std::net::SocketAddr,
    dir: &Path,
    scenario: &str,
) -> (Option<i32>, String) {
    let inf = dir.join("callers.csv");
    std::fs::write(&inf, "SEQUENTIAL\n+4512345678;\n").unwrap();
    let (sip, media) = ivr_e2e::sipp_ports();
    let out = tokio::process::Command::new(ivr_e2e::sipp_binary())
        .arg(target.to_string())
        .args([
            "-sf",
            root().join("tests/calls").join(scenario).to_str().unwrap(),
        ])
        .args(["-s", "+4570101010", "-inf", inf.to_str().unwrap()])
        .args([
            "-m",
            "1",
            "-l",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            &sip.to_string(),
        ])
        .args(["-mi", "127.0.0.1", "-mp", &media.to_string()])
        .args(["-timeout", "150s", "-timeout_error", "-nostdin"])
        .current_dir(root().join("tests/calls"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("sipp runs (make setup installs sip-tester)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
