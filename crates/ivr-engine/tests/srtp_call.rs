//! An SRTP call on simulated time: the caller offers RTP/SAVP with its SDES
//! key, the engine answers with its own; every packet the engine sends must
//! authenticate under the engine's key (the caller decrypts them), the
//! caller's keys inside SRTP reach the flow, and a plain RTP packet on the
//! call — what a stranger without the key could send — is dropped and
//! counted, never heard as a key.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use ivr_core::Dtmf;
use ivr_engine::call::core::{CallEvent, Input, SipCommand};
use support::{shipped_flows, Options, Sim, CALLER_RTP};

const SWITCHBOARD: &str = "+4570101010";

fn srtp_call() -> Sim {
    Sim::answered(
        &shipped_flows(),
        SWITCHBOARD,
        Options {
            srtp: true,
            ..Options::default()
        },
    )
}

fn referred(s: &Sim) -> bool {
    s.log
        .sip
        .iter()
        .any(|(_, c)| matches!(c, SipCommand::Refer { .. }))
}

#[test]
fn an_srtp_caller_hears_only_authentic_audio_and_its_encrypted_key_transfers_the_call() {
    let mut sim = srtp_call();
    sim.expect_within(Duration::from_secs(30), "the menu listens", |s| {
        s.core.listening().is_some()
    });
    sim.run_for(Duration::from_millis(500));
    assert!(
        sim.log.rtp.iter().any(|(_, audio)| *audio),
        "the caller decrypted the prompts' audio"
    );
    assert_eq!(
        sim.log.undecryptable, 0,
        "every engine packet authenticates"
    );
    sim.press(Dtmf::D0);
    sim.expect_within(Duration::from_secs(20), "the call is transferred", referred);
    let refused = sim
        .log
        .events
        .iter()
        .filter(|(_, e)| matches!(e, CallEvent::SrtpRefused))
        .count();
    assert_eq!(refused, 0);
}

/// Key 0 as RFC 4733 events in clear RTP from the caller's own address, as
/// a stranger or a misconfigured peer would send it.
fn inject_clear_key_0(sim: &mut Sim) {
    sim.expect_within(Duration::from_secs(30), "the menu listens", |s| {
        s.core.listening().is_some()
    });
    for seq in 0..3u16 {
        let mut pkt = vec![
            0x80, 101, 0x40, seq as u8, 0, 0, 0x10, 0, 0xca, 0x11, 0xe4, 0x99,
        ];
        pkt.extend_from_slice(&[0, 0x8a, 0x03, 0x20]);
        let now = sim.now;
        sim.core.handle_input(
            Input::Rtp {
                bytes: &pkt,
                from: CALLER_RTP,
            },
            now,
        );
    }
    sim.run_for(Duration::from_secs(3));
}

#[test]
fn the_clear_key_packets_of_the_next_test_do_transfer_a_plain_call() {
    let mut sim = Sim::answered(&shipped_flows(), SWITCHBOARD, Options::default());
    inject_clear_key_0(&mut sim);
    assert!(
        referred(&sim),
        "control: on plain RTP these packets are key 0"
    );
}

#[test]
fn plain_rtp_on_an_srtp_call_is_dropped_and_counted_not_heard_as_a_key() {
    let mut sim = srtp_call();
    inject_clear_key_0(&mut sim);
    let refused = sim
        .log
        .events
        .iter()
        .filter(|(_, e)| matches!(e, CallEvent::SrtpRefused))
        .count();
    assert_eq!(refused, 3, "each clear packet is refused and counted");
    assert!(!referred(&sim), "a clear key must not act for the caller");
}
