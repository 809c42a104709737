//! Several engines behind Kamailio (issue 18): three `ivr serve` processes
//! share one PostgreSQL database, Kamailio (from apt, with the shipped
//! `deploy/kamailio/kamailio.cfg`) spreads SIPp's calls over them, and the
//! test restarts one engine gracefully (SIGTERM: it drains) and kills another
//! (SIGKILL), counting what callers were promised against what was stored.
//!
//! Before any call, the flows are published once to the folder all three
//! read (a change to a flow file): every engine reloads it and reports the
//! same new content version on `/version`.
//!
//! Every call is a callback order by keypad (`tests/calls/callback_keys_info.xml`).
//! A caller was promised a callback when the call's record (written step by
//! step to the shared database, so a killed engine's calls have theirs up to
//! the kill) reached the spoken confirmation (`callback/stored`); the
//! request is stored before that step, so it must be in the shared queue
//! whichever engine took it. SIPp seeing the goodbye alone is no promise: a
//! key missed under load ends the call with another message. In this test's
//! copy of the flows the callback step is followed by a mail to the
//! department (the shared outbox, sent by whichever engine leases it), so a
//! promised callback also means a promised mail: it must reach the SMTP
//! server (aiosmtpd) even when the engine that queued it was killed.
//!
//! Needs PostgreSQL from `scripts/with-test-services.sh` (`make test` runs
//! the suite through it), Kamailio and SIPp from `make setup`, and the `ivr`
//! binary that `cargo test --workspace` builds beside this test.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ivr_e2e::{sipp_binary, sipp_ports, SmtpSink};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `ivr` binary next to this test's directory (`target/debug/ivr`).
fn ivr_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("ivr");
    assert!(
        bin.is_file(),
        "{} missing: build it with `cargo build -p ivr-server` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Copies the folder `from` to `to` (files and folders).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A fresh database on the test cluster, so reruns and other tests never see
/// each other's rows.
async fn fresh_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let db = format!("cluster_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
    format!("{base}/{db}")
}

struct Engine {
    name: &'static str,
    child: Child,
    sip: SocketAddr,
    http: SocketAddr,
    log: PathBuf,
}

impl Engine {
    fn start(name: &'static str, dir: &Path, db: &str, rtp_base: u16, smtp_port: u16) -> Engine {
        // The flows folder every engine reads (a site's shared folder).
        let flows = dir.join("flows");
        let r = root();
        let sip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"
[sip]
udp = ["{sip}"]
[media]
rtp_port_min = {rtp_base}
rtp_port_max = {rtp_max}
media_timeout_s = 120
# SIPp keys by SIP INFO and sends no RTP at all (a phone would).
first_media_timeout_s = 0
[flows]
dir = "{flows}"
reload_poll_ms = 300
fixed_time = "2026-12-01T09:00:00Z"
[stt]
model = "{model}"
# Three engines share this host: no idle-core threads for one utterance.
idle_threads = 1
[tts]
voices_dir = "{voices}"
onnxruntime = "{ort}"
[tts.cache]
dir = "{cache}"
[http]
listen = "{http}"
[integrations]
database_url = "{db}"
[integrations.callbacks]
handoff = false
[integrations.mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
# A short send timeout: a mail leased by the killed engine is taken over
# after the lease (6 timeouts + 10 s) runs out.
timeout_ms = 1000
[integrations.mail.delivery]
poll_interval_ms = 200
[shutdown]
drain_s = 90
"#,
                rtp_max = rtp_base + 198,
                flows = flows.display(),
                voices = r.join("voices").display(),
                ort = r.join("models/onnxruntime/libonnxruntime.so").display(),
                cache = r.join("target/e2e-tts-cache").display(),
                model = r.join("models/whisper-base/ggml-base-q8_0.bin").display(),
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(ivr_binary())
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info,whisper_rs=warn,ort=warn")
            .current_dir(&r)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Engine {
            name,
            child,
            sip,
            http,
            log,
        }
    }

    /// The flows version `/version` reports (empty when nothing answers).
    fn flows_version(&self) -> String {
        let Ok(mut s) = TcpStream::connect_timeout(&self.http, Duration::from_millis(500)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut buf = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut buf);
        let body = buf.split("\r\n\r\n").nth(1).unwrap_or("");
        serde_json::from_str::<ivr_engine::http::Versions>(body)
            .map(|v| v.flows)
            .unwrap_or_default()
    }

    /// Status of `/health` (0 when nothing answers).
    fn health(&self) -> u16 {
        let Ok(mut s) = TcpStream::connect_timeout(&self.http, Duration::from_millis(500)) else {
            return 0;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut buf = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut buf);
        buf.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    async fn wait_healthy(&mut self) {
        // An engine is healthy once every static prompt is in the prompt
        // cache. The first engine of a clean clone renders them all (piper
        // and espeak-ng, at every play rate) on a shared 2-core machine:
        // minutes when other work runs beside it.
        let started = Instant::now();
        let until = started + Duration::from_secs(360);
        while self.health() != 200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "engine {} exited ({status}) before it was healthy:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < until,
                "engine {} never became healthy",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!(
            "engine {} healthy after {:.1} s",
            self.name,
            started.elapsed().as_secs_f64()
        );
    }

    async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < until, "engine {} did not exit", self.name);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {}", self.name);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Kamailio {
    child: Child,
    addr: SocketAddr,
}

impl Kamailio {
    fn start(dir: &Path, engines: &[&Engine]) -> Kamailio {
        let list = dir.join("dispatcher.list");
        let lines: String = engines
            .iter()
            .map(|e| format!("1 sip:{}\n", e.sip))
            .collect();
        std::fs::write(&list, lines).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let run = dir.join("kamailio-run");
        std::fs::create_dir_all(&run).unwrap();
        let child = Command::new("kamailio")
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .args([
                "-f",
                root()
                    .join("deploy/kamailio/kamailio.cfg")
                    .to_str()
                    .unwrap(),
            ])
            .args(["-A", &format!("LISTEN_ADDR=udp:{addr}")])
            .args(["-A", &format!("DS_LIST=\"{}\"", list.display())])
            .args(["-A", "DS_PING_INTERVAL=1"])
            .args(["-Y", run.to_str().unwrap()])
            .args(["-P", run.join("kamailio.pid").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("kamailio.log")).unwrap())
            // Its own process group: Kamailio forks its workers (UDP
            // receivers, timers, the dispatcher's pinger), and killing the
            // main process alone leaves them running after the test.
            .process_group(0)
            .spawn()
            .expect("kamailio runs: install it with `make setup` (Debian package kamailio)");
        Kamailio { child, addr }
    }
}

impl Drop for Kamailio {
    /// SIGTERM (Kamailio stops its workers and exits), then SIGKILL to the
    /// whole process group for any worker still there, so that no kamailio
    /// outlives the test holding a port.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Usually nothing is left ("No such process" is not worth a line).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// One callback call through Kamailio; true when SIPp saw it through to the
/// engine's goodbye (which message the caller heard is in the call record).
async fn callback_call(kamailio: SocketAddr, caller: String, dir: PathBuf) -> bool {
    let inf = dir.join(format!("{caller}.csv"));
    std::fs::write(&inf, format!("SEQUENTIAL\n{caller};\n")).unwrap();
    let (sip_port, media_port) = sipp_ports();
    let out = tokio::process::Command::new(sipp_binary())
        .arg(kamailio.to_string())
        .args([
            "-sf",
            root()
                .join("tests/calls/callback_keys_info.xml")
                .to_str()
                .unwrap(),
        ])
        .args(["-s", "+4570101010"])
        .args(["-inf", inf.to_str().unwrap()])
        .args(["-m", "1", "-l", "1"])
        .args(["-i", "127.0.0.1", "-p", &sip_port.to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
        .args(["-timeout", "120s", "-timeout_error", "-nostdin"])
        .current_dir(root().join("tests/calls"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .unwrap();
    out.status.code() == Some(0)
}

/// Starts `n` calls 400 ms apart, numbered from `first`.
fn place(
    kamailio: SocketAddr,
    first: u32,
    n: u32,
    dir: &Path,
) -> Vec<(String, tokio::task::JoinHandle<bool>)> {
    (first..first + n)
        .map(|i| {
            let caller = format!("+45876{i:05}");
            let dir = dir.to_path_buf();
            let c = caller.clone();
            let h = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(400 * u64::from(i - first))).await;
                callback_call(kamailio, c, dir).await
            });
            (caller, h)
        })
        .collect()
}

async fn outcomes(calls: Vec<(String, tokio::task::JoinHandle<bool>)>) -> Vec<(String, bool)> {
    let mut v = Vec::new();
    for (caller, h) in calls {
        v.push((caller, h.await.unwrap()));
    }
    v
}

/// The callback flow in `flows` (a test's copy) mails the department once
/// the request is stored, before the caller hears the confirmation.
fn mail_after_each_callback(flows: &Path) {
    let path = flows.join("shared/callback.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let store = "number = \"callback_number\"\nnext = \"stored\"";
    assert!(
        text.contains(store),
        "the callback flow's store step changed"
    );
    let text = text.replacen(store, "number = \"callback_number\"\nnext = \"notify\"", 1)
        + r#"
[step.notify]
do = "mail"
kind = "callback_notice"
to = ["borgerservice@nordby.test"]
subject = "Opringning bestilt"
body = "Borgeren vil ringes op på {callback_number}."
next = "stored"
on_error = "store_failed"
"#;
    std::fs::write(&path, text).unwrap();
}

/// The outbox's rows: (state, attempts).
async fn queued_mails(db: &str) -> Vec<(String, i64)> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::PgConnection::connect(db).await.unwrap();
    sqlx::query("SELECT state, attempts FROM mail_outbox ORDER BY created_at")
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect()
}

/// The callers whose call reached the spoken confirmation of a stored
/// callback, by the call records (final or in progress).
async fn confirmed_callers(db: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::PgConnection::connect(db).await.unwrap();
    let rows = sqlx::query("SELECT calling, steps FROM call_records ORDER BY calling")
        .fetch_all(&mut c)
        .await
        .unwrap();
    rows.iter()
        .filter(|r| {
            let steps: Vec<String> = serde_json::from_str(&r.get::<String, _>(1)).unwrap();
            steps.iter().any(|s| s == "callback/stored")
        })
        .map(|r| r.get::<String, _>(0))
        .collect()
}

async fn stored_callbacks(db: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::PgConnection::connect(db).await.unwrap();
    let rows = sqlx::query("SELECT phone FROM callback_requests ORDER BY phone")
        .fetch_all(&mut c)
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_a_drained_and_a_killed_engine_behind_kamailio_and_no_promised_callback_or_mail_is_lost(
) {
    let Ok(admin) = std::env::var("IVR_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "IVR_TEST_POSTGRES_URL is not set under CI: run through scripts/with-test-services.sh"
        );
        eprintln!(
            "SKIP: IVR_TEST_POSTGRES_URL not set (run through scripts/with-test-services.sh)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("flows"), &dir.path().join("flows"));
    mail_after_each_callback(&dir.path().join("flows"));
    let sink = SmtpSink::start(dir.path());
    let db = fresh_database(&admin).await;
    let base = 40_000 + u16::try_from(std::process::id() % 20).unwrap() * 600;
    // The first engine creates the schema; the others find it there.
    let mut a = Engine::start("a", dir.path(), &db, base, sink.port);
    a.wait_healthy().await;
    let mut b = Engine::start("b", dir.path(), &db, base + 200, sink.port);
    let mut c = Engine::start("c", dir.path(), &db, base + 400, sink.port);
    b.wait_healthy().await;
    c.wait_healthy().await;
    // Publish once: every engine serves the new version.
    let engines = [&a, &b, &c];
    let before = a.flows_version();
    assert_eq!(
        before,
        ivr_engine::version::folder_version(&dir.path().join("flows")).unwrap()
    );
    let main = dir.path().join("flows/nordby/main.toml");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str("\n# published by the cluster test\n");
    std::fs::write(&main, text).unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let versions = loop {
        let v: Vec<String> = engines.iter().map(|e| e.flows_version()).collect();
        if v.iter().all(|x| *x != before && *x == v[0]) || Instant::now() > until {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        versions.iter().all(|v| *v != before && *v == versions[0]),
        "every engine serves the published flows: before {before}, now {versions:?}"
    );
    let k = Kamailio::start(dir.path(), &[&a, &b, &c]);
    // Two probe rounds: every engine is known alive.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Rolling restart of A: calls in progress finish, new calls go elsewhere.
    let first = place(k.addr, 0, 6, dir.path());
    tokio::time::sleep(Duration::from_secs(4)).await;
    a.signal("-TERM");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.health(), 503, "a draining engine says so on /health");
    let during_drain = place(k.addr, 100, 6, dir.path());
    let mut drained = outcomes(first).await;
    drained.extend(outcomes(during_drain).await);
    let status = a.wait_exit(Duration::from_secs(60)).await;
    assert!(
        status.success(),
        "the drained engine exits cleanly once its calls ended: {status}"
    );
    let completed_drain = drained.iter().filter(|(_, ok)| *ok).count();
    assert_eq!(
        completed_drain,
        drained.len(),
        "no call lost through a graceful restart: {drained:?}\nkamailio: {}\nengine a: {}",
        std::fs::read_to_string(dir.path().join("kamailio.log")).unwrap_or_default(),
        std::fs::read_to_string(&a.log).unwrap_or_default()
    );

    // kill -9 of B with calls up: its calls are lost, nothing else is.
    let before_kill = place(k.addr, 200, 4, dir.path());
    tokio::time::sleep(Duration::from_secs(5)).await;
    b.signal("-KILL");
    let after_kill_at = Instant::now();
    let after_kill = place(k.addr, 300, 4, dir.path());
    let killed = outcomes(before_kill).await;
    let after = outcomes(after_kill).await;
    assert!(
        after.iter().all(|(_, ok)| *ok),
        "calls placed after the kill reach the surviving engine: {after:?}"
    );
    let completed: Vec<&String> = drained
        .iter()
        .chain(&killed)
        .chain(&after)
        .filter(|(_, ok)| *ok)
        .map(|(c, _)| c)
        .collect();
    let confirmed = confirmed_callers(&db).await;
    let promised: Vec<&String> = drained
        .iter()
        .chain(&killed)
        .chain(&after)
        .map(|(c, _)| c)
        .filter(|c| confirmed.iter().any(|r| r.ends_with(&c[3..])))
        .collect();
    assert!(
        promised.len() * 2 >= drained.len() + after.len(),
        "most calls to live engines got as far as the confirmation: {} of {} completed, {} confirmed",
        completed.len(),
        drained.len() + killed.len() + after.len(),
        promised.len()
    );
    let stored = stored_callbacks(&db).await;
    for p in &promised {
        assert!(
            stored.iter().any(|s| s.ends_with(&p[3..])),
            "caller {p} heard the confirmation, so the request is stored"
        );
    }
    let placed = drained.len() + killed.len() + after.len();
    let lost_on_b = killed.iter().filter(|(_, ok)| !*ok).count();
    let served_after_kill_s = after_kill_at.elapsed().as_secs();
    // Every promised mail reaches the SMTP server, whichever engine queued
    // it (one leased by the killed engine is taken over after its lease).
    let mailed = |mails: &[serde_json::Value], p: &str| {
        mails.iter().any(|m| {
            let digits: String = m["body"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            digits.contains(&p[3..])
        })
    };
    let until = Instant::now() + Duration::from_secs(45);
    let mails = loop {
        let m = sink.received();
        if promised.iter().all(|p| mailed(&m, p)) || Instant::now() > until {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let queued = queued_mails(&db).await;
    for p in &promised {
        assert!(
            mailed(&mails, p),
            "caller {p} heard the confirmation, so the department's mail is sent: {} received, outbox {queued:?}",
            mails.len()
        );
    }
    eprintln!(
        "cluster: placed {placed}, completed {} (drain phase {completed_drain}/{}), \
         lost with the killed engine {lost_on_b}, callbacks promised (confirmation \
         reached) {} stored {}, \
         mails promised {} queued {} sent {} (after-kill calls served {served_after_kill_s}s \
         after the kill)",
        completed.len(),
        drained.len(),
        promised.len(),
        stored.len(),
        promised.len(),
        queued.len(),
        mails.len(),
    );
    assert!(
        mails.len() <= placed,
        "one mail per call at most (the outbox's key is the call's): {} mails",
        mails.len()
    );
    assert!(
        stored.len() <= placed,
        "one request per call at most (the queue's key): {stored:?}"
    );
    c.signal("-TERM");
    drop(k);
}
