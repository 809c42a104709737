//! The operator console in a real browser, with a real call: the engine runs
//! in-process (as in `ivr_calls.rs`), headless Debian chromium driven by
//! playwright-core (`tests/console/console.mjs`, installed by
//! `scripts/setup/50-console-browser.sh`) logs in as a Nordby operator, sees
//! only Nordby, sets a crisis announcement; then SIPp places a call to
//! Nordby, which the browser sees on the live page; after it the KPI page
//! counts it and its transcript shows the announcement said before the
//! menu; the browser clears the announcement. Screenshots of every page go
//! to `target/console-screenshots/`.
//!
//! Needs `chromium`, `node` with `tests/console/node_modules`, `sipp`, the
//! voices, whisper model and onnxruntime (all from `make setup`).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ivr_engine::config::EngineConfig;
use ivr_engine::console::accounts::{Accounts, Role, Scope};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ANNOUNCEMENT_DA: &str = "Vigtig besked: vandforsyningen er afbrudt i hele Nordby i dag.";

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
transfer_timeout_s = 5
[media]
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
media_timeout_s = 120
# SIPp's keypad scenarios send no RTP at all (keys by SIP INFO).
first_media_timeout_s = 0
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
        rtp_min = 40_000 + (std::process::id() % 100) * 100,
        rtp_max = 40_000 + (std::process::id() % 100) * 100 + 98,
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

/// A free block of four UDP ports for SIPp's media (it binds audio and
/// video RTP/RTCP from `-mp`), and a SIP port above them.
fn sipp_ports() -> (u16, u16) {
    for base in (20_000u16..29_000)
        .step_by(10)
        .skip((std::process::id() % 400) as usize)
    {
        if (0..6).all(|i| std::net::UdpSocket::bind(("127.0.0.1", base + i)).is_ok()) {
            return (base + 4, base);
        }
    }
    panic!("no free ports for SIPp");
}

/// A SIPp call to Nordby from `caller` playing `scenario` (`tests/calls/`):
/// SIPp's exit code and its log.
async fn sipp_call(
    target: std::net::SocketAddr,
    dir: &Path,
    scenario: &str,
    caller: &str,
) -> (Option<i32>, String) {
    let inf = dir.join("callers.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{caller};\n")).unwrap();
    let (sip, media) = sipp_ports();
    let out = tokio::process::Command::new("sipp")
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

/// The browser script's next `STEP`, with every `ok` line echoed.
async fn until_step(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    want: &str,
) {
    while let Some(l) = lines.next_line().await.unwrap() {
        eprintln!("browser: {l}");
        if l == format!("STEP {want}") {
            return;
        }
        assert!(!l.starts_with("FAIL"), "the browser test failed: {l}");
    }
    panic!("the browser script ended before step {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nordby_operator_sets_an_announcement_a_real_call_hears_it_and_shows_live_then_in_the_kpis(
) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let script = root().join("tests/console/console.mjs");
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
    // The account, as `ivr admin add-user` makes it.
    let db = ivr_integrations::db::Db::connect(&format!(
        "sqlite:{}",
        dir.path().join("ivr.db").display()
    ))
    .await
    .unwrap();
    let password = "vandet er væk 2026";
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
    let shots = root().join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = dir.path().join("chromium-profile");
    let mut browser = tokio::process::Command::new("node")
        .arg(&script)
        .env("IVR_BASE", format!("http://{http}"))
        .env("IVR_USER", "nordby-op")
        .env("IVR_PASSWORD", password)
        .env("IVR_SHOTS", &shots)
        .env("IVR_PROFILE", &profile)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (make setup)");
    let mut to_browser = browser.stdin.take().unwrap();
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();

    until_step(&mut lines, "announced").await;
    // A real call, now.
    let call = {
        let (target, d) = (engine.sip_udp.unwrap(), dir.path().to_path_buf());
        // A silent caller: the call lasts through the menu's re-prompts until
        // the flow transfers it, long enough to be seen live.
        tokio::spawn(async move { sipp_call(target, &d, "silent_caller.xml", "+4512345678").await })
    };
    for _ in 0..100 {
        if engine.active_calls() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(engine.active_calls(), 1, "the call is up");
    to_browser.write_all(b"GO\n").await.unwrap();
    until_step(&mut lines, "seen-live").await;
    let (code, log) = call.await.unwrap();
    assert_eq!(code, Some(0), "sipp: {log}");
    for _ in 0..100 {
        if engine.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What the caller heard first, from the call's record: the announcement,
    // then the flow's welcome and menu.
    let ivr_integrations::db::Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    let (said,): (String,) = sqlx::query_as("SELECT said FROM call_turns WHERE input = 'start'")
        .fetch_one(pool)
        .await
        .unwrap();
    let said: Vec<serde_json::Value> = serde_json::from_str(&said).unwrap();
    assert_eq!(
        said.first(),
        Some(&serde_json::json!({"text": ANNOUNCEMENT_DA, "personal": false})),
        "{said:?}"
    );
    assert!(
        said.len() >= 2,
        "the menu follows the announcement: {said:?}"
    );
    to_browser.write_all(b"GO 1\n").await.unwrap();
    until_step(&mut lines, "cleared").await;
    // Cleared: the next call, which orders a callback by keys, starts with the flow itself.
    let (code, log) = sipp_call(
        engine.sip_udp.unwrap(),
        dir.path(),
        "callback_keys_info.xml",
        "+4587654321",
    )
    .await;
    assert_eq!(code, Some(0), "sipp: {log}");
    for _ in 0..100 {
        if engine.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let starts: Vec<(String,)> =
        sqlx::query_as("SELECT said FROM call_turns WHERE input = 'start' ORDER BY said")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(starts.len(), 2);
    assert_eq!(
        starts
            .iter()
            .filter(|(s,)| s.contains(ANNOUNCEMENT_DA))
            .count(),
        1,
        "only the first call heard the announcement: {starts:?}"
    );
    to_browser.write_all(b"GO 2\n").await.unwrap();
    let mut done = false;
    while let Some(l) = lines.next_line().await.unwrap() {
        eprintln!("browser: {l}");
        assert!(!l.starts_with("FAIL"), "the browser test failed: {l}");
        done |= l == "DONE";
    }
    assert!(done, "the browser script did not finish");
    assert!(browser.wait().await.unwrap().success());
    // Cleared: a new call starts with the flow itself.
    let route = ivr_engine::console::announce::Announcements::default();
    route.refresh(&db).await.unwrap();
    assert!(route.get("nordby", chrono::Utc::now()).is_none());
    engine.shutdown(Duration::from_secs(1)).await;
}
