//! Network input never panics: random bytes and mutated RFC 4475 messages
//! go through the datagram parser, the stream framer, every typed header
//! accessor and the UAS policy.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use ivr_sip::msg::framer::{Framed, StreamFramer};
use ivr_sip::msg::{HeaderName, Message};
use ivr_sip::policy::{bad_request_for_unframed, check_request, check_response, UasPolicy};
use proptest::prelude::*;

fn vectors() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/vectors/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    v
}

fn exercise(bytes: &[u8]) {
    if let Ok(m) = Message::parse_datagram(bytes) {
        let h = m.headers();
        let _ = (
            h.vias(),
            h.from(),
            h.to(),
            h.call_id(),
            h.cseq(),
            h.contacts(),
            h.max_forwards(),
        );
        let _ = (
            h.accept(),
            h.content_type(),
            h.refer_to(),
            h.event(),
            h.subscription_state(),
        );
        let _ = h.challenges(&HeaderName::WwwAuthenticate);
        let _ = h.name_addrs(&HeaderName::Route);
        let _ = h.tokens(&HeaderName::Require);
        match &m {
            Message::Request(r) => {
                let _ = check_request(r, &UasPolicy::default());
            }
            Message::Response(r) => {
                let _ = check_response(r);
            }
        }
        let _ = Message::parse_datagram(&m.to_bytes());
    } else {
        let _ = bad_request_for_unframed(bytes, "x");
    }
    let mut f = StreamFramer::new(4096, 4096);
    for chunk in bytes.chunks(7) {
        f.push(chunk);
        while let Ok(Framed::Message(_)) = f.next_message() {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_torture_messages_never_panic(
        idx in 0usize..49,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let vs = vectors();
        let mut m = vs[idx % vs.len()].clone();
        for (at, b) in flips {
            let i = at.index(m.len());
            m[i] = b;
        }
        exercise(&m);
        let c = cut.index(m.len() + 1);
        exercise(&m[..c]);
    }
}
