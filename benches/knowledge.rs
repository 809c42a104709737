//! Knowledge retrieval latency (budget: under 10 ms for 500 entries on one
//! core, issue 15): one caller question scored against every phrasing of
//! 500 entries (the shipped Nordby entries, repeated with their own ids and
//! an extra distinguishing word each, so the index has 500 entries and about
//! 1,800 phrasings per language), lexical signal.
//!
//! Run: `cargo bench -p ivr-benches --bench knowledge`.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement
#![allow(missing_docs)] // reason: criterion_group!/criterion_main! generate undocumented items

use std::path::PathBuf;

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion};
use ivr_core::Lang;
use ivr_flow::knowledge::KnowledgeBase;

fn flows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows")
}

fn bench(c: &mut Criterion) {
    let dep = ivr_flow::load(&flows())
        .deployment
        .expect("shipped flows load");
    let base = dep.municipalities["nordby"].knowledge.entries().to_vec();
    const WORDS: &[&str] = &[
        "vinter", "sommer", "skole", "havn", "bus", "cykel", "torv", "park", "strand", "skov",
    ];
    let mut entries = Vec::new();
    'fill: for round in 0.. {
        for e in &base {
            if entries.len() == 500 {
                break 'fill;
            }
            let mut e = e.clone();
            e.id = format!("{}-{round}", e.id);
            if round > 0 {
                let w = WORDS[round % WORDS.len()];
                for qs in e.questions.values_mut() {
                    for q in qs.iter_mut() {
                        q.push_str(&format!(" {w}{round}"));
                    }
                }
            }
            entries.push(e);
        }
    }
    let kb = KnowledgeBase::new(entries);
    assert_eq!(kb.entries().len(), 500);
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    c.bench_function("knowledge_retrieve_500_entries_da", |b| {
        b.iter(|| {
            kb.retrieve(
                "øh hvad skal jeg betale for et nyt pas til min datter",
                Lang::Da,
                today,
            )
        })
    });
    c.bench_function("knowledge_retrieve_500_entries_en", |b| {
        b.iter(|| {
            kb.retrieve(
                "how much do I have to pay for a new passport",
                Lang::En,
                today,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
