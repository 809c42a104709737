//! What the caller waits for between "yes, call me back" and the
//! confirmation: one committed callback request (SQLite WAL,
//! synchronous=FULL, fsync per commit), and a repeated request of the same
//! call (idempotent no-op). PostgreSQL too when IVR_TEST_POSTGRES_URL is set
//! (scripts/with-test-services.sh).
#![allow(missing_docs)] // reason: criterion_group! generates an undocumented pub fn
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use ivr_core::{CallId, Lang, Pii};
use ivr_integrations::callback::{CallbackKind, CallbackRequest, CallbackStore, TimeWindow};

fn request(call: String) -> CallbackRequest {
    let t = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap();
    CallbackRequest {
        call_ref: CallId::new(call),
        kind: CallbackKind::callback(),
        municipality: "aarhus".into(),
        phone: Pii::new("+4512345678".into()),
        topic: "boligstoette".into(),
        lang: Lang::Da,
        window: TimeWindow {
            start: t,
            end: t + chrono::Duration::hours(4),
        },
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![(
        "sqlite",
        format!("sqlite:{}", dir.path().join("ivr.db").display()),
    )];
    if let Ok(url) = std::env::var("IVR_TEST_POSTGRES_URL") {
        targets.push(("postgres", url));
    }
    static N: AtomicU64 = AtomicU64::new(0);
    for (label, url) in targets {
        let store = rt.block_on(CallbackStore::open(&url)).unwrap();
        let now = Utc::now();
        c.bench_function(&format!("callback_enqueue/{label}/new"), |b| {
            b.iter(|| {
                let call = format!(
                    "bench-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                );
                rt.block_on(store.enqueue(&request(call), now)).unwrap()
            })
        });
        let same = request(format!("bench-{}-same", std::process::id()));
        c.bench_function(&format!("callback_enqueue/{label}/repeat"), |b| {
            b.iter(|| rt.block_on(store.enqueue(&same, now)).unwrap())
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
