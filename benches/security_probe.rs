//! The outside probe of issue 14, again, against the engine in-process
//! (`ivr_engine::engine::start`, the code of `ivr serve`) on loopback:
//!
//! 1. a legitimate call from the trunk (127.0.0.1): INVITE to 200 OK delay,
//!    and the gaps between the engine's RTP packets over 8 s;
//! 2. the same while 2,000 INVITEs a second come from outside the trunks
//!    (127.0.0.2);
//! 3. the 503 at the call limit (`[sip] max_calls = 4`: the fifth call);
//! 4. the same legitimate call while the flood spoofs the trunk's own
//!    address (what a trunk's own bucket costs it).
//!
//! `cargo run --release -p ivr-benches --bin security_probe` (needs `make
//! setup`'s models). Prints one line per figure and a JSON summary.
#![allow(clippy::unwrap_used)] // reason: a measurement harness: a failed unwrap is a failed run

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_engine::config::EngineConfig;
use tokio::net::UdpSocket;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config(dir: &Path) -> EngineConfig {
    let r = root();
    let text = format!(
        r#"
[sip]
udp = ["127.0.0.1:0"]
max_calls = 4
[[trunk]]
name = "sbc"
sources = ["127.0.0.1/32"]
[media]
rtp_port_min = 44000
rtp_port_max = 45998
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
        flows = r.join("flows").display(),
        voices = r.join("voices").display(),
        ort = r.join("models/onnxruntime/libonnxruntime.so").display(),
        cache = r.join("target/e2e-tts-cache").display(),
        model = r.join(ivr_stt::SttConfig::default().model).display(),
        db = dir.join("ivr.db").display(),
    );
    EngineConfig::parse(&text).unwrap()
}

fn invite(engine: SocketAddr, me: SocketAddr, call_id: &str, rtp_port: u16) -> Vec<u8> {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ip = me.ip()
    );
    format!(
        "INVITE sip:+4570101010@{engine} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+4512345678@{me}>;tag=f-{call_id}\r\n\
         To: <sip:+4570101010@{engine}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:probe@{me}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
}

/// A legitimate call: the INVITE (retransmitted at 0.5, 1, 2, 4 s as a UAC
/// would) until a final response; returns (status, set-up delay, the
/// engine's RTP address, the ACK/BYE headers).
struct Call {
    sip: UdpSocket,
    rtp: Arc<UdpSocket>,
    engine: SocketAddr,
    call_id: String,
    to: String,
}

async fn place(engine: SocketAddr, n: u32) -> (u16, Duration, Option<(Call, SocketAddr)>) {
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let me = sip.local_addr().unwrap();
    let call_id = format!("probe-{n}-{}", std::process::id());
    let inv = invite(engine, me, &call_id, rtp.local_addr().unwrap().port());
    let t0 = Instant::now();
    let mut next_tx = t0;
    let mut interval = Duration::from_millis(500);
    let mut buf = vec![0u8; 4096];
    loop {
        if t0.elapsed() > Duration::from_secs(16) {
            return (0, t0.elapsed(), None);
        }
        if Instant::now() >= next_tx {
            sip.send_to(&inv, engine).await.unwrap();
            next_tx = Instant::now() + interval;
            interval = (interval * 2).min(Duration::from_secs(4));
        }
        let wait = next_tx.saturating_duration_since(Instant::now());
        let Ok(Ok((n, _))) = tokio::time::timeout(wait, sip.recv_from(&mut buf)).await else {
            continue;
        };
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        let status: u16 = msg
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status < 200 {
            continue;
        }
        let took = t0.elapsed();
        let to = header(&msg, "To").unwrap_or_default().to_string();
        let ack = format!(
            "ACK sip:+4570101010@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ack-{call_id}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:+4512345678@{me}>;tag=f-{call_id}\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        if status != 200 {
            return (status, took, None);
        }
        sip.send_to(ack.as_bytes(), engine).await.unwrap();
        let body = msg.split("\r\n\r\n").nth(1).unwrap_or_default();
        let ip = body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))
            .unwrap_or("127.0.0.1")
            .trim();
        let port = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0);
        let media: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let call = Call {
            sip,
            rtp,
            engine,
            call_id,
            to,
        };
        return (200, took, Some((call, media)));
    }
}

impl Call {
    /// Sends 20 ms of A-law silence every 20 ms to `media` and records the
    /// gaps between the engine's packets for `secs`; then BYE.
    async fn listen(self, media: SocketAddr, secs: u64) -> Vec<f64> {
        let stop = Arc::new(AtomicBool::new(false));
        let (rtp, s2) = (self.rtp.clone(), stop.clone());
        let sender = tokio::spawn(async move {
            let mut seq: u16 = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while !s2.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut p = vec![0x80, 8];
                p.extend_from_slice(&seq.to_be_bytes());
                p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
                p.extend(std::iter::repeat_n(0xD5u8, 160));
                let _ = rtp.send_to(&p, media).await;
                seq = seq.wrapping_add(1);
            }
        });
        let mut gaps = Vec::new();
        let mut last = None;
        let end = Instant::now() + Duration::from_secs(secs);
        let mut buf = vec![0u8; 2048];
        while Instant::now() < end {
            let left = end.saturating_duration_since(Instant::now());
            if let Ok(Ok(_)) = tokio::time::timeout(left, self.rtp.recv_from(&mut buf)).await {
                let now = Instant::now();
                if let Some(l) = last {
                    gaps.push(now.duration_since(l).as_secs_f64() * 1000.0);
                }
                last = Some(now);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = sender.await;
        let me = self.sip.local_addr().unwrap();
        let bye = format!(
            "BYE sip:ivr@{engine} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-bye-{id}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:+4512345678@{me}>;tag=f-{id}\r\nTo: {to}\r\n\
             Call-ID: {id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            engine = self.engine,
            id = self.call_id,
            to = self.to
        );
        let _ = self.sip.send_to(bye.as_bytes(), self.engine).await;
        gaps
    }
}

/// INVITEs from `from` at `rate` a second until `stop`; counts them.
fn flood(engine: SocketAddr, from: &str, rate: u64, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let from: SocketAddr = from.parse().unwrap();
    tokio::spawn(async move {
        let sock = UdpSocket::bind(from).await.unwrap();
        let me = sock.local_addr().unwrap();
        let batch = rate / 100;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            for _ in 0..batch {
                n += 1;
                let inv = invite(engine, me, &format!("flood-{n}"), 40_000);
                let _ = sock.send_to(&inv, engine).await;
            }
            sent.store(n, Ordering::Relaxed);
        }
    });
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn legit(engine: SocketAddr, n: u32, label: &str, out: &mut Vec<serde_json::Value>) {
    let (status, took, call) = place(engine, n).await;
    let mut gaps = match call {
        Some((c, media)) => c.listen(media, 8).await,
        None => Vec::new(),
    };
    let (p50, p99, max) = (
        pct(&mut gaps, 0.5),
        pct(&mut gaps, 0.99),
        pct(&mut gaps, 1.0),
    );
    println!(
        "{label}: status {status}, INVITE to final response {:.0} ms, RTP gaps p50 {p50:.1} / p99 {p99:.1} / max {max:.1} ms over {} packets",
        took.as_secs_f64() * 1000.0,
        gaps.len()
    );
    out.push(serde_json::json!({
        "phase": label, "status": status, "setup_ms": took.as_secs_f64() * 1000.0,
        "rtp_gap_p50_ms": p50, "rtp_gap_p99_ms": p99, "rtp_gap_max_ms": max, "packets": gaps.len(),
    }));
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ivr_engine::engine::start(config(dir.path())).await.unwrap();
    let sip = engine.sip_udp.unwrap();
    let mut out = Vec::new();

    legit(sip, 1, "baseline", &mut out).await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    flood(sip, "127.0.0.2:0", 2000, stop.clone(), sent.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    legit(
        sip,
        2,
        "flood of 2000 INVITE/s from outside the trunks",
        &mut out,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    println!("  flood INVITEs sent: {}", sent.load(Ordering::Relaxed));

    // The call limit: four calls held, the fifth.
    let mut held = Vec::new();
    for n in 10..14 {
        let (s, _, c) = place(sip, n).await;
        assert_eq!(s, 200, "call {n} below the limit");
        held.push(c);
    }
    let (status, took, _) = place(sip, 14).await;
    println!(
        "call limit (max_calls = 4): the fifth call got {status} after {:.1} ms",
        took.as_secs_f64() * 1000.0
    );
    out.push(serde_json::json!({"phase": "fifth call at max_calls = 4", "status": status, "ms": took.as_secs_f64() * 1000.0}));
    for (c, media) in held.into_iter().flatten() {
        c.listen(media, 0).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let stop = Arc::new(AtomicBool::new(false));
    flood(
        sip,
        "127.0.0.1:0",
        2000,
        stop.clone(),
        Arc::new(AtomicU64::new(0)),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    legit(
        sip,
        3,
        "flood of 2000 INVITE/s spoofing the trunk's address",
        &mut out,
    )
    .await;
    stop.store(true, Ordering::Relaxed);

    println!("{}", serde_json::Value::Array(out));
    engine.shutdown(Duration::from_secs(1)).await;
}
