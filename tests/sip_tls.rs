//! Real peers calling the whole engine over SIP-over-TLS with SRTP media,
//! on loopback, with a throwaway CA made at test time (rcgen): the engine
//! requires client certificates, and the trunk is configured with
//! `transport = "tls"` and `srtp = "required"`.
//!
//! - baresip (TLS, `mediaenc=srtp-mand`: RTP/SAVP with an SDES key) calls
//!   the Danish switchboard, hears the menu, presses 0 (an RFC 4733 event,
//!   inside SRTP) and is transferred: the engine's REFER goes back over the
//!   TLS connection, baresip calls the transfer target (a SIP endpoint of
//!   the test standing in for the Puzzel queue) and reports success.
//! - SIPp offers RTP/SAVP with a key and must get an RTP/SAVP answer with
//!   the engine's own key; a plain RTP/AVP offer must get 488. Debian's SIPp
//!   is built without TLS, so it speaks TCP to a local socat that carries
//!   the connection over TLS (verifying the engine's certificate against the
//!   test CA and presenting the trunk's client certificate).
//!
//! Needs baresip (with its srtp module), sipp, socat and the voices, whisper
//! model and onnxruntime from `make setup`.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

#[path = "../crates/ivr-engine/tests/support/tls_pki.rs"]
mod pki;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivr_engine::config::EngineConfig;
use ivr_engine::sip::{answer_calls, AnswerSdp, AnswerStats, SipListenConfig, SipService};
use ivr_sip::EndpointConfig;
use tokio::io::AsyncWriteExt;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn binary(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} not found on PATH: install it with `make setup` (Debian package {package})"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free even UDP port with the next one free too (RTP + RTCP).
fn free_rtp_pair() -> u16 {
    loop {
        let p = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = p - p % 2;
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
}

struct Setup {
    dir: tempfile::TempDir,
    pki: pki::Pki,
    cfg: EngineConfig,
}

/// The engine's configuration: TLS only, client certificates required, one
/// trunk (loopback) that must call over TLS with SRTP; flows copied with the Puzzel queue URIs pointing at
/// `queue` (the test's stand-in transfer target).
fn setup(queue: SocketAddr) -> Setup {
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
    let pki = pki::make(dir.path());
    let flows = dir.path().join("flows");
    copy_dir(&r.join("flows"), &flows);
    let muni = flows.join("nordby/municipality.toml");
    let text = std::fs::read_to_string(&muni).unwrap();
    std::fs::write(
        &muni,
        text.replace("@puzzel.nordby.example", &format!("@{queue}")),
    )
    .unwrap();
    let cache = r.join("target/e2e-tts-cache");
    let text = format!(
        r#"
[sip]
udp = []
transfer_timeout_s = 10
[sip.tls]
listen = ["127.0.0.1:0"]
cert_file = "{cert}"
key_file = "{key}"
ca_file = "{ca}"
client_auth = "required"
[media]
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
media_timeout_s = 120
[[trunk]]
name = "sbc"
sources = ["127.0.0.0/8"]
transport = "tls"
srtp = "required"
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
port = 1
tls = "none"
"#,
        cert = pki.server_cert.display(),
        key = pki.server_key.display(),
        ca = pki.ca.display(),
        rtp_min = 40_000 + (std::process::id() % 50) * 200,
        rtp_max = 40_000 + (std::process::id() % 50) * 200 + 198,
        flows = flows.display(),
        voices = r.join("voices").display(),
        ort = r.join("models/onnxruntime/libonnxruntime.so").display(),
        cache = cache.display(),
        model = r.join("models/whisper-base/ggml-base-q8_0.bin").display(),
        db = dir.path().join("ivr.db").display(),
    );
    let cfg = EngineConfig::parse(&text).unwrap();
    Setup { dir, pki, cfg }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
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

/// The transfer target: answers with RTP/SAVP and the offer's own crypto
/// line (it never looks at the media; the caller only needs an answer
/// that its SRTP policy accepts).
struct SrtpEcho {
    port: u16,
}

impl AnswerSdp for SrtpEcho {
    fn answer(&mut self, offer: Option<&[u8]>) -> Option<Vec<u8>> {
        let offer = String::from_utf8_lossy(offer?).into_owned();
        let crypto = offer.lines().find(|l| l.starts_with("a=crypto:"))?;
        Some(
            format!(
                "v=0\r\no=queue 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/SAVP 8\r\na=rtpmap:8 PCMA/8000\r\n{crypto}\r\na=sendrecv\r\n",
                self.port
            )
            .into_bytes(),
        )
    }
}

/// A silent 8 kHz WAV (baresip's audio source: the caller says nothing).
fn silence_wav(path: &Path, seconds: u32) {
    let samples = 8000 * seconds;
    let data = samples * 2;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    w.resize(w.len() + data as usize, 0);
    std::fs::write(path, w).unwrap();
}

fn module_path() -> &'static str {
    [
        "/usr/lib/baresip/modules",
        "/usr/lib/x86_64-linux-gnu/baresip/modules",
        "/usr/local/lib/baresip/modules",
    ]
    .into_iter()
    .find(|p| Path::new(p).join("srtp.so").exists())
    .expect("baresip modules (srtp.so) not found: install baresip-core with `make setup`")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_over_tls_with_srtp_reaches_the_danish_menu_presses_0_and_is_transferred() {
    // The Puzzel queue stand-in (plain UDP: the leg baresip places itself).
    let (queue_svc, queue_events) = SipService::start(
        SipListenConfig {
            udp: vec!["127.0.0.1:0".parse().unwrap()],
            ..Default::default()
        },
        EndpointConfig::new,
    )
    .await
    .unwrap();
    let queue = queue_svc
        .handle()
        .local_addr(ivr_sip::Transport::Udp)
        .unwrap();
    let queue_stats = Arc::new(Mutex::new(AnswerStats::default()));
    tokio::spawn(answer_calls(
        queue_svc.handle(),
        queue_events,
        SrtpEcho {
            port: free_rtp_pair(),
        },
        queue_stats.clone(),
    ));

    let s = setup(queue);
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let bot = engine.sip_tls.expect("TLS listener bound");

    let conf = s.dir.path().join("baresip");
    std::fs::create_dir_all(&conf).unwrap();
    let wav = conf.join("silence.wav");
    silence_wav(&wav, 60);
    let sip_port = free_port();
    let rtp = free_rtp_pair();
    std::fs::write(
        conf.join("config"),
        format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip_port}\n\
             sip_certificate\t\t{cert}\n\
             sip_cafile\t\t{ca}\n\
             audio_player\t\taubridge,nowhere\n\
             audio_source\t\taufile,{wav}\n\
             audio_alert\t\taubridge,nowhere\n\
             rtp_ports\t\t{rtp}-{rtp_hi}\n\
             net_interface\t\t127.0.0.1\n\
             module_path\t\t{mp}\n\
             module\t\t\tstdio.so\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module\t\t\taubridge.so\n\
             module\t\t\tsrtp.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n",
            cert = s.pki.client_combined.display(),
            ca = s.pki.ca.display(),
            wav = wav.display(),
            rtp_hi = rtp + 20,
            mp = module_path()
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("accounts"),
        "<sip:+4512345678@127.0.0.1;transport=tls>;regint=0;audio_codecs=PCMA;mediaenc=srtp-mand\n",
    )
    .unwrap();
    let mut child = tokio::process::Command::new(binary("baresip", "baresip-core"))
        .arg("-f")
        .arg(&conf)
        .arg("-e")
        .arg(format!("/dial sip:+4570101010@{bot}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("failed to start baresip");
    let mut stdin = child.stdin.take().unwrap();

    let fail = |child: &mut tokio::process::Child, what: &str| {
        let _ = child.start_kill();
        panic!("{what}");
    };
    // The call is answered (the engine counts it active from its 200 OK).
    let mut answered = false;
    for _ in 0..200 {
        if engine.active_calls() > 0 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !answered {
        let out = output(&mut child).await;
        fail(
            &mut child,
            &format!("the engine never answered baresip:\n{out}"),
        );
    }
    // The welcome plays, then the menu listens: press 0 (a member of staff).
    tokio::time::sleep(Duration::from_secs(4)).await;
    stdin.write_all(b"0").await.unwrap();
    stdin.flush().await.unwrap();
    // The REFER reaches baresip over TLS; it calls the queue stand-in.
    let mut transferred = false;
    for _ in 0..300 {
        if queue_stats.lock().unwrap().confirmed > 0 && engine.active_calls() == 0 {
            transferred = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stdin.write_all(b"/quit\n").await;
    let _ = stdin.flush().await;
    let _ = tokio::time::timeout(Duration::from_secs(3), child.wait()).await;
    let _ = child.start_kill();
    let out = output(&mut child).await;
    assert!(
        transferred,
        "no transfer: queue {:?}, active {}\nbaresip:\n{out}",
        *queue_stats.lock().unwrap(),
        engine.active_calls()
    );
    assert!(
        out.contains("SRTP is Enabled"),
        "baresip did not run SRTP:\n{out}"
    );
    assert!(!out.contains("failed to decrypt"), "baresip:\n{out}");
    let rows = sqlite_rows(
        &s.dir.path().join("ivr.db"),
        "SELECT municipality, outcome, transferred_to, steps FROM call_records",
    )
    .await;
    assert_eq!(rows.len(), 1, "one call record");
    assert_eq!(rows[0][0], "nordby");
    assert_eq!(rows[0][1], "transferred", "{rows:?}");
    assert!(rows[0][2].contains("omstilling"), "{rows:?}");
    assert!(
        rows[0][3].contains("menu"),
        "the menu was reached: {rows:?}"
    );
    let m = engine
        .metrics
        .render(ivr_engine::metrics::Sampled::default());
    // The call was understood and transferred through SRTP (the keypress
    // travelled encrypted). baresip may also send a short keepalive that is
    // no SRTP packet (seen once: "packet too short for SRTP"); anything more
    // than a stray one means media was refused.
    let refused: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("ivr_srtp_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX);
    assert!(refused <= 2, "{m}");
    engine.shutdown(Duration::from_secs(1)).await;
}

async fn output(child: &mut tokio::process::Child) -> String {
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::io::AsyncReadExt::read_to_string(&mut o, &mut out),
        )
        .await;
    }
    if let Some(mut e) = child.stderr.take() {
        let mut err = String::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::io::AsyncReadExt::read_to_string(&mut e, &mut err),
        )
        .await;
        out.push_str(&err);
    }
    out
}

/// socat carrying SIPp's TCP over TLS to the engine (verifying the engine
/// against the test CA, presenting the trunk's certificate). Killed on drop.
struct TlsTunnel {
    child: std::process::Child,
    port: u16,
}

impl TlsTunnel {
    fn start(to: SocketAddr, p: &pki::Pki) -> TlsTunnel {
        let port = free_port();
        let child = std::process::Command::new(binary("socat", "socat"))
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
            .arg(format!(
                "OPENSSL:{}:{},cafile={},cert={},key={},verify=1,commonname=localhost",
                to.ip(),
                to.port(),
                p.ca.display(),
                p.client_cert.display(),
                p.client_key.display()
            ))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let tunnel = TlsTunnel { child, port };
        for _ in 0..100 {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                return tunnel;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(tunnel);
        panic!("socat did not start listening on {port}");
    }
}

impl Drop for TlsTunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct SippRun {
    code: Option<i32>,
    messages: String,
    log: String,
}

async fn sipp_over_tls(tunnel: &TlsTunnel, scenario: &str, fields: &[&str], dir: &Path) -> SippRun {
    let inf = dir.join(format!("{scenario}.csv"));
    std::fs::write(&inf, format!("SEQUENTIAL\n{};\n", fields.join(";"))).unwrap();
    let msgs = dir.join(format!("{scenario}.messages.log"));
    let errs = dir.join(format!("{scenario}.errors.log"));
    let media = free_rtp_pair();
    let out = tokio::process::Command::new(binary("sipp", "sip-tester"))
        .arg(format!("127.0.0.1:{}", tunnel.port))
        .args(["-t", "t1"])
        .args([
            "-sf",
            root().join("tests/tls").join(scenario).to_str().unwrap(),
        ])
        .args(["-s", "+4570101010"])
        .args(["-inf", inf.to_str().unwrap()])
        .args(["-m", "1", "-l", "1"])
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &media.to_string()])
        .args(["-timeout", "60s", "-timeout_error"])
        .args(["-trace_msg", "-message_file", msgs.to_str().unwrap()])
        .args(["-trace_err", "-error_file", errs.to_str().unwrap()])
        .args(["-nostdin"])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_over_tls_gets_an_srtp_answer_with_the_engines_own_key_and_a_plain_offer_gets_488() {
    let s = setup("127.0.0.1:9".parse().unwrap());
    let engine = ivr_engine::engine::start(s.cfg.clone()).await.unwrap();
    let bot = engine.sip_tls.expect("TLS listener bound");
    let tunnel = TlsTunnel::start(bot, &s.pki);
    // The caller's AES_CM_128 key and salt: 30 bytes.
    let ours = "Y2FsbGVyLWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2hp";
    let run = sipp_over_tls(
        &tunnel,
        "srtp_call.xml",
        &["+4512345678", ours],
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
    let ok = run
        .messages
        .find("SIP/2.0 200 OK")
        .expect("SIPp logged the 200");
    let answer_key = run.messages[ok..]
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"))
        .expect("the 200's SDP carries a key");
    assert!(
        !answer_key.contains(ours),
        "the engine answered with our own key"
    );

    let refused = sipp_over_tls(
        &tunnel,
        "plain_rtp_refused.xml",
        &["+4512345678"],
        s.dir.path(),
    )
    .await;
    assert_eq!(
        refused.code,
        Some(0),
        "sipp failed:\n{}\n{}",
        refused.log,
        refused.messages
    );
    assert!(
        refused.messages.contains("SIP/2.0 488"),
        "{}",
        refused.messages
    );
    for _ in 0..50 {
        if engine.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(engine.active_calls(), 0);
    engine.shutdown(Duration::from_secs(1)).await;
}
