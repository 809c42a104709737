//! Opus cost per browser call (`cargo bench -p ivr-benches --bench opus`):
//! one 20 ms packet encoded (a reply, 16 kHz mono at 24 kbit/s, as the
//! media session sends it) and one decoded to 16 kHz (the caller, as the VAD
//! and the recogniser get it), through ivr-media's codec (libopus). A
//! browser call does 50 of each per second, so the per-call CPU share is
//! 50 x (encode + decode) per second; the bench prints it.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::Criterion;
use ivr_media::codec::{AudioDecoder, AudioEncoder, Codec, MAX_PAYLOAD};

/// Speech at 16 kHz: the speech set's `da-koerekort-01` (espeak-ng).
fn speech() -> Vec<i16> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors/speech/wav/da-koerekort-01.wav");
    let mut r = hound::WavReader::open(p).unwrap();
    assert_eq!(r.spec().sample_rate, 16_000);
    r.samples::<i16>().map(Result::unwrap).collect()
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let pcm = speech();
    let frames: Vec<&[i16]> = pcm.chunks_exact(320).collect();
    // Packets of the whole utterance, to decode in turn.
    let mut enc = AudioEncoder::new(Codec::Opus);
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut p = [0u8; MAX_PAYLOAD];
            let n = enc.encode(f, &mut p);
            p[..n].to_vec()
        })
        .collect();
    let mut enc = AudioEncoder::new(Codec::Opus);
    let mut i = 0usize;
    let mut out = [0u8; MAX_PAYLOAD];
    c.bench_function("opus_encode_20ms_16k", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(enc.encode(black_box(frames[i]), &mut out))
        })
    });
    let mut dec = AudioDecoder::new(Codec::Opus);
    let mut j = 0usize;
    let mut pcm_out = [0i16; 960];
    c.bench_function("opus_decode_20ms_16k", |b| {
        b.iter(|| {
            j = (j + 1) % packets.len();
            black_box(dec.decode(black_box(&packets[j]), &mut pcm_out))
        })
    });
    c.final_summary();
}
