//! The per-packet path (handle_rtp + one poll_output tick: jitter buffer, decode,
//! VAD, endpointer, encode, pacing, RTCP) must not touch the heap. A counting
//! global allocator checks it over 10 s of two-way audio with a prompt playing.
//! (Utterance buffers grow while a caller speaks and prompt buffers are made
//! per play() call, outside the measured loop: the caller audio here is
//! noise, not speech, and the bot's prompt is a shared 16 kHz one.)
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ivr_core::Pcm;
use ivr_media::{Codec, MediaParams, MediaSession, Output, PlayOptions, SessionConfig};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn run(codec: Codec) -> usize {
    let t0 = Instant::now();
    let mk = |remote, ssrc| {
        let p = MediaParams {
            codec,
            payload_type: codec.static_payload_type(),
            telephone_event_pt: Some(101),
            ptime: Duration::from_millis(20),
            remote_rtp: addr(remote),
            remote_rtcp: None,
        };
        MediaSession::new(
            p,
            SessionConfig {
                ssrc,
                ..Default::default()
            },
            t0,
        )
        .unwrap()
    };
    let mut bot = mk(5000, 1);
    let mut caller = mk(4000, 2);
    let mut seed = 7u32;
    let noise: Vec<i16> = (0..8000 * 12)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed % 600) as i16 - 300
        })
        .collect();
    // A shared 16 kHz prompt, as the engine plays cached ones: halved packet
    // by packet on G.711, sent as it is on G.722.
    bot.play_shared(
        std::sync::Arc::new(Pcm::new(16_000, vec![2000; 16_000 * 12])),
        PlayOptions { barge_in: false },
    )
    .unwrap();
    caller
        .play(&Pcm::new(8000, noise), PlayOptions { barge_in: false })
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut now = t0;
    let mut step = |s: &mut MediaSession,
                    peer: &mut MediaSession,
                    from: SocketAddr,
                    now: Instant|
     -> Instant {
        loop {
            let (n, rtp) = match s.poll_output(now) {
                Output::Transmit(t) => {
                    buf[..t.bytes.len()].copy_from_slice(t.bytes);
                    (t.bytes.len(), t.kind == ivr_media::PacketKind::Rtp)
                }
                Output::Event(_) => continue,
                Output::Timeout(t) => return t,
            };
            if rtp {
                peer.handle_rtp(&buf[..n], from, now).unwrap();
            } else {
                // RTCP comes from the port above RTP (RFC 3550 sec. 11).
                let from = SocketAddr::new(from.ip(), from.port() + 1);
                peer.handle_rtcp(&buf[..n], from, now).unwrap();
            }
        }
    };
    // Warm-up second (first latch, first RTCP), then count.
    let mut counted_from = None;
    while now < t0 + Duration::from_secs(11) {
        if counted_from.is_none() && now >= t0 + Duration::from_secs(1) {
            COUNTING.store(true, Ordering::SeqCst);
            counted_from = Some(now);
        }
        let a = step(&mut bot, &mut caller, addr(4000), now);
        let b = step(&mut caller, &mut bot, addr(5000), now);
        now = a.min(b);
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert!(bot.stats().packets_received > 450, "{:?}", bot.stats());
    ALLOCS.swap(0, Ordering::SeqCst)
}

#[test]
fn ten_seconds_of_two_way_media_allocate_nothing() {
    for codec in [Codec::Pcma, Codec::Pcmu, Codec::G722] {
        let n = run(codec);
        assert_eq!(
            n, 0,
            "{codec:?}: {n} heap allocations on the per-packet path"
        );
    }
}
