//! SRTP cost per packet (`cargo bench -p ivr-benches --bench srtp`): protect
//! and unprotect of one 20 ms PCMA packet (12-byte header + 160 bytes) with
//! AES_CM_128_HMAC_SHA1_80, through the engine's `SrtpSession`
//! (webrtc-srtp). A call does 50 of each per second.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use ivr_engine::call::srtp::SrtpSession;
use ivr_sip::sdp::{SrtpKeyMaterial, SrtpParams, SrtpSuite};

fn params(ours: u8, theirs: u8) -> SrtpParams {
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    SrtpParams {
        suite,
        local: SrtpKeyMaterial::new([ours; SrtpKeyMaterial::LEN]).key_for(suite),
        remote: SrtpKeyMaterial::new([theirs; SrtpKeyMaterial::LEN]).key_for(suite),
    }
}

fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&[1, 2, 3, 4]);
    p.extend_from_slice(&[0xd5; 160]);
    p
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let mut sender = SrtpSession::new(&params(1, 2)).unwrap();
    let mut seq = 0u16;
    c.bench_function("srtp_protect_pcma_20ms", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            black_box(sender.protect_rtp(&packet(seq)).unwrap())
        })
    });
    // Unprotect: a fresh receiving context per packet (made outside the
    // measurement), as the replay window refuses a packet seen before.
    let mut a = SrtpSession::new(&params(1, 2)).unwrap();
    let wire: Vec<Vec<u8>> = (0..1000u16)
        .map(|s| a.protect_rtp(&packet(s)).unwrap().to_vec())
        .collect();
    let mut i = 0usize;
    c.bench_function("srtp_unprotect_pcma_20ms", |b| {
        b.iter_batched(
            || {
                i += 1;
                (
                    SrtpSession::new(&params(2, 1)).unwrap(),
                    wire[i % wire.len()].clone(),
                )
            },
            |(mut rx, p)| black_box(rx.unprotect_rtp(&p).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    c.final_summary();
}
