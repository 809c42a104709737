//! baresip (a real softphone) places a call into the engine over loopback
//! UDP, the engine answers (fixed PCMA answer), baresip hangs up.
//! baresip runs with a temporary config dir bound to 127.0.0.1 and is driven
//! through its stdin command interface (`/dial`, `/hangup`, `/quit`).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivr_engine::sip::{answer_calls, AnswerStats, FixedPcmaAnswer, SipListenConfig, SipService};
use ivr_sip::EndpointConfig;
use tokio::io::AsyncWriteExt;

fn baresip_binary() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("baresip"))
                .find(|p| p.is_file())
        })
        .expect(
            "baresip not found on PATH: install it with `make setup` (Debian package baresip-core)",
        )
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn module_path() -> &'static str {
    [
        "/usr/lib/baresip/modules",
        "/usr/lib/x86_64-linux-gnu/baresip/modules",
        "/usr/local/lib/baresip/modules",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).join("g711.so").exists())
    .expect("baresip modules (g711.so) not found: install baresip-core with `make setup`")
}

/// Bounded wait for the engine's counters; on expiry, fails with baresip's output.
async fn wait_for(
    stats: &Arc<Mutex<AnswerStats>>,
    child: &mut tokio::process::Child,
    what: &str,
    f: impl Fn(&AnswerStats) -> bool,
) {
    let ok = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if f(&stats.lock().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if ok.is_err() {
        let _ = child.start_kill();
        let mut out = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut o, &mut out).await;
        }
        panic!(
            "engine never saw {what}: {:?}\nbaresip output:\n{out}",
            *stats.lock().unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_the_engine_and_hangs_up() {
    let listen = SipListenConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec![],
        advertised: None,
        ..Default::default()
    };
    let (service, events) = SipService::start(listen, EndpointConfig::new)
        .await
        .unwrap();
    let stats = Arc::new(Mutex::new(AnswerStats::default()));
    let answer = FixedPcmaAnswer {
        ip: "127.0.0.1".parse().unwrap(),
        port: free_udp_port(),
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

    let dir = std::env::temp_dir().join(format!(
        "ivr-baresip-{}-{}",
        std::process::id(),
        free_udp_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let sip_port = free_udp_port();
    let rtp = free_udp_port();
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip_port}\n\
             sip_transports\t\tudp\n\
             audio_player\t\taubridge,nowhere\n\
             audio_source\t\tausine,440\n\
             audio_alert\t\taubridge,nowhere\n\
             rtp_ports\t\t{rtp}-{rtp_hi}\n\
             net_interface\t\t127.0.0.1\n\
             module_path\t\t{mp}\n\
             module\t\t\tstdio.so\n\
             module\t\t\tg711.so\n\
             module\t\t\tausine.so\n\
             module\t\t\taubridge.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n",
            rtp_hi = rtp + 10,
            mp = module_path()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("accounts"),
        "<sip:e2e@127.0.0.1>;regint=0;audio_codecs=PCMA\n",
    )
    .unwrap();

    let mut child = tokio::process::Command::new(baresip_binary())
        .arg("-f")
        .arg(&dir)
        .arg("-e")
        .arg(format!("/dial sip:bot@{bot}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("failed to start baresip");
    let mut stdin = child.stdin.take().unwrap();

    wait_for(&stats, &mut child, "the call answered and ACKed", |s| {
        s.confirmed == 1
    })
    .await;
    stdin.write_all(b"/hangup\n").await.unwrap();
    stdin.flush().await.unwrap();
    wait_for(&stats, &mut child, "baresip's BYE", |s| {
        s.ended_by_peer == 1
    })
    .await;
    let _ = stdin.write_all(b"/quit\n").await;
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    let _ = child.kill().await;
    let s = *stats.lock().unwrap();
    assert_eq!(
        (s.incoming, s.answered, s.confirmed, s.ended_by_peer),
        (1, 1, 1, 1)
    );
    assert_eq!(service.handle().call_count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
