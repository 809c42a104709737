//! Real calls into the whole engine over loopback: SIPp places a call
//! (SIP over UDP, RTP with RFC 4733 keys or SIP INFO keys), the engine answers
//! with its flows, voices and integrations, and the test checks what the
//! outside world sees: the REFER's target and User-to-User context, the
//! callback row in SQLite, the booking at the Frontdesk stand-in, the mail at
//! a real SMTP server (aiosmtpd, `crates/ivr-integrations/tests/support/smtp_sink.py`),
//! the call record, the BYE (SIPp's scenario fails unless every expected
//! message arrives and matches). Two tests play the caller's media from the
//! test itself (`RtpPeer`): the prompts as heard, transcribed back with
//! whisper, and a caller talking over the welcome.
//!
//! The engine runs in-process (`ivr_engine::engine::start`, the same code as
//! `ivr serve`) at a fixed time inside opening hours (Tuesday 1 December
//! 2026, 10:00 Copenhagen), so transfers go through.
//!
//! Needs `sipp` (Debian `sip-tester`), `python3` with aiosmtpd, and the
//! voices, whisper model and onnxruntime, all from `make setup`; fails
//! clearly when they are missing. Scenarios and audio: `tests/calls/README.md`.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use ivr_e2e::{sipp_binary, sipp_ports, SmtpSink};
use ivr_engine::config::EngineConfig;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Setup {
    dir: tempfile::TempDir,
    cfg: EngineConfig,
}

/// Every log line of every call in this binary, at debug level (the
/// log-hygiene check reads it); warnings and errors also go to the test's
/// own output.
static LOG: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// A log writer: the line into [`LOG`], and, for warnings and errors, into
/// the test harness's captured output too.
struct Tee {
    echo: bool,
}

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        if self.echo {
            eprint!("{}", String::from_utf8_lossy(buf));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct TeeWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TeeWriter {
    type Writer = Tee;
    fn make_writer(&'a self) -> Tee {
        Tee { echo: false }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Tee {
        Tee {
            echo: *meta.level() <= tracing::Level::WARN,
        }
    }
}

/// What the test callers give that is personal: their numbers (as sent and
/// as national digits), the CPR number keyed, the name said, the words of
/// the name utterances. None may appear in any log line (issue 14: the
/// log-hygiene test). Checked after every test, over the log of all calls
/// so far, so the last test to finish has seen every call.
const PERSONAL: [&str; 20] = [
    "+4512345678",
    "12345678",
    "+4587654321",
    "87654321",
    "+4522334455",
    "22334455",
    "+4512121212",
    "12121212",
    "+4523232323",
    "23232323",
    "+4534343434",
    "34343434",
    "+4545454545",
    "45454545",
    "+4556565656",
    "56565656",
    "0102031234",
    "010203-1234",
    "karen",
    "hansen",
];

impl Drop for Setup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let log =
            String::from_utf8_lossy(&LOG.lock().unwrap_or_else(|p| p.into_inner())).to_lowercase();
        assert!(log.len() > 1000, "the debug log was not captured");
        for line in log.lines() {
            for p in PERSONAL {
                assert!(
                    !line.contains(p) && !line.contains("my name is") && !line.contains("mit navn"),
                    "personal data `{p}` in a log line: {line}"
                );
            }
        }
    }
}

fn setup() -> Setup {
    setup_with_smtp(1)
}

fn setup_with_smtp(smtp_port: u16) -> Setup {
    // Debug level for everything: the log-hygiene check (Setup's drop)
    // reads every line. onnxruntime's per-node lines say nothing of calls.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug,ort=warn"))
        .with_writer(TeeWriter)
        .with_ansi(false)
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
    assert!(
        r.join("models/turn/smart-turn-v3.2-cpu.onnx").exists()
            && r.join("models/turn/silero_vad.onnx").exists(),
        "models/turn missing: run `make setup`"
    );
    assert!(
        r.join("models/e5-small/e5-small-q4.bin").exists(),
        "models/e5-small missing: run `make setup`"
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
# SIPp sends no RTP between its keys (SIP INFO), nor before its first
# one; a phone would.
media_timeout_s = 120
first_media_timeout_s = 0
[flows]
dir = "{flows}"
reload_poll_ms = 0
fixed_time = "2026-12-01T09:00:00Z"
[stt]
model = "{model}"
# Fixed-timing calls on a loaded test machine: one whisper thread always
# (the idle-core threads are measured in benches/latency.rs).
idle_threads = 1
# The default end of turn (Silero VAD, Smart Turn), with the models found
# from the workspace root.
[turn]
silero_model = "{silero}"
smart_turn_model = "{smart}"
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
[integrations.mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
[integrations.mail.delivery]
poll_interval_ms = 200
[records]
keep_transcripts = true
"#,
        rtp_min = 30_000 + (std::process::id() % 100) * 200,
        rtp_max = 30_000 + (std::process::id() % 100) * 200 + 198,
        flows = r.join("flows").display(),
        voices = r.join("voices").display(),
        ort = r.join("models/onnxruntime/libonnxruntime.so").display(),
        cache = cache.display(),
        model = r.join("models/whisper-base/ggml-base-q8_0.bin").display(),
        silero = r.join("models/turn/silero_vad.onnx").display(),
        smart = r.join("models/turn/smart-turn-v3.2-cpu.onnx").display(),
        e5 = r.join("models/e5-small/e5-small-q4.bin").display(),
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
    sipp_with_fields(target, scenario, called, &[caller], dir).await
}

/// SIPp with more `-inf` fields: `[field0]` is the caller, `[field1]`... as given.
async fn sipp_with_fields(
    target: std::net::SocketAddr,
    scenario: &str,
    called: &str,
    fields: &[&str],
    dir: &Path,
) -> SippRun {
    let inf = dir.join("callers.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{};\n", fields.join(";"))).unwrap();
    let msgs = dir.join("messages.log");
    let errs = dir.join("errors.log");
    let (sip_port, media_port) = sipp_ports();
    let out = tokio::process::Command::new(sipp_binary())
        .arg(target.to_string())
        .args([
            "-sf",
            root().join("tests/calls").join(scenario).to_str().unwrap(),
        ])
        .args(["-s", called])
        .args(["-inf", inf.to_str().unwrap()])
        .args(["-m", "1", "-l", "1"])
        .args(["-i", "127.0.0.1", "-p", &sip_port.to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
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
    let m = engine
        .metrics
        .render(ivr_engine::metrics::Sampled::default());
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

/// Fails with SIPp's log, and what the engine recorded of the call (steps,
/// transcript), when the scenario did not run to its end.
async fn assert_sipp_ok(run: &SippRun, db: &Path) {
    if run.code != Some(0) {
        let rec = if db.exists() {
            sqlite_rows(db, "SELECT outcome, steps, transcript FROM call_records").await
        } else {
            Vec::new()
        };
        panic!(
            "sipp failed ({:?}); call record: {rec:?}\n{}\n{}",
            run.code, run.log, run.messages
        );
    }
}

/// The one call record: (call_ref, outcome, lang, steps, transcript).
/// A question from the knowledge question set, asked by speech at the menu
/// (English: whisper base does not hear espeak-ng's Danish well enough, see
/// tests/calls/README.md): the engine reads Nordby's answer, the caller says
/// it did not help (key 2) and is put through to the entry's department; the
/// call record names the entry and the caller's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_in_english_is_answered_from_the_knowledge_base_then_routed_to_its_department() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "knowledge_question_en.xml",
        "+4570101010",
        "+4523232323",
        s.dir.path(),
    )
    .await;
    wait_idle(&engine).await;
    let db = s.dir.path().join("ivr.db");
    assert_sipp_ok(&run, &db).await;
    let fields = uui_fields(&run.messages);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("dept"), Some("borgerservice"), "{fields:?}");
    assert_eq!(get("lang"), Some("en"), "{fields:?}");
    let (_, outcome, lang, steps, transcript) = the_call_record(&db).await;
    assert_eq!(
        outcome, "transferred",
        "steps: {steps}\nheard: {transcript}"
    );
    assert_eq!(lang, "en");
    let rows = sqlite_rows(&db, "SELECT questions FROM call_records").await;
    assert_eq!(
        rows[0][0], r#"[{"confirmed":false,"entry":"pas-pris"}]"#,
        "heard: {transcript}"
    );
    engine.shutdown(Duration::from_secs(1)).await;
}

/// A question the knowledge base does not hold is declined, not guessed:
/// the caller hears so and is put through to the switchboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_scope_question_is_declined_and_put_through_to_the_switchboard() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "knowledge_out_of_scope_en.xml",
        "+4570101010",
        "+4524242424",
        s.dir.path(),
    )
    .await;
    wait_idle(&engine).await;
    let db = s.dir.path().join("ivr.db");
    assert_sipp_ok(&run, &db).await;
    let fields = uui_fields(&run.messages);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("dept"), Some("omstilling"), "{fields:?}");
    let (_, outcome, _, steps, transcript) = the_call_record(&db).await;
    assert_eq!(
        outcome, "transferred",
        "steps: {steps}\nheard: {transcript}"
    );
    assert!(
        steps.contains("main/question_not_answered"),
        "the flow's decline step: {steps}"
    );
    let rows = sqlite_rows(&db, "SELECT questions FROM call_records").await;
    assert_eq!(
        rows[0][0], r#"[{"confirmed":null,"entry":null}]"#,
        "heard: {transcript}"
    );
    engine.shutdown(Duration::from_secs(1)).await;
}

async fn the_call_record(db: &Path) -> (String, String, String, String, String) {
    let rows = sqlite_rows(
        db,
        "SELECT call_ref, outcome, lang, steps, COALESCE(transcript, '') FROM call_records",
    )
    .await;
    assert_eq!(rows.len(), 1, "one call record: {rows:?}");
    let r = &rows[0];
    (
        r[0].clone(),
        r[1].clone(),
        r[2].clone(),
        r[3].clone(),
        r[4].clone(),
    )
}

fn body_line<'a>(body: &'a str, label: &str) -> &'a str {
    body.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` line in the mail:\n{body}"))
        .trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobcentre_cancellation_in_danish_mails_name_masked_cpr_and_appointment_to_the_job_centre()
{
    let tmp = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(tmp.path());
    let s = setup_with_smtp(sink.port);
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "jobcentre_cancel_speech_da.xml",
        "+4570101010",
        "+4523232323",
        s.dir.path(),
    )
    .await;
    assert_sipp_ok(&run, &s.dir.path().join("ivr.db")).await;
    wait_idle(&engine).await;
    let db = s.dir.path().join("ivr.db");
    let (call_ref, outcome, lang, steps, transcript) = the_call_record(&db).await;
    assert_eq!(outcome, "mail_sent", "steps: {steps}");
    assert_eq!(lang, "da");
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "one mail at the SMTP sink: {mails:?}");
    let m = &mails[0];
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["jobcenter@nordby.example"])
    );
    assert_eq!(m["subject"], "Aflysning af aftale 03-12-2026");
    let body = m["body"].as_str().unwrap();
    // The name is what whisper heard (base hears "Mit navn er Karen
    // Hansen" in an English accent as "Mitt navn Irkaren Hansen"); the mail
    // carries exactly the transcript the call record kept, and it is not
    // empty. The name is the call's only spoken answer, and its first speech
    // turn: when whisper takes the accent for English, the same audio is
    // recognised again in Danish, so the record keeps two lines and the
    // name is the last.
    let heard_name = transcript.lines().last().unwrap_or_default().trim();
    assert!(!heard_name.is_empty(), "the name was heard: {transcript:?}");
    assert_eq!(
        body_line(body, "Navn:"),
        heard_name,
        "{body}\nheard: {transcript:?}\nsteps: {steps}"
    );
    assert_eq!(body_line(body, "CPR-nummer:"), "010203-XXXX", "{body}");
    assert!(
        !body.contains("0102031234"),
        "full CPR in the mail:\n{body}"
    );
    assert_eq!(body_line(body, "Aftale:"), "03-12-2026 kl. 10:30", "{body}");
    assert!(body_line(body, "Telefon:").ends_with("23232323"), "{body}");
    assert_eq!(body_line(body, "Sprog:"), "da", "{body}");
    assert_eq!(body_line(body, "Opkaldsreference:"), call_ref, "{body}");
    // The recipient can also match the mail to the call by its Message-ID.
    assert!(m["message_id"].as_str().unwrap().contains(&call_ref), "{m}");
    let outbox = sqlite_rows(&db, "SELECT kind, state FROM mail_outbox").await;
    assert_eq!(
        outbox,
        vec![vec![
            "jobcentre_cancellation".to_string(),
            "sent".to_string()
        ]]
    );
    assert!(run.messages.contains("BYE sip:"), "the engine hung up");
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobcentre_cancellation_in_english_by_speech_mails_the_job_centre_with_lang_en() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(tmp.path());
    let s = setup_with_smtp(sink.port);
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "jobcentre_cancel_speech_en.xml",
        "+4570101010",
        "+4534343434",
        s.dir.path(),
    )
    .await;
    wait_idle(&engine).await;
    let db = s.dir.path().join("ivr.db");
    assert_sipp_ok(&run, &s.dir.path().join("ivr.db")).await;
    let (call_ref, outcome, lang, steps, transcript) = the_call_record(&db).await;
    assert_eq!(outcome, "mail_sent", "steps: {steps}\nheard: {transcript}");
    assert_eq!(lang, "en");
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "one mail at the SMTP sink: {mails:?}");
    let m = &mails[0];
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["jobcenter@nordby.example"])
    );
    let body = m["body"].as_str().unwrap();
    let name = body_line(body, "Navn:").to_lowercase();
    assert!(name.contains("karen"), "{body}");
    assert_eq!(body_line(body, "CPR-nummer:"), "010203-XXXX", "{body}");
    // "The 15th of March at 9 o'clock" answers the day (next March) and,
    // said already, the time: the time question is not asked, so "Next
    // Tuesday at half past ten" meets the final confirmation, which does not
    // take it (not a yes or no), and "Yes, that is correct" confirms 9:00.
    assert_eq!(body_line(body, "Aftale:"), "15-03-2027 kl. 09:00", "{body}");
    assert!(body_line(body, "Telefon:").ends_with("34343434"), "{body}");
    assert_eq!(body_line(body, "Sprog:"), "en", "{body}");
    assert_eq!(body_line(body, "Call reference:"), call_ref, "{body}");
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_in_english_by_speech_stores_the_request_with_lang_en() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "callback_speech_en.xml",
        "+4570101010",
        "+4545454545",
        s.dir.path(),
    )
    .await;
    wait_idle(&engine).await;
    let db = s.dir.path().join("ivr.db");
    assert_sipp_ok(&run, &s.dir.path().join("ivr.db")).await;
    let (_, outcome, lang, steps, transcript) = the_call_record(&db).await;
    assert_eq!(
        outcome, "callback_ordered",
        "steps: {steps}\nheard: {transcript}"
    );
    assert_eq!(lang, "en");
    let rows = sqlite_rows(
        &db,
        "SELECT municipality, phone, lang, topic, state FROM callback_requests",
    )
    .await;
    assert_eq!(rows.len(), 1, "one callback request: {rows:?}");
    assert_eq!(rows[0][0], "nordby");
    assert!(rows[0][1].ends_with("45454545"), "{rows:?}");
    assert_eq!(rows[0][2], "en");
    assert_eq!(rows[0][3], "borgerservice");
    assert_eq!(rows[0][4], "requested", "queued for an agent");
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_in_english_books_the_second_passport_slot_at_the_frontdesk_standin() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "booking_speech_en.xml",
        "+4570101010",
        "+4556565656",
        s.dir.path(),
    )
    .await;
    wait_idle(&engine).await;
    let db = s.dir.path().join("ivr.db");
    assert_sipp_ok(&run, &s.dir.path().join("ivr.db")).await;
    let (_, outcome, lang, steps, transcript) = the_call_record(&db).await;
    assert_eq!(outcome, "booked", "steps: {steps}\nheard: {transcript}");
    assert_eq!(lang, "en");
    let fd = engine
        .frontdesk_standin
        .as_ref()
        .expect("stand-in started in-process");
    let held = fd.bookings();
    assert_eq!(held.len(), 1, "one booking at Frontdesk: {held:?}");
    let b = &held[0];
    assert_eq!(b.municipality, "nordby");
    assert_eq!(b.booking.queue_id, "pas");
    assert!(b.phone.expose().ends_with("56565656"));
    assert_eq!(
        b.cpr.as_ref().map(|c| c.expose().as_str()),
        Some("0102031234")
    );
    assert!(
        b.booking.start > chrono_now_fixed(),
        "a future slot: {:?}",
        b.booking.start
    );
    assert!(steps.contains("booking/pick2"), "the second slot: {steps}");
    engine.shutdown(Duration::from_secs(1)).await;
}

/// The engine's fixed clock in these tests (`[flows] fixed_time`).
fn chrono_now_fixed() -> chrono::DateTime<chrono::Utc> {
    "2026-12-01T09:00:00Z".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_pressing_wrong_keys_twice_is_put_through_to_borgerservice_with_context() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let run = sipp(
        engine.sip_udp.unwrap(),
        "wrong_keys_da.xml",
        "+4570101010",
        "+4567676767",
        s.dir.path(),
    )
    .await;
    assert_sipp_ok(&run, &s.dir.path().join("ivr.db")).await;
    let fields = uui_fields(&run.messages);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("dept"), Some("borgerservice"), "{fields:?}");
    assert_eq!(get("intent"), Some("booking"), "{fields:?}");
    assert_eq!(get("queue"), Some("pas"), "{fields:?}");
    wait_idle(&engine).await;
    let db = s.dir.path().join("ivr.db");
    let (_, outcome, _, steps, _) = the_call_record(&db).await;
    assert_eq!(outcome, "transferred");
    assert!(steps.contains("booking/book_or_cancel"), "{steps}");
    assert!(steps.contains("booking/to_borgerservice"), "{steps}");
    let fd = engine.frontdesk_standin.as_ref().unwrap();
    assert_eq!(fd.booking_count(), 0, "nothing booked");
    engine.shutdown(Duration::from_secs(1)).await;
}

/// The caller's media side played by the test itself: one UDP socket that
/// the SDP points at (SIPp only signals). It records every PCMA packet the
/// engine sends (arrival time, payload) and sends the caller's speech (the
/// A-law payloads of a `make_pcap.py` pcap) and RFC 4733 keys back to the
/// address the engine's audio comes from, paced at 20 ms like a phone.
struct RtpPeer {
    sock: std::sync::Arc<tokio::net::UdpSocket>,
    heard: std::sync::Arc<std::sync::Mutex<Heard>>,
    engine: std::sync::Arc<std::sync::Mutex<Option<std::net::SocketAddr>>>,
    seq: u16,
    ts: u32,
    recv: tokio::task::JoinHandle<()>,
}

/// PCMA payloads received from the engine, with their arrival time.
type Heard = Vec<(std::time::Instant, Vec<u8>)>;

/// Below this RMS (16-bit linear) a 20 ms packet counts as silence (about -50 dBFS).
const LOUD_RMS: f64 = 100.0;

fn alaw_rms(payload: &[u8]) -> f64 {
    let mut pcm = vec![0i16; payload.len()];
    ivr_media::g711::decode_alaw(payload, &mut pcm);
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len().max(1) as f64).sqrt()
}

/// The RTP payloads of a pcap written by `make_pcap.py` (Ethernet, IPv4, UDP, RTP).
fn pcap_payloads(path: &Path) -> Vec<Vec<u8>> {
    let d = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let caplen = u32::from_le_bytes(d[off + 8..off + 12].try_into().unwrap()) as usize;
        let frame = &d[off + 16..off + 16 + caplen];
        out.push(frame[14 + 20 + 8 + 12..].to_vec());
        off += 16 + caplen;
    }
    out
}

impl RtpPeer {
    async fn bind() -> RtpPeer {
        let sock = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let engine = std::sync::Arc::new(std::sync::Mutex::new(None));
        let recv = {
            let (sock, heard, engine) = (sock.clone(), heard.clone(), engine.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                    let p = &buf[..n];
                    if n < 12 || p[0] >> 6 != 2 {
                        continue;
                    }
                    let start = 12 + 4 * usize::from(p[0] & 0x0f);
                    if p[1] & 0x7f == 8 && n > start {
                        *engine.lock().unwrap() = Some(from);
                        heard
                            .lock()
                            .unwrap()
                            .push((std::time::Instant::now(), p[start..].to_vec()));
                    }
                }
            })
        };
        RtpPeer {
            sock,
            heard,
            engine,
            seq: 4000,
            ts: 80_000,
            recv,
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    fn heard(&self) -> Heard {
        self.heard.lock().unwrap().clone()
    }

    /// Waits for the engine's next prompt after `after`: the first loud
    /// packet, then until `quiet` passes without one. Returns (first, last)
    /// loud packet times.
    async fn next_prompt(
        &self,
        after: std::time::Instant,
        quiet: Duration,
        max: Duration,
    ) -> (std::time::Instant, std::time::Instant) {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let loud: Vec<std::time::Instant> = self
                .heard()
                .iter()
                .filter(|(t, p)| *t >= after && alaw_rms(p) > LOUD_RMS)
                .map(|(t, _)| *t)
                .collect();
            if let (Some(first), Some(last)) = (loud.first(), loud.last()) {
                if last.elapsed() >= quiet {
                    return (*first, *last);
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no complete prompt from the engine within {max:?} (loud packets so far: {})",
                loud.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn send_rtp(&mut self, pt: u8, marker: bool, ts: u32, payload: &[u8]) {
        let to = self
            .engine
            .lock()
            .unwrap()
            .expect("the engine sent audio first");
        let mut pkt = vec![0x80, (u8::from(marker) << 7) | pt];
        pkt.extend_from_slice(&self.seq.to_be_bytes());
        pkt.extend_from_slice(&ts.to_be_bytes());
        pkt.extend_from_slice(&0x5EED_CA11u32.to_be_bytes());
        pkt.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.sock.send_to(&pkt, to).await.unwrap();
    }

    /// Says the speech in `pcap` (tests/calls/pcap); returns when the last
    /// packet is sent, with the time the first one went out.
    async fn say(&mut self, pcap: &str) -> std::time::Instant {
        let payloads = pcap_payloads(&root().join("tests/calls").join(pcap));
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let started = std::time::Instant::now();
        for (i, p) in payloads.iter().enumerate() {
            tick.tick().await;
            let ts = self.ts;
            self.send_rtp(8, i == 0, ts, p).await;
            self.ts = self.ts.wrapping_add(p.len() as u32);
        }
        started
    }

    /// Presses `key` (RFC 4733, 100 ms, three end packets).
    async fn press(&mut self, key: u8) {
        let start = self.ts;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for i in 1..=8u16 {
            tick.tick().await;
            let end = i >= 6;
            let dur = 160 * i.min(5);
            let payload = [
                key,
                if end { 0x80 | 10 } else { 10 },
                (dur >> 8) as u8,
                dur as u8,
            ];
            self.send_rtp(101, i == 1, start, &payload).await;
        }
        self.ts = self.ts.wrapping_add(800);
    }
}

impl Drop for RtpPeer {
    fn drop(&mut self) {
        self.recv.abort();
    }
}

/// Decodes the engine's PCMA between two instants to 16 kHz PCM for whisper.
fn heard_pcm(
    heard: &[(std::time::Instant, Vec<u8>)],
    from: std::time::Instant,
    to: std::time::Instant,
) -> ivr_core::Pcm {
    let mut pcm = Vec::new();
    for (_, p) in heard.iter().filter(|(t, _)| *t >= from && *t <= to) {
        let mut buf = vec![0i16; p.len()];
        ivr_media::g711::decode_alaw(p, &mut buf);
        pcm.extend_from_slice(&buf);
    }
    ivr_media::resample::resample(&ivr_core::Pcm::new(8000, pcm), 16_000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hears_the_greeting_and_after_english_please_the_english_menu_prompt() {
    use ivr_stt::SpeechToText;
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let mut peer = RtpPeer::bind().await;
    let port = peer.port().to_string();
    let sipp_run = {
        let (target, dir) = (engine.sip_udp.unwrap(), s.dir.path().to_path_buf());
        tokio::spawn(async move {
            sipp_with_fields(
                target,
                "prompt_heard_en.xml",
                "+4570101010",
                &["+4578787878", &port],
                &dir,
            )
            .await
        })
    };
    let t0 = std::time::Instant::now();
    // Welcome + the Danish menu question, then the engine listens.
    let (da_first, da_last) = peer
        .next_prompt(t0, Duration::from_millis(1500), Duration::from_secs(40))
        .await;
    let da_len = da_last - da_first;
    assert!(
        da_first - t0 < Duration::from_secs(3),
        "the greeting starts at once, not after {:?}",
        da_first - t0
    );
    assert!(
        (Duration::from_secs(5)..Duration::from_secs(30)).contains(&da_len),
        "greeting and question last {da_len:?}"
    );
    peer.say("pcap/en-english-please-01.pcap").await;
    let said = std::time::Instant::now();
    let (en_first, en_last) = peer
        .next_prompt(said, Duration::from_millis(1500), Duration::from_secs(40))
        .await;
    let heard = peer.heard();
    // Every packet of the prompts is PCMA at 20 ms (160 bytes).
    assert!(heard.iter().all(|(_, p)| p.len() == 160));
    let pcm = heard_pcm(&heard, en_first, en_last);
    let stt = ivr_stt::WhisperStt::load(&ivr_stt::SttConfig {
        model: root().join("models/whisper-base/ggml-base-q8_0.bin"),
        threads: 1,
        workers: 1,
        ..ivr_stt::SttConfig::default()
    })
    .unwrap();
    let text = stt
        .transcribe(ivr_stt::SttRequest::new(pcm, ivr_core::Lang::En))
        .await
        .unwrap()
        .text
        .expose()
        .to_lowercase();
    // "Please tell me in a few words what your call is about. For example
    // passport, driving licence, job centre or waste."
    for w in ["few words", "call", "passport", "driving", "waste"] {
        assert!(
            text.contains(w),
            "`{w}` not heard in the English prompt: {text:?}"
        );
    }
    // Key 0 (a member of staff): the engine transfers; SIPp takes the REFER.
    peer.press(0).await;
    let run = sipp_run.await.unwrap();
    assert_sipp_ok(&run, &s.dir.path().join("ivr.db")).await;
    wait_idle(&engine).await;
    let (_, outcome, lang, _, _) = the_call_record(&s.dir.path().join("ivr.db")).await;
    assert_eq!(outcome, "transferred");
    assert_eq!(lang, "en");
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_talking_over_the_welcome_stops_the_prompt_and_is_understood() {
    let s = setup();
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let mut peer = RtpPeer::bind().await;
    let port = peer.port().to_string();
    let sipp_run = {
        let (target, dir) = (engine.sip_udp.unwrap(), s.dir.path().to_path_buf());
        tokio::spawn(async move {
            sipp_with_fields(
                target,
                "barge_in_da.xml",
                "+4570101010",
                &["+4589898989", &port],
                &dir,
            )
            .await
        })
    };
    // Wait for the welcome to start, then talk over it 0.8 s in.
    let t0 = std::time::Instant::now();
    let first_loud = loop {
        if let Some((t, _)) = peer
            .heard()
            .into_iter()
            .find(|(_, p)| alaw_rms(p) > LOUD_RMS)
        {
            break t;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no welcome prompt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep_until((first_loud + Duration::from_millis(800)).into()).await;
    let pcap = "pcap/da-boligstoette-01.pcap";
    let started = peer.say(pcap).await;
    // make_pcap.py puts 300 ms of silence before the speech.
    let onset = started + Duration::from_millis(300);
    let speech_end = std::time::Instant::now() - Duration::from_millis(1200);
    let run = sipp_run.await.unwrap();
    assert_sipp_ok(&run, &s.dir.path().join("ivr.db")).await;
    let fields = uui_fields(&run.messages);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("dept"), Some("ydelser"), "{fields:?}");
    assert_eq!(get("intent"), Some("ydelser"), "{fields:?}");
    let heard = peer.heard();
    let loud = |from: std::time::Instant, to: std::time::Instant| {
        heard
            .iter()
            .filter(|(t, p)| *t >= from && *t < to && alaw_rms(p) > LOUD_RMS)
            .count()
    };
    assert!(
        loud(onset - Duration::from_millis(500), onset) > 10,
        "the welcome was playing when the caller started talking"
    );
    // The voice detector needs a few hundred ms of speech; after that the
    // prompt must be gone while the caller is still talking.
    let cut = onset + Duration::from_millis(1000);
    assert!(speech_end > cut + Duration::from_secs(1));
    assert_eq!(
        loud(cut, speech_end),
        0,
        "the engine kept talking over the caller"
    );
    wait_idle(&engine).await;
    let (_, outcome, _, steps, _) = the_call_record(&s.dir.path().join("ivr.db")).await;
    assert_eq!(outcome, "transferred");
    assert!(!steps.contains("menu_keys"), "understood at once: {steps}");
    engine.shutdown(Duration::from_secs(1)).await;
}
