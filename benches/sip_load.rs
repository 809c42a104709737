//! SIPp call-setup load harness: starts the engine's SIP stack (UDP,
//! loopback) with the answering hook, drives it with `sipp` running
//! `tests/sipp/uac_call.xml` (INVITE/100/180/200/ACK, 200 ms, BYE/200) at a
//! given rate, and reports calls per second completed cleanly and failures.
//!
//! Usage: `cargo run --release -p ivr-benches --bin sip_load -- <calls> <rate_cps>`
//! Writes `target/bench/sip_load.json`.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ivr_engine::sip::{answer_calls, AnswerStats, FixedPcmaAnswer, SipListenConfig, SipService};
use ivr_sip::EndpointConfig;

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let calls: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rate: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let listen = SipListenConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec![],
        advertised: None,
        ..Default::default()
    };
    let (service, events) = SipService::start(listen, |a| {
        let mut c = EndpointConfig::new(a);
        c.max_calls = 100_000;
        c.rate_limit.per_second = 1e6;
        c.rate_limit.burst = 1e6;
        c
    })
    .await
    .expect("cannot start SIP service");
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
    let bot = service
        .handle()
        .local_addr(ivr_sip::Transport::Udp)
        .unwrap();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/sipp/uac_call.xml");
    let dir = std::env::temp_dir().join(format!("ivr-sip-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stat = dir.join("stat.csv");
    let start = Instant::now();
    let out = tokio::process::Command::new("sipp")
        .current_dir(&dir)
        .arg(bot.to_string())
        .args([
            "-sf",
            scenario,
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
            "-l",
            "5000",
        ])
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &free_udp_port().to_string(),
            "-mp",
            &free_udp_port().to_string(),
        ])
        .args([
            "-t",
            "u1",
            "-timeout",
            "600s",
            "-nostdin",
            "-trace_stat",
            "-stf",
            stat.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .output()
        .await
        .expect("cannot run sipp (install sip-tester)");
    let wall = start.elapsed();
    // Let the last BYEs reach the answering loop.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.lock().unwrap().ended_by_peer < u64::from(calls) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let ok = get("SuccessfulCall(C)");
    let failed = get("FailedCall(C)");
    let s = *stats.lock().unwrap();
    let cps = ok as f64 / wall.as_secs_f64();
    println!(
        "sipp {calls} calls at {rate} cps: {ok} ok, {failed} failed, exit {:?}, {:.1} s wall, {cps:.1} calls/s completed; engine saw {} answered, {} torn down by BYE",
        out.status.code(),
        wall.as_secs_f64(),
        s.answered,
        s.ended_by_peer
    );
    let _ = std::fs::create_dir_all("target/bench");
    let json = format!(
        "{{\"bench\":\"sip_load\",\"calls\":{calls},\"rate_cps\":{rate},\"successful\":{ok},\"failed\":{failed},\"wall_s\":{:.3},\"completed_cps\":{cps:.2},\"engine_answered\":{},\"engine_bye\":{}}}\n",
        wall.as_secs_f64(),
        s.answered,
        s.ended_by_peer
    );
    let _ = std::fs::write("target/bench/sip_load.json", json);
    let _ = std::fs::remove_dir_all(&dir);
    if failed > 0 || out.status.code() != Some(0) {
        std::process::exit(1);
    }
}
