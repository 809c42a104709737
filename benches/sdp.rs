//! SDP parse and offer/answer cost per INVITE (ivr-sip::sdp).
//!
//! `cargo bench -p ivr-benches --bench sdp`; the figure for the note is the
//! median of `sdp/parse_answer_print/kamailio`: what one inbound call's SDP
//! costs the signalling core.
#![allow(missing_docs)] // reason: criterion_group! generates an undocumented pub fn
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ivr_sip::sdp::{answer, LocalMedia, SdpConfig, SessionDescription};

const KAMAILIO: &str =
    include_str!("../crates/ivr-sip/tests/vectors/sdp/puzzel_kamailio_pcma_offer.sdp");
const BARESIP: &str =
    include_str!("../crates/ivr-sip/tests/vectors/sdp/baresip_many_codecs_offer.sdp");

fn bench(c: &mut Criterion) {
    let local = LocalMedia::new([192, 0, 2, 10].into(), 30000, 1_763_900_000);
    let cfg = SdpConfig::default();
    let mut g = c.benchmark_group("sdp");
    for (name, body) in [("kamailio", KAMAILIO), ("baresip", BARESIP)] {
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| SessionDescription::parse(black_box(body)).unwrap());
        });
        let offer = SessionDescription::parse(body).unwrap();
        g.bench_function(format!("answer/{name}"), |b| {
            b.iter(|| answer(black_box(&offer), &local, &cfg).unwrap());
        });
        g.bench_function(format!("parse_answer_print/{name}"), |b| {
            b.iter(|| {
                let o = SessionDescription::parse(black_box(body)).unwrap();
                let (a, n) = answer(&o, &local, &cfg).unwrap();
                (a.to_string(), n)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
