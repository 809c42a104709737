//! Real calls into the whole engine over loopback: SIPp places a call
//! (SIP over UDP, RTP with RFC 4733 keys or SIP INFO keys), the engine answers
//! with its flows, voices and integrations, and the test checks what the
//! outside world sees: the REFER's target and User-to-User context, the
//! callback row in SQLite, the call record, the BYE (SIPp's scenario fails
//! unless every expected message arrives and matches).
//!
//! The engine runs in-process (`ivr_engine::engine::start`, the same code as
//! `ivr serve`) at a fixed time inside opening hours (Tuesday 1 December
//! 2026, 10:00 Copenhagen), so transfers go through.
//!
//! Needs `sipp` (Debian `sip-tester`, installed by `make setup`) and the
//! voices/onnxruntime from `make setup`; fails clearly when they are missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ivr_engine::config::EngineConfig;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sipp_binary() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("sipp"))
                .find(|p| p.is_file())
        })
        .expect("sipp not found on PATH: install it with `make setup` (Debian package sip-tester)")
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Setup {
    dir: tempfile::TempDir,
    cfg: EngineConfig,
}

fn setup() -> Setup {
    setup_with_smtp(1)
}

fn setup_with_smtp(smtp_port: u16) -> Setup {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let r = root();
    assert!(
        r.join("models/onnxruntime/libonnxruntime.so").exists(),
        "models/onnxruntime missing: run `make setup`"
    );
    assert!(
        r.join("models/whisper-base/ggml-base-q8_0.bin").exists(),
        "models/whisper-base missing: run `make setup`"
    );
    // The TTS disk cache is shared between tests so the prompts are synthesised once.
    let cache = r.join("target/e2e-tts-cache");
    let text = format!(
        r#"
[sip]
udp = ["127.0.0.1:0"]
transfer_timeout_s = 5
[media]
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
# SIPp sends no RTP between its keys (SIP INFO); a phone would.
media_timeout_s = 120
[flows]
dir = "{flows}"
reload_poll_ms = 0
fixed_time = "2026-12-01T09:00:00Z"
[stt]
model = "{model}"
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
[integrations.mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
[integrations.mail.delivery]
poll_interval_ms = 200
"#,
        rtp_min = 30_000 + (std::process::id() % 100) * 200,
        rtp_max = 30_000 + (std::process::id() % 100) * 200 + 198,
        flows = r.join("flows").display(),
        voices = r.join("voices").display(),
        ort = r.join("models/onnxruntime/libonnxruntime.so").display(),
        cache = cache.display(),
        model = r.join("models/whisper-base/ggml-base-q8_0.bin").display(),
        db = dir.path().join("ivr.db").display(),
    );
    let cfg = EngineConfig::parse(&text).unwrap();
    Setup { dir, cfg }
}

struct SippRun {
    code: Option<i32>,
    messages: String,
    log: String,
}

async fn sipp(
    target: std::net::SocketAddr,
    scenario: &str,
    called: &str,
    caller: &str,
    dir: &Path,
) -> SippRun {
    let inf = dir.join("callers.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{caller};\n")).unwrap();
    let msgs = dir.join("messages.log");
    let errs = dir.join("errors.log");
    let out = tokio::process::Command::new(sipp_binary())
        .arg(target.to_string())
        .args([
            "-sf",
            root().join("tests/calls").join(scenario).to_str().unwrap(),
        ])
        .args(["-s", called])
        .args(["-inf", inf.to_str().unwrap()])
        .args(["-m", "1", "-l", "1"])
        .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &free_udp_port().to_string()])
        .args(["-timeout", "150s", "-timeout_error"])
        .args(["-trace_msg", "-message_file", msgs.to_str().unwrap()])
        .args(["-trace_err", "-error_file", errs.to_str().unwrap()])
        .args(["-nostdin"])
        .current_dir(root().join("tests/calls"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .expect("sipp runs");
    SippRun {
        code: out.status.code(),
        messages: std::fs::read_to_string(&msgs).unwrap_or_default(),
        log: format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&errs).unwrap_or_default()
        ),
    }
}

/// The key=value pairs of the User-to-User header in the REFER (RFC 7433 hex).
fn uui_fields(messages: &str) -> Vec<(String, String)> {
    let line = messages
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("user-to-user:"))
        .expect("REFER carries User-to-User");
    let value = line.split_once(':').unwrap().1.trim();
    ivr_integrations::transfer::decode_uui(value).expect("User-to-User decodes")
}

async fn sqlite_rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.try_get::<String, _>(i).unwrap_or_default())
                .collect()
        })
        .collect()
}

async fn wait_idle(engine: &ivr_engine::engine::Running) {
    for _ in 0..100 {
        if engine.active_calls() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("call did not finish in the engine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchboard_call_by_keypad_is_transferred_with_refer_and_context_then_bye() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "switchboard_keys_rfc4733.xml",
        "+4570101010",
        "+4512345678",
        s.dir.path(),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "sipp failed:\n{}\n{}",
        run.log,
        run.messages
    );
    let fields = uui_fields(&run.messages);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("dept"), Some("omstilling"), "{fields:?}");
    assert_eq!(get("lang"), Some("da"), "{fields:?}");
    assert_eq!(get("intent"), Some("medarbejder"), "{fields:?}");
    wait_idle(&engine).await;
    let rows = sqlite_rows(
        &s.dir.path().join("ivr.db"),
        "SELECT municipality, outcome, transferred_to, calling FROM call_records",
    )
    .await;
    assert_eq!(rows.len(), 1, "one call record");
    assert_eq!(rows[0][0], "nordby");
    assert_eq!(rows[0][1], "transferred");
    assert_eq!(rows[0][3], "+4512345678");
    let m = engine.metrics.render(0);
    assert!(
        m.contains("ivr_calls_total{municipality=\"nordby\",outcome=\"transferred\"} 1"),
        "{m}"
    );
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_call_by_sip_info_keys_stores_the_request_and_says_goodbye() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "callback_keys_info.xml",
        "+4570101010",
        "+4587654321",
        s.dir.path(),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "sipp failed:\n{}\n{}",
        run.log,
        run.messages
    );
    wait_idle(&engine).await;
    let db = s.dir.path().join("ivr.db");
    let rows = sqlite_rows(
        &db,
        "SELECT municipality, phone, state FROM callback_requests",
    )
    .await;
    assert_eq!(rows.len(), 1, "one callback request: {rows:?}");
    assert_eq!(rows[0][0], "nordby");
    assert!(
        rows[0][1].ends_with("87654321"),
        "callback to the caller's number, got {:?}",
        rows[0][1]
    );
    let rec = sqlite_rows(&db, "SELECT outcome FROM call_records").await;
    assert_eq!(rec, vec![vec!["callback_ordered".to_string()]]);
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchboard_call_by_danish_speech_is_recognised_and_transferred_to_the_benefits_queue() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "switchboard_speech_da.xml",
        "+4570101010",
        "+4512345678",
        s.dir.path(),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "sipp failed:\n{}\n{}",
        run.log,
        run.messages
    );
    let fields = uui_fields(&run.messages);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("dept"), Some("ydelser"), "{fields:?}");
    assert_eq!(get("intent"), Some("ydelser"), "{fields:?}");
    wait_idle(&engine).await;
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_call_by_keys_books_a_passport_slot_at_the_frontdesk_standin() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "booking_keys_info.xml",
        "+4570101010",
        "+4522334455",
        s.dir.path(),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "sipp failed:\n{}\n{}",
        run.log,
        run.messages
    );
    wait_idle(&engine).await;
    let fd = engine
        .frontdesk_standin
        .as_ref()
        .expect("stand-in started in-process");
    assert_eq!(fd.booking_count(), 1, "one booking at Frontdesk");
    let rec = sqlite_rows(
        &s.dir.path().join("ivr.db"),
        "SELECT outcome FROM call_records",
    )
    .await;
    assert_eq!(rec, vec![vec!["booked".to_string()]]);
    engine.shutdown(Duration::from_secs(1)).await;
}

// Not finished: tests/calls/jobcentre_cancel_speech_da.xml (key 4, then the
// name by speech) reaches the job-centre flow, but the flow re-asks for the
// name after whisper's transcript of "Mit navn er Karen Hansen", so the mail
// step is never reached; the test is left out until that is understood.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_says_and_presses_nothing_is_offered_keys_then_put_through_to_a_human() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "silent_caller.xml",
        "+4570101010",
        "+4512121212",
        s.dir.path(),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "sipp failed:\n{}\n{}",
        run.log,
        run.messages
    );
    assert!(
        run.messages
            .contains("Refer-To: <sip:omstilling@puzzel.nordby.example>"),
        "the silent caller ends at the switchboard"
    );
    wait_idle(&engine).await;
    let rec = sqlite_rows(
        &s.dir.path().join("ivr.db"),
        "SELECT outcome, steps FROM call_records",
    )
    .await;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0][0], "transferred");
    assert!(
        rec[0][1].contains("main/menu_keys"),
        "keys were offered first: {}",
        rec[0][1]
    );
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_caller_switches_language_by_speech_and_is_transferred_with_lang_en() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "switchboard_speech_en.xml",
        "+4570101010",
        "+4512345678",
        s.dir.path(),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "sipp failed:\n{}\n{}",
        run.log,
        run.messages
    );
    let fields = uui_fields(&run.messages);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("dept"), Some("ydelser"), "{fields:?}");
    assert_eq!(get("lang"), Some("en"), "{fields:?}");
    wait_idle(&engine).await;
    engine.shutdown(Duration::from_secs(1)).await;
}
