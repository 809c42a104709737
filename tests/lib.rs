//! Helpers shared by the end-to-end tests in this folder (real peers over loopback).
//!
//! Each test file is declared as a `[[test]]` in `tests/Cargo.toml`.

use std::path::{Path, PathBuf};

/// The `sipp` binary on PATH (Debian package sip-tester, installed by `make setup`).
pub fn sipp_binary() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("sipp"))
                .find(|p| p.is_file())
        })
        .expect("sipp not found on PATH: install it with `make setup` (Debian package sip-tester)")
}

/// Ports for one SIPp caller: `(sip, media)`. SIPp binds four media sockets
/// from `-mp` on (audio RTP/RTCP, video RTP/RTCP) and fails the whole call if
/// any is taken, so one free port from the kernel is not enough: a port two
/// above it may belong to another test's socket (seen: "Unable to bind video
/// RTP socket ... Address already in use"). The blocks come from 10000-19999,
/// below the kernel's ephemeral range (where other tests' sockets get their
/// ports) and the engines' RTP ranges, each checked free as a whole.
pub fn sipp_ports() -> (u16, u16) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const BASE: u32 = 10_000;
    const SPAN: u32 = 10_000;
    const BLOCK: u32 = 6;
    let first = (std::process::id() % 50) * 200;
    for _ in 0..SPAN / BLOCK {
        let offset = (first + NEXT.fetch_add(BLOCK, Ordering::Relaxed)) % (SPAN - BLOCK);
        let media = u16::try_from(BASE + offset - offset % 2).expect("ports stay below 20000");
        let free = (0..BLOCK as u16).all(|i| {
            std::net::UdpSocket::bind(("127.0.0.1", media + i)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", media + i)).is_ok()
        });
        if free {
            return (media + 4, media);
        }
    }
    panic!(
        "no block of {BLOCK} free UDP ports in {BASE}-{}",
        BASE + SPAN
    );
}

/// A real SMTP server (aiosmtpd, the integrations crate's
/// `tests/support/smtp_sink.py`) on a loopback port; every accepted mail is
/// written as JSON (envelope, decoded headers, body). Killed on drop.
pub struct SmtpSink {
    child: std::process::Child,
    dir: PathBuf,
    /// Its loopback port.
    pub port: u16,
}

#[allow(clippy::unwrap_used)] // reason: a test helper: a failed unwrap is a failed test
impl SmtpSink {
    /// Starts the server on a free loopback port, writing mails under
    /// `dir/smtp`; fails the test when aiosmtpd is missing.
    pub fn start(dir: &Path) -> SmtpSink {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = dir.join("smtp");
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("python3")
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../crates/ivr-integrations/tests/support/smtp_sink.py"),
            )
            .arg(port.to_string())
            .arg(&dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 must be installed (make setup)");
        let ready = std::io::BufReader::new(child.stdout.take().unwrap())
            .lines()
            .next()
            .and_then(Result::ok);
        assert_eq!(
            ready.as_deref(),
            Some("READY"),
            "aiosmtpd did not start: run `make setup` (scripts/setup/40-integration-test-tools.sh installs it)"
        );
        SmtpSink { child, dir, port }
    }

    /// The mails received so far, oldest first (as JSON: `mail_from`,
    /// `rcpt_tos`, `headers`, `body`).
    pub fn received(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (up to 10 s) until `n` mails have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..100 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.received()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
