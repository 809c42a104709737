//! Flow step latency (budget: < 1 ms per caller turn, ARCHITECTURE.md):
//! one caller utterance through intent matching to a transfer, on the
//! shipped Nordby flow; and loading/validating every shipped flow.
//!
//! Run: `cargo bench -p ivr-benches --bench flow_step`.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement
#![allow(missing_docs)] // reason: criterion_group!/criterion_main! generate undocumented items

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use ivr_core::Pii;
use ivr_flow::{CallContext, Event, FlowStore, Interpreter};

fn flows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows")
}

fn bench(c: &mut Criterion) {
    let (store, _) = FlowStore::load(flows()).expect("shipped flows load");
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-23T10:30:00+01:00")
        .unwrap()
        .with_timezone(&Utc);
    c.bench_function("flow_turn_speech_to_transfer", |b| {
        b.iter_batched(
            || {
                let mut it = Interpreter::new(
                    store.route("+4570101010").unwrap(),
                    CallContext {
                        caller: Pii::new("+4522334455".into()),
                        lang: None,
                    },
                );
                it.start(now);
                it
            },
            |mut it| {
                it.handle(
                    Event::Speech {
                        text: Pii::new("jeg ringer om min boligstøtte".into()),
                        confidence: 0.9,
                        lang: None,
                        identified: false,
                    },
                    now,
                )
            },
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("flow_load_all_shipped", |b| {
        b.iter(|| ivr_flow::load(&flows()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
