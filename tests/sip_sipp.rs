//! SIPp (`sip-tester`) against the engine's SIP stack over loopback UDP:
//! plain call, CANCEL, re-INVITE (hold), OPTIONS, and a burst of calls.
//! Each asserts SIPp's exit code (0 = every call passed its scenario) and the
//! success/failure counts from its statistics file, plus what the engine saw.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivr_engine::sip::{answer_calls, AnswerStats, FixedPcmaAnswer, SipListenConfig, SipService};
use ivr_sip::EndpointConfig;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
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

struct Bot {
    service: SipService,
    stats: Arc<Mutex<AnswerStats>>,
    addr: SocketAddr,
}

async fn start_bot() -> Bot {
    let listen = SipListenConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        advertised: None,
        ..Default::default()
    };
    let (service, events) = SipService::start(listen, |a| {
        let mut c = EndpointConfig::new(a);
        c.max_calls = 1000;
        // SIPp bursts from one address: allow it (the limiter has its own tests).
        c.rate_limit.per_second = 10_000.0;
        c.rate_limit.burst = 10_000.0;
        c
    })
    .await
    .unwrap();
    let stats = Arc::new(Mutex::new(AnswerStats::default()));
    let answer = FixedPcmaAnswer {
        ip: "127.0.0.1".parse().unwrap(),
        port: 40_000,
    };
    tokio::spawn(answer_calls(
        service.handle(),
        events,
        answer,
        stats.clone(),
    ));
    let addr = service
        .handle()
        .local_addr(ivr_sip::Transport::Udp)
        .unwrap();
    Bot {
        service,
        stats,
        addr,
    }
}

/// SIPp's result: exit code and the last line of its stat CSV as name -> value.
struct SippRun {
    code: Option<i32>,
    stats: std::collections::HashMap<String, String>,
    output: String,
}

impl SippRun {
    fn count(&self, name: &str) -> u64 {
        self.stats
            .get(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(u64::MAX)
    }
}

async fn run_sipp(bot: SocketAddr, file: &str, calls: u32, rate: u32) -> SippRun {
    run_sipp_on(bot, file, calls, rate, "u1").await
}

/// `transport`: SIPp's `-t` mode (`u1` UDP, `t1` one TCP connection).
async fn run_sipp_on(
    bot: SocketAddr,
    file: &str,
    calls: u32,
    rate: u32,
    transport: &str,
) -> SippRun {
    let dir = std::env::temp_dir().join(format!(
        "ivr-sipp-{}-{}",
        std::process::id(),
        free_udp_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let stat = dir.join("stat.csv");
    let mut cmd = tokio::process::Command::new(sipp_binary());
    cmd.current_dir(&dir)
        .arg(bot.to_string())
        .args(["-sf", scenario(file).to_str().unwrap()])
        .args([
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
            "-l",
            "100",
        ])
        .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args(["-mp", &free_udp_port().to_string()])
        .args([
            "-t",
            transport,
            "-timeout",
            "60s",
            "-timeout_error",
            "-recv_timeout",
            "10000",
        ])
        .args(["-trace_stat", "-stf", stat.to_str().unwrap(), "-fd", "1"])
        .args(["-nostdin"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("failed to start sipp");
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("sipp did not finish within 90 s")
        .unwrap();
    let csv = std::fs::read_to_string(&stat).unwrap_or_default();
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or("").split(';').collect();
    let last: Vec<&str> = lines.next_back().unwrap_or("").split(';').collect();
    let stats = header
        .iter()
        .zip(last)
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect();
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    SippRun {
        code: out.status.code(),
        stats,
        output,
    }
}

fn assert_all_passed(run: &SippRun, calls: u64) {
    assert_eq!(run.code, Some(0), "sipp failed:\n{}", run.output);
    assert_eq!(
        run.count("SuccessfulCall(C)"),
        calls,
        "sipp stats: {:?}",
        run.stats
    );
    assert_eq!(run.count("FailedCall(C)"), 0, "sipp stats: {:?}", run.stats);
}

/// Waits (bounded) until the engine's counters satisfy `f`.
async fn engine_saw(bot: &Bot, f: impl Fn(&AnswerStats) -> bool) -> AnswerStats {
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = *bot.stats.lock().unwrap();
            if f(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    r.unwrap_or_else(|_| {
        panic!(
            "engine counters never matched: {:?}",
            *bot.stats.lock().unwrap()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_plain_call_is_answered_and_torn_down() {
    let bot = start_bot().await;
    let run = run_sipp(bot.addr, "uac_call.xml", 1, 1).await;
    assert_all_passed(&run, 1);
    let s = engine_saw(&bot, |s| s.ended_by_peer == 1).await;
    assert_eq!((s.incoming, s.answered, s.confirmed), (1, 1, 1));
    assert_eq!(bot.service.handle().call_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_cancel_gets_200_and_487() {
    let bot = start_bot().await;
    let run = run_sipp(bot.addr, "uac_cancel.xml", 1, 1).await;
    assert_all_passed(&run, 1);
    let s = engine_saw(&bot, |s| s.cancelled == 1).await;
    assert_eq!(s.answered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_reinvite_hold_is_answered_recvonly() {
    let bot = start_bot().await;
    let run = run_sipp(bot.addr, "uac_reinvite.xml", 1, 1).await;
    assert_all_passed(&run, 1);
    let s = engine_saw(&bot, |s| s.ended_by_peer == 1).await;
    assert_eq!((s.reinvites, s.confirmed), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_options_probe_gets_200_with_allow() {
    let bot = start_bot().await;
    let run = run_sipp(bot.addr, "uac_options.xml", 3, 10).await;
    assert_all_passed(&run, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_burst_of_50_calls_at_10_cps_all_succeed() {
    let bot = start_bot().await;
    let run = run_sipp(bot.addr, "uac_call.xml", 50, 10).await;
    assert_all_passed(&run, 50);
    let s = engine_saw(&bot, |s| s.ended_by_peer == 50).await;
    assert_eq!((s.incoming, s.answered, s.confirmed), (50, 50, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_plain_calls_over_tcp_are_answered_and_torn_down() {
    let bot = start_bot().await;
    let tcp = bot
        .service
        .handle()
        .local_addr(ivr_sip::Transport::Tcp)
        .unwrap();
    let run = run_sipp_on(tcp, "uac_call.xml", 5, 10, "t1").await;
    assert_all_passed(&run, 5);
    assert!(
        run.output.contains("(TCP)"),
        "sipp did not run over TCP:\n{}",
        run.output
    );
    let s = engine_saw(&bot, |s| s.ended_by_peer == 5).await;
    assert_eq!((s.incoming, s.answered, s.confirmed), (5, 5, 5));
}
