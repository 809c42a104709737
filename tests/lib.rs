//! Helpers shared by the end-to-end tests in this folder (real peers over loopback).
//!
//! Each test file is declared as a `[[test]]` in `tests/Cargo.toml`.

use std::path::PathBuf;

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
