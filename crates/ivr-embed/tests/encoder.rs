//! The real model (`make setup` fetches it; these tests fail with the fix
//! when it is missing, like the whisper and piper tests): it loads fast,
//! embeds deterministically to unit vectors, ranks Danish and English
//! paraphrases of an errand above other errands, and serves several threads
//! at once with the same vectors as one thread.
#![allow(clippy::unwrap_used)] // reason: tests

use std::{path::PathBuf, sync::Arc, time::Instant};

use ivr_embed::{check_model_file, E5Encoder};
use ivr_flow::semantic::{cosine, Role, SentenceEncoder};

fn model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(ivr_embed::DEFAULT_MODEL)
}

fn encoder() -> E5Encoder {
    E5Encoder::load(&model()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_shipped_model_passes_the_layout_check_and_loads_within_a_second() {
    let info = check_model_file(&model()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.dim, 384);
    assert_eq!(info.layers, 12);
    let t = Instant::now();
    let e = encoder();
    let took = t.elapsed();
    eprintln!("model load: {took:?} (check + map: {:?})", e.load_time());
    assert!(took.as_secs_f64() < 1.0, "load took {took:?}");
    assert_eq!(e.dim(), 384);
}

#[test]
fn vectors_are_unit_length_and_the_same_every_time() {
    let e = encoder();
    let a = e
        .embed("jeg vil gerne aflyse min tid", Role::Query)
        .unwrap();
    let b = e
        .embed("jeg vil gerne aflyse min tid", Role::Query)
        .unwrap();
    assert_eq!(a, b);
    let n: f32 = a.iter().map(|x| x * x).sum();
    assert!((n - 1.0).abs() < 1e-3, "{n}");
    // The prefix matters: the same words as a passage are another vector.
    let p = e
        .embed("jeg vil gerne aflyse min tid", Role::Passage)
        .unwrap();
    assert!(cosine(&a, &p) < 0.9999);
    // Empty, NUL-laden and very long input are embedded, not refused.
    assert_eq!(e.embed("", Role::Query).unwrap().len(), 384);
    assert_eq!(e.embed("a\0b", Role::Query).unwrap().len(), 384);
    assert_eq!(
        e.embed(&"øh ".repeat(2000), Role::Query).unwrap().len(),
        384
    );
}

#[test]
fn paraphrases_of_an_errand_in_either_language_rank_above_other_errands() {
    let e = encoder();
    let errands = [
        "aflyse en aftale i jobcentret",
        "hjemmehjælp og hjemmepleje",
        "ring mig op",
        "forny mit pas",
        "storskrald og affald",
    ];
    let vecs: Vec<Vec<f32>> = errands
        .iter()
        .map(|t| e.embed(t, Role::Query).unwrap())
        .collect();
    for (said, want) in [
        ("jeg kan ikke komme til mit møde på jobcentret i morgen", 0),
        ("I can't make it to my meeting at the job centre", 0),
        ("min mor skal have hjælp i hjemmet", 1),
        ("could someone please call me back", 2),
        ("mit pas er udløbet", 3),
        ("my passport has expired", 3),
        ("hvornår henter I storskrald", 4),
    ] {
        let q = e.embed(said, Role::Query).unwrap();
        let scores: Vec<f32> = vecs.iter().map(|v| cosine(&q, v)).collect();
        let best = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap();
        assert_eq!(best, want, "{said}: {scores:?}");
    }
}

#[test]
fn several_threads_share_one_model_and_get_the_sequential_vectors() {
    let e = Arc::new(encoder());
    let texts: Vec<String> = (0..8)
        .map(|i| format!("tekst nummer {i} om pas og kørekort"))
        .collect();
    let sequential: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| e.embed(t, Role::Query).unwrap())
        .collect();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            let texts = texts.clone();
            std::thread::spawn(move || {
                texts
                    .iter()
                    .map(|t| e.embed(t, Role::Query).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), sequential);
    }
}
