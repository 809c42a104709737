//! Network input never panics (ARCHITECTURE.md principle 5): random and
//! mutated SDP bodies and digest header values go through the parsers and the
//! offer/answer code. Whatever parses must print back to the same value.
//!
//! More cases: `PROPTEST_CASES=100000 cargo test -p ivr-sip --test parsers_never_panic`.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use ivr_sip::auth::{Challenge, Credentials};
use ivr_sip::sdp::{accept_answer, answer, offer, LocalMedia, SdpConfig, SessionDescription};
use proptest::prelude::*;

const VECTORS: &[&str] = &[
    include_str!("vectors/sdp/puzzel_kamailio_pcma_offer.sdp"),
    include_str!("vectors/sdp/baresip_many_codecs_offer.sdp"),
    include_str!("vectors/sdp/sipp_default_uac_offer.sdp"),
    include_str!("vectors/sdp/hold_rfc2543_c0000_offer.sdp"),
    include_str!("vectors/sdp/ipv6_pcmu_offer.sdp"),
    include_str!("vectors/sdp/dynamic_pt_pcma_offer.sdp"),
    include_str!("vectors/sdp/video_first_then_audio_offer.sdp"),
    include_str!("vectors/sdp/sloppy_lf_only_ata_offer.sdp"),
    include_str!("vectors/sdp/rfc4475_sdp01_body.sdp"),
];

/// Everything downstream of parsing, for one body.
fn exercise(body: &[u8]) {
    let Ok(sd) = SessionDescription::parse_bytes(body) else {
        return;
    };
    let printed = sd.to_string();
    let again = SessionDescription::parse(&printed)
        .unwrap_or_else(|e| panic!("printed form does not parse ({e}):\n{printed}"));
    assert_eq!(
        again, sd,
        "print/parse round trip changed the value:\n{printed}"
    );

    let local = LocalMedia::new("192.0.2.10".parse().unwrap(), 30000, 1);
    let cfg = SdpConfig::default();
    if let Ok((ans, neg)) = answer(&sd, &local, &cfg) {
        assert_eq!(ans.media.len(), sd.media.len());
        assert!(neg.media_index < sd.media.len());
        let back = SessionDescription::parse(&ans.to_string()).expect("our answer parses");
        assert_eq!(back, ans);
    }
    let _ = accept_answer(&offer(&local, &cfg), &sd);
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    DupLine(usize),
    DropLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop::sample::select(b"= :/\r\n0-9aIP\x00\xff".to_vec())
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..20).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::DupLine),
        any::<usize>().prop_map(Mutation::DropLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut body: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = body.len().max(1);
        match *m {
            Mutation::Flip(i, b) => {
                if let Some(x) = body.get_mut(i % len) {
                    *x ^= b;
                }
            }
            Mutation::Insert(i, b) => body.insert(i % (body.len() + 1), b),
            Mutation::Delete(i, n) => {
                let s = i % len;
                let e = (s + n).min(body.len());
                if s < e {
                    body.drain(s..e);
                }
            }
            Mutation::Truncate(i) => body.truncate(i % len),
            Mutation::DupLine(i) | Mutation::DropLine(i) | Mutation::SwapLines(i, _) => {
                let mut lines: Vec<Vec<u8>> =
                    body.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                let k = i % n;
                match *m {
                    Mutation::DupLine(_) => {
                        let l = lines[k].clone();
                        lines.insert(k, l);
                    }
                    Mutation::DropLine(_) => {
                        lines.remove(k);
                    }
                    Mutation::SwapLines(_, j) => lines.swap(k, j % n),
                    _ => {}
                }
                body = lines.join(&b'\n');
            }
        }
    }
    body
}

/// SDP-shaped lines: a known or unknown type letter and short values built
/// from the characters SDP uses.
fn sdp_like() -> impl Strategy<Value = String> {
    let line = (
        prop::sample::select(vec![
            'v', 'o', 's', 'c', 't', 'm', 'a', 'b', 'r', 'i', 'k', 'z', 'x',
        ]),
        "[ -~]{0,30}",
    )
        .prop_map(|(t, v)| format!("{t}={v}"));
    let attr = prop::sample::select(vec![
        "a=rtpmap:",
        "a=fmtp:",
        "a=ptime:",
        "a=maxptime:",
        "a=rtcp:",
        "a=sendonly",
        "m=audio ",
        "c=IN IP4 ",
        "c=IN IP6 ",
        "o=- 1 ",
    ])
    .prop_flat_map(|p| "[0-9a-zA-Z./: -]{0,24}".prop_map(move |v| format!("{p}{v}")));
    prop::collection::vec(prop_oneof![line, attr], 0..24).prop_map(|lines| {
        let mut s = String::from("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n");
        s.push_str(&lines.join("\r\n"));
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&body);
    }

    #[test]
    fn mutated_real_offers_never_panic(
        v in 0..VECTORS.len(),
        muts in prop::collection::vec(mutation(), 1..8),
    ) {
        exercise(&apply(VECTORS[v].as_bytes().to_vec(), &muts));
    }

    #[test]
    fn sdp_shaped_lines_never_panic(body in sdp_like()) {
        exercise(body.as_bytes());
    }

    #[test]
    fn digest_values_never_panic(
        v in prop_oneof![
            ".{0,200}",
            "Digest( [a-z]{1,8}=(\"([^\"\\\\]|\\\\.){0,12}\"|[a-z0-9]{0,8}),?){0,8}",
        ],
    ) {
        if let Ok(c) = Challenge::parse(&v) {
            prop_assert_eq!(Challenge::parse(&c.to_string()), Ok(c));
        }
        if let Ok(c) = Credentials::parse(&v) {
            prop_assert_eq!(Credentials::parse(&c.to_string()), Ok(c));
        }
    }
}
