//! Crisis-peak harness (issue 18 item 4): more callers than the recogniser
//! can serve, on one box, placed by SIPp.
//!
//! - The engine is the `ivr` binary (`--ivr`, default `target/release/ivr`)
//!   run as its own process, so its memory is its own: `ivr serve` with a
//!   temporary config, the shipped voices and models, and a bench
//!   municipality (written here) whose flow never ends a call by itself: a
//!   greeting, a menu (speech or keys), an answer and a yes/no question, with
//!   timeouts longer than a call.
//! - Callers are SIPp (`sipp`, from `make setup`): INVITE with PCMA and
//!   telephone-event, ACK, then `play_pcap_audio` of one pcap holding the
//!   whole call's audio, a BYE after `--call-s`. Speech callers' pcap (made
//!   here from `tests/calls/pcap/da-boligstoette-01.pcap`): silence, the
//!   utterance "jeg skal tale med nogen om min boligstøtte" after the menu
//!   prompt, silence, RFC 4733 key 1 twelve seconds later, silence.
//!   Media-only callers' pcap: silence for the whole call.
//! - What callers hear is measured by the engine on its send path and read
//!   from `/metrics` as deltas over a level: `ivr_greeting_delay_seconds`
//!   (200 OK to the first packet of prompt audio), `ivr_rtp_pacing_lateness_seconds`
//!   (each RTP packet's send time after the pacer's deadline),
//!   `ivr_rtp_packet_gap_seconds` (between a call's packets),
//!   `ivr_caller_turns_total{input}` (turns served by speech, by keys, and
//!   utterances the full recogniser queue sent to keys: `stt_busy`). SIPp
//!   cannot report what it receives, and a loopback send is a receive.
//!   Quantiles are the upper bound of the histogram bucket they fall in.
//! - Memory: the engine's VmRSS (`/proc/PID/status`) at rest (flows loaded,
//!   models loaded, prompts pre-rendered, one call made and ended) and at the
//!   plateau of each level (the most calls up at once); per call =
//!   (plateau - rest) / calls up.
//!
//! Levels: `--levels 50,100,200,300` speech callers (all up at once for the
//! last part of the call), then `--media-only 1000` silent callers. A speech
//! level passes when every call's greeting left within 1 s of the answer,
//! pacing p99 < 5 ms, and no call was refused or failed. The media-only level
//! reports packet-gap p99 (target <= 22 ms). `ulimit -n` is raised to the hard
//! limit for the engine and SIPp (each call holds 2 sockets).
//!
//! Usage: `cargo run --release -p ivr-benches --bin crisis -- [--levels 50,100,200,300]
//! [--media-only 1000] [--call-s 40] [--media-call-s 60] [--rate 10] [--ivr target/release/ivr]`
//! (each level starts calls at `--rate` a second, or faster so that all of
//! them are up at once for half a call).
//! Writes `target/bench/crisis.json` and prints a table with the load average.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CALLED: &str = "+4570999999";
/// When the speech caller says its utterance (after greeting and menu prompt).
const SPEAK_AT: Duration = Duration::from_secs(9);
/// When it presses 1 (after the keys notice, or after the answer to its words).
const KEYS_AT: Duration = Duration::from_secs(22);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[derive(Clone)]
struct Args {
    ivr: PathBuf,
    levels: Vec<usize>,
    media_only: usize,
    call_s: u64,
    media_call_s: u64,
    rate: u32,
}

fn args() -> Args {
    let mut a = Args {
        ivr: root().join("target/release/ivr"),
        levels: vec![50, 100, 200, 300],
        media_only: 1000,
        call_s: 40,
        media_call_s: 60,
        rate: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--ivr" => a.ivr = PathBuf::from(v),
            "--levels" => {
                a.levels = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect()
            }
            "--media-only" => a.media_only = v.parse().unwrap(),
            "--call-s" => a.call_s = v.parse().unwrap(),
            "--media-call-s" => a.media_call_s = v.parse().unwrap(),
            "--rate" => a.rate = v.parse().unwrap(),
            other => {
                eprintln!("crisis: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

// ---------------------------------------------------------------- pcaps

/// RTP payloads (PCMA) of a pcap written by `tests/calls/make_pcap.py`.
fn pcap_payloads(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let len = u32::from_le_bytes(b[i + 8..i + 12].try_into().unwrap()) as usize;
        let pkt = &b[i + 16..(i + 16 + len).min(b.len())];
        // Ethernet 14 + IPv4 20 + UDP 8 + RTP 12.
        if pkt.len() > 54 {
            out.push(pkt[54..].to_vec());
        }
        i += 16 + len;
    }
    out
}

/// One RTP packet of the caller's stream, `at` from the start.
struct Packet {
    at: Duration,
    pt: u8,
    marker: bool,
    ts: u32,
    payload: Vec<u8>,
}

/// A pcap SIPp replays: 20 ms PCMA, silence but for `speech` at `speak_at`
/// and key `key` (RFC 4733, payload type 101) at `keys_at`.
fn caller_pcap(
    out: &Path,
    length: Duration,
    speech: Option<(&[Vec<u8>], Duration)>,
    key: Option<(u8, Duration)>,
) {
    let frames = (length.as_millis() / 20) as usize;
    let speech_from = speech.map(|(_, at)| (at.as_millis() / 20) as usize);
    let key_from = key.map(|(_, at)| (at.as_millis() / 20) as usize);
    let mut pkts: Vec<Packet> = Vec::new();
    for f in 0..frames {
        let at = Duration::from_millis(f as u64 * 20);
        let ts = 16_000u32.wrapping_add(f as u32 * 160);
        // A key: five 20 ms event packets (100 ms), the last one ending it (sent three times).
        if let (Some((k, _)), Some(kf)) = (key, key_from) {
            if (kf..kf + 5).contains(&f) {
                let start_ts = 16_000u32.wrapping_add(kf as u32 * 160);
                let dur = ((f - kf + 1) * 160) as u16;
                let end = f == kf + 4;
                let reps = if end { 3 } else { 1 };
                for _ in 0..reps {
                    let mut p = vec![k, 10, 0, 0];
                    if end {
                        p[1] |= 0x80;
                    }
                    p[2..4].copy_from_slice(&dur.to_be_bytes());
                    pkts.push(Packet {
                        at,
                        pt: 101,
                        marker: f == kf,
                        ts: start_ts,
                        payload: p,
                    });
                }
                continue;
            }
        }
        let payload = match (speech, speech_from) {
            (Some((s, _)), Some(sf)) if f >= sf && f - sf < s.len() => s[f - sf].clone(),
            _ => vec![0xd5; 160],
        };
        pkts.push(Packet {
            at,
            pt: 8,
            marker: f == 0,
            ts,
            payload,
        });
    }
    let mut b = Vec::new();
    b.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    for v in [0i32 as u32, 0, 65_535, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for (seq, p) in pkts.iter().enumerate() {
        let mut rtp = vec![0x80, (u8::from(p.marker) << 7) | p.pt];
        rtp.extend_from_slice(&(1000u16.wrapping_add(seq as u16)).to_be_bytes());
        rtp.extend_from_slice(&p.ts.to_be_bytes());
        rtp.extend_from_slice(&0x1234_ABCDu32.to_be_bytes());
        rtp.extend_from_slice(&p.payload);
        let mut udp = Vec::new();
        for v in [6000u16, 6002, 8 + rtp.len() as u16, 0] {
            udp.extend_from_slice(&v.to_be_bytes());
        }
        udp.extend_from_slice(&rtp);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(20 + udp.len() as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        ip.extend_from_slice(&udp);
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        eth.extend_from_slice(&ip);
        let us = p.at.as_micros() as u64;
        for v in [
            (us / 1_000_000) as u32,
            (us % 1_000_000) as u32,
            eth.len() as u32,
            eth.len() as u32,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&eth);
    }
    std::fs::write(out, b).unwrap();
}

// ---------------------------------------------------------------- files

const FLOW: &str = r#"
start = "welcome"

[step.welcome]
do = "say"
text.da = "Velkommen til Krisekommunen."
next = "menu"

[step.menu]
do = "gather"
prompt.da = "Sig med få ord, hvad du ringer om."
timeout = 60
retries = 1
no_input = "menu"
no_match = "menu"

[[step.menu.intent]]
name = "ydelser"
keywords.da = ["boligstøtte", "boligsikring", "pension", "ydelse"]
clarify.da = "tale om boligstøtte eller pension"
dtmf = "1"
goto = "answer"

[[step.menu.intent]]
name = "affald"
keywords.da = ["affald", "storskrald", "skrald"]
clarify.da = "tale om affald"
dtmf = "2"
goto = "answer"

[step.answer]
do = "say"
text.da = "Tak. Vi har modtaget din henvendelse."
next = "more"

[step.more]
do = "gather"
expect = "yesno"
prompt.da = "Er der andet, jeg kan hjælpe med?"
timeout = 60

[[step.more.intent]]
name = "yes"
goto = "menu"

[[step.more.intent]]
name = "no"
goto = "answer"
"#;

const MUNICIPALITY: &str = r#"name = "Krisekommunen"
languages = ["da"]
fallback = "omstilling"

[department.omstilling]
name = { da = "omstillingen" }
target = "sip:omstilling@pbx.example"
hours = { mon = "08:00-16:00", tue = "08:00-16:00", wed = "08:00-16:00", thu = "08:00-16:00", fri = "08:00-16:00" }
"#;

fn scenario(call_ms: u64, pcap: &Path) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="crisis caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4522[call_number]@[local_ip]:[local_port]>;tag=[pid]Crisis[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:crisis@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=ptime:20
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4522[call_number]@[local_ip]:[local_port]>;tag=[pid]Crisis[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop>
    <action>
      <exec play_pcap_audio="{pcap}"/>
    </action>
  </nop>
  <pause milliseconds="{call_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4522[call_number]@[local_ip]:[local_port]>;tag=[pid]Crisis[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"#,
        pcap = pcap.display()
    )
}

fn engine_config(dir: &Path, sip: u16, http: u16) -> String {
    let r = root();
    format!(
        r#"
[sip]
udp = ["127.0.0.1:{sip}"]
max_calls = 2000
[media]
rtp_port_min = 20000
rtp_port_max = 29998
media_timeout_s = 120
first_media_timeout_s = 0
[flows]
dir = "{flows}"
reload_poll_ms = 0
[stt]
model = "{model}"
[tts]
voices_dir = "{voices}"
onnxruntime = "{ort}"
[tts.cache]
dir = "{cache}"
[http]
listen = "127.0.0.1:{http}"
[integrations]
database_url = "sqlite:{db}"
[integrations.callbacks]
handoff = false
[integrations.mail.smtp]
host = "127.0.0.1"
port = 1
tls = "none"
[console]
enabled = false
"#,
        flows = dir.join("flows").display(),
        voices = r.join("voices").display(),
        ort = r.join("models/onnxruntime/libonnxruntime.so").display(),
        cache = r.join("target/bench/crisis-tts-cache").display(),
        model = r.join("models/whisper-base/ggml-base-q8_0.bin").display(),
        db = dir.join("ivr.db").display(),
    )
}

// ---------------------------------------------------------------- engine

struct Engine {
    child: Child,
    http: SocketAddr,
}

impl Engine {
    fn start(ivr: &Path, config: &Path, log: &Path, http: SocketAddr) -> Engine {
        // Each call holds two sockets: the descriptor limit goes to the hard limit.
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)"; exec "$0" serve --config "$1""#)
            .arg(ivr)
            .arg(config)
            .env("RUST_LOG", "warn")
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Engine { child, http }
    }

    fn get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&self.http, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        let (head, body) = buf.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    }

    fn metrics(&self) -> BTreeMap<String, f64> {
        self.get("/metrics")
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    fn rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- metrics

fn delta(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>, k: &str) -> f64 {
    after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0)
}

/// A histogram's buckets over a level: (upper bound, cumulative count), and the total.
fn hist(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
    name: &str,
) -> (Vec<(f64, f64)>, f64) {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut b: Vec<(f64, f64)> = after
        .keys()
        .filter_map(|k| {
            let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, delta(after, before, k)))
        })
        .collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total = delta(after, before, &format!("{name}_count"));
    (b, total)
}

/// The bucket bound the `q` quantile falls under (infinite: above the last).
fn quantile(h: &(Vec<(f64, f64)>, f64), q: f64) -> f64 {
    let (b, total) = h;
    if *total <= 0.0 {
        return f64::NAN;
    }
    b.iter()
        .find(|(_, c)| *c >= q * total)
        .map_or(f64::INFINITY, |(le, _)| *le)
}

/// Observations above `bound`.
fn above(h: &(Vec<(f64, f64)>, f64), bound: f64) -> f64 {
    let at =
        h.0.iter()
            .find(|(le, _)| (*le - bound).abs() < 1e-9)
            .map_or(0.0, |(_, c)| *c);
    h.1 - at
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn ms(s: f64) -> serde_json::Value {
    if s.is_finite() {
        serde_json::json!((s * 1e4).round() / 10.0)
    } else {
        serde_json::json!(null)
    }
}

/// One level: `n` SIPp callers playing `pcap`; the engine's view of it.
fn run_level(
    e: &Engine,
    dir: &Path,
    sip: SocketAddr,
    n: usize,
    pcap: &Path,
    a: &Args,
    rest_kb: u64,
) -> serde_json::Value {
    let call_ms = a.call_s * 1000;
    // Every call of the level is up at once for the second half of a call:
    // calls start at least 2n/call_s a second (below the trunk's 50 requests
    // a second).
    let rate = a
        .rate
        .max((2 * n as u64).div_ceil(a.call_s.max(1)) as u32)
        .min(40);
    let scen = dir.join(format!("caller-{n}.xml"));
    std::fs::write(&scen, scenario(call_ms, pcap)).unwrap();
    let before = e.metrics();
    let load_before = loadavg();
    let stat = dir.join(format!("stat-{n}.csv"));
    let t0 = Instant::now();
    let mut sipp = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)"; exec sipp "$@""#)
        .arg("sipp")
        .arg(sip.to_string())
        .args(["-sf", scen.to_str().unwrap(), "-s", CALLED])
        .args(["-m", &n.to_string(), "-l", &n.to_string()])
        .args(["-r", &rate.to_string(), "-rp", "1000"])
        .args(["-i", "127.0.0.1", "-p", &free_port(true).to_string()])
        .args(["-mp", &free_port(true).to_string()])
        .args(["-t", "u1", "-nostdin", "-trace_stat", "-fd", "5"])
        .args(["-stf", stat.to_str().unwrap()])
        .args([
            "-timeout",
            &format!("{}s", a.call_s * 3 + n as u64 / 5 + 60),
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run sipp (install sip-tester: make setup)");
    // Sample calls up and memory while the level runs.
    let (mut peak_calls, mut rss_at_peak, mut peak_load) = (0u64, 0u64, String::new());
    let status = loop {
        if let Some(s) = sipp.try_wait().unwrap() {
            break s;
        }
        let m = e.metrics();
        let up = m.get("ivr_active_calls").copied().unwrap_or(0.0) as u64;
        let rss = e.rss_kb();
        if up > peak_calls || (up == peak_calls && rss > rss_at_peak) {
            peak_calls = up;
            rss_at_peak = rss;
            peak_load = loadavg();
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let wall = t0.elapsed();
    // The last BYEs reach the engine.
    std::thread::sleep(Duration::from_secs(2));
    let after = e.metrics();
    let csv = std::fs::read_to_string(&stat).unwrap_or_default();
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or("").split(';').collect();
    let last: Vec<&str> = lines.next_back().unwrap_or("").split(';').collect();
    let get = |name: &str| -> u64 {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| last.get(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let greeting = hist(&after, &before, "ivr_greeting_delay_seconds");
    let late = hist(&after, &before, "ivr_rtp_pacing_lateness_seconds");
    let gap = hist(&after, &before, "ivr_rtp_packet_gap_seconds");
    let turns = |i: &str| {
        delta(
            &after,
            &before,
            &format!("ivr_caller_turns_total{{input=\"{i}\"}}"),
        )
    };
    let rejected = delta(&after, &before, "ivr_calls_rejected_total");
    let (ok, failed) = (get("SuccessfulCall(C)"), get("FailedCall(C)"));
    let greeting_over_1s = above(&greeting, 1.0);
    let late_p99 = quantile(&late, 0.99);
    let per_call_kb = if peak_calls > 0 {
        (rss_at_peak.saturating_sub(rest_kb)) as f64 / peak_calls as f64
    } else {
        f64::NAN
    };
    let pass = greeting.1 >= n as f64
        && greeting_over_1s == 0.0
        && late_p99 < 0.005
        && rejected == 0.0
        && failed == 0
        && ok as usize == n;
    serde_json::json!({
        "calls": n,
        "rate_cps": rate,
        "call_s": a.call_s,
        "sipp_successful": ok,
        "sipp_failed": failed,
        "sipp_exit": status.code(),
        "rejected": rejected,
        "peak_concurrent": peak_calls,
        "greetings": greeting.1,
        "greeting_over_1s": greeting_over_1s,
        "greeting_p99_ms_le": ms(quantile(&greeting, 0.99)),
        "pacing_lateness_p50_ms_le": ms(quantile(&late, 0.5)),
        "pacing_lateness_p99_ms_le": ms(late_p99),
        "packet_gap_p99_ms_le": ms(quantile(&gap, 0.99)),
        "packet_gap_p999_ms_le": ms(quantile(&gap, 0.999)),
        "packets": gap.1,
        "turns_speech": turns("speech"),
        "turns_keys": turns("dtmf"),
        "turns_stt_busy_to_keys": turns("stt_busy"),
        "turns_no_input": turns("no_input"),
        "rss_rest_mb": rest_kb as f64 / 1024.0,
        "rss_peak_mb": rss_at_peak as f64 / 1024.0,
        "rss_per_call_kb": (per_call_kb * 10.0).round() / 10.0,
        "load_before": load_before,
        "load_at_peak": peak_load,
        "wall_s": wall.as_secs(),
        "pass": pass,
    })
}

fn main() {
    let a = args();
    let r = root();
    for (p, what) in [
        (
            "models/whisper-base/ggml-base-q8_0.bin",
            "the whisper model",
        ),
        ("models/onnxruntime/libonnxruntime.so", "onnxruntime"),
        (
            "tests/calls/pcap/da-boligstoette-01.pcap",
            "the speech pcap",
        ),
    ] {
        if !r.join(p).is_file() {
            eprintln!("crisis: {what} missing ({p}): run `make setup`");
            std::process::exit(2);
        }
    }
    if !a.ivr.is_file() {
        eprintln!(
            "crisis: {} missing: cargo build --release -p ivr-server",
            a.ivr.display()
        );
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("flows/krise")).unwrap();
    std::fs::write(
        d.join("flows/tenants.toml"),
        format!("[[tenant]]\nnumber = \"{CALLED}\"\nmunicipality = \"krise\"\nentry = \"main\"\n"),
    )
    .unwrap();
    std::fs::write(d.join("flows/krise/municipality.toml"), MUNICIPALITY).unwrap();
    std::fs::write(d.join("flows/krise/main.toml"), FLOW).unwrap();
    std::fs::create_dir_all(r.join("target/bench")).unwrap();
    let length = Duration::from_secs(a.call_s);
    let speech = pcap_payloads(&r.join("tests/calls/pcap/da-boligstoette-01.pcap"));
    let speech_pcap = d.join("speech.pcap");
    caller_pcap(
        &speech_pcap,
        length,
        Some((&speech, SPEAK_AT)),
        Some((1, KEYS_AT)),
    );
    let silent_pcap = d.join("silence.pcap");
    caller_pcap(&silent_pcap, length, None, None);
    let (sip_port, http_port) = (free_port(true), free_port(false));
    let config = d.join("engine.toml");
    std::fs::write(&config, engine_config(d, sip_port, http_port)).unwrap();
    let sip: SocketAddr = format!("127.0.0.1:{sip_port}").parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();
    let log = r.join("target/bench/crisis-engine.log");
    let mut e = Engine::start(&a.ivr, &config, &log, http);
    let until = Instant::now() + Duration::from_secs(300);
    while e.get("/health").is_none() {
        if let Some(s) = e.child.try_wait().unwrap() {
            eprintln!(
                "crisis: the engine exited ({s}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::process::exit(1);
        }
        assert!(Instant::now() < until, "the engine never became healthy");
        std::thread::sleep(Duration::from_millis(500));
    }
    // One call first (its prompts synthesised, allocator warm), then rest.
    let warm = run_level(
        &e,
        d,
        sip,
        1,
        &silent_pcap,
        &Args {
            call_s: 12,
            ..a.clone()
        },
        0,
    );
    std::thread::sleep(Duration::from_secs(3));
    let rest_kb = e.rss_kb();
    eprintln!(
        "crisis: engine at rest {:.1} MB (warm-up call: {}), load {}",
        rest_kb as f64 / 1024.0,
        warm["sipp_successful"],
        loadavg()
    );
    let mut levels = Vec::new();
    for &n in &a.levels {
        let l = run_level(&e, d, sip, n, &speech_pcap, &a, rest_kb);
        eprintln!("crisis: speech level {n}: {l}");
        levels.push(l);
        std::thread::sleep(Duration::from_secs(3));
    }
    let media = (a.media_only > 0).then(|| {
        let media = Args {
            call_s: a.media_call_s,
            ..a.clone()
        };
        caller_pcap(&silent_pcap, Duration::from_secs(media.call_s), None, None);
        let l = run_level(&e, d, sip, a.media_only, &silent_pcap, &media, rest_kb);
        eprintln!("crisis: media-only {}: {l}", a.media_only);
        l
    });
    let best = levels
        .iter()
        .filter(|l| l["pass"] == serde_json::json!(true))
        .filter_map(|l| l["calls"].as_u64())
        .max();
    let out = serde_json::json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "call_s": a.call_s,
        "rate_cps": a.rate,
        "rss_rest_mb": rest_kb as f64 / 1024.0,
        "largest_passing_speech_level": best,
        "speech_levels": levels,
        "media_only": media,
        "note": "greeting, pacing and gaps measured on the engine's send path (/metrics); quantiles are histogram bucket bounds; other work on the machine shows in the load averages",
    });
    let path = r.join("target/bench/crisis.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
    e.child.kill().ok();
}
