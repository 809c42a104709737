//! The send direction of a call's media (issue 14, defect 1): the engine
//! streams nothing to the address in an SDP before the dialog is confirmed,
//! and stops streaming to an address that never answers. A 719-byte
//! INVITE+ACK used to buy 30 s of RTP (258 KB) towards whatever address the
//! SDP named: 359x amplification. On simulated time with the shipped flows.

mod support;

use std::time::Duration;

use support::{shipped_flows, Options, Sim};

/// The size of the probe's INVITE (with SDP) and ACK together.
const INVITE_AND_ACK_BYTES: usize = 719;
/// One G.711 RTP packet of 20 ms: 12 header bytes and 160 samples.
const RTP_PACKET_BYTES: usize = 172;

#[test]
fn no_rtp_leaves_for_the_sdp_address_before_the_ack() {
    let mut sim = Sim::ringing(&shipped_flows(), "+4570101010", Options::default());
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        sim.log.rtp.len(),
        0,
        "RTP sent before the dialog was confirmed"
    );
}

#[test]
fn rtp_to_an_sdp_address_that_never_answers_stops_after_the_first_media_timeout() {
    let opts = Options {
        first_media_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let mut sim = Sim::ringing(&shipped_flows(), "+4570101010", opts);
    // The forged SDP's address sends nothing, ever.
    sim.caller_muted = true;
    sim.sip(ivr_engine::call::core::SipEvent::Confirmed(None));
    let t0 = sim.now;
    sim.run_for(Duration::from_secs(60));
    assert!(sim.hung_up(), "the call to a silent address was not ended");
    let last = sim.log.rtp.last().map_or(t0, |(at, _)| *at);
    assert!(
        last.saturating_duration_since(t0) <= Duration::from_millis(5100),
        "RTP went on for {:?} after the ACK",
        last.saturating_duration_since(t0)
    );
    let out = sim.log.rtp.len() * RTP_PACKET_BYTES;
    let factor = out as f64 / INVITE_AND_ACK_BYTES as f64;
    eprintln!(
        "amplification from a trunk with a forged SDP address: {out} bytes of RTP for {INVITE_AND_ACK_BYTES} bytes in = {factor:.0}x (was 359x)"
    );
    assert!(factor < 65.0, "{factor:.0}x");
}

#[test]
fn a_caller_heard_from_within_the_first_media_timeout_keeps_the_call() {
    let opts = Options {
        first_media_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let mut sim = Sim::answered(&shipped_flows(), "+4570101010", opts);
    sim.run_for(Duration::from_secs(12));
    assert!(!sim.hung_up(), "a caller sending RTP was hung up");
    assert!(sim.log.rtp.len() > 500);
}
