//! Intent scoring (issue 12, item 6): one caller turn against a menu of 40
//! intents, on one core, with the sentence model (embedding the turn plus
//! scoring every intent by words and meaning, and the out-of-scope
//! comparison) and by words alone; the model load; and loading the shipped
//! flows with a warm disk cache of example vectors (an engine start).
//! Budget: well under 10 ms a turn; load under 1 s.
//!
//! Run: `cargo bench -p ivr-benches --bench intents` (needs `make setup`:
//! models/e5-small/ and the e5 engine compiled from it).
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement
#![allow(missing_docs)] // reason: criterion_group!/criterion_main! generate undocumented items

use std::{path::PathBuf, sync::Arc};

use criterion::{criterion_group, criterion_main, Criterion};
use ivr_core::Lang;
use ivr_flow::{
    intents,
    model::{Gather, StepKind},
    semantic::{Role, SentenceEncoder},
    FlowStore,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped Nordby menu grown to 40 intents: its own (with the
/// municipality's departments) plus copies under other names, so scoring
/// does the work of a 40-intent menu.
fn menu_of_40(store: &FlowStore) -> (Gather, Vec<Lang>) {
    let m = store.municipality("nordby").unwrap().municipality;
    let flow = m.flow_named("main").unwrap();
    let StepKind::Gather(g) = &flow.step_named("menu").unwrap().kind else {
        panic!("menu is a gather")
    };
    let mut g = (**g).clone();
    let base = g.intents.clone();
    let mut k = 0;
    while g.intents.len() < 40 {
        let mut i = base[k % base.len()].clone();
        i.name = format!("{}_{k}", i.name);
        g.intents.push(i);
        k += 1;
    }
    (g, m.languages.clone())
}

fn bench(c: &mut Criterion) {
    let model = root().join(ivr_embed::DEFAULT_MODEL);
    c.bench_function("intent_model_load", |b| {
        b.iter(|| ivr_embed::E5Encoder::load(&model).unwrap())
    });
    let enc: Arc<dyn SentenceEncoder> = Arc::new(ivr_embed::E5Encoder::load(&model).unwrap());
    let (with_model, _) = FlowStore::load_with(root().join("flows"), Some(enc.clone())).unwrap();
    let (words, _) = FlowStore::load(root().join("flows")).unwrap();
    let (g, langs) = menu_of_40(&with_model);
    let m = with_model.municipality("nordby").unwrap().municipality;
    let (gw, _) = menu_of_40(&words);
    assert_eq!(g.intents.len(), 40);
    let turn = "øh hej, jeg har et møde på jobcentret på torsdag som jeg ikke kan komme til";
    c.bench_function("intent_turn_40_intents_model_and_words", |b| {
        b.iter(|| {
            let q = enc.embed(turn, Role::Query).unwrap();
            let s = intents::score(&g, turn, Lang::Da, &langs, Some(&q));
            let o = intents::out_of_scope_similarity(&m, Some(&q));
            intents::decide(&s, &g, &Default::default(), o)
        })
    });
    let q = enc.embed(turn, Role::Query).unwrap();
    c.bench_function("intent_score_40_intents_given_the_turn_vector", |b| {
        b.iter(|| intents::score(&g, turn, Lang::Da, &langs, Some(&q)))
    });
    c.bench_function("intent_turn_40_intents_words_alone", |b| {
        b.iter(|| intents::score(&gw, turn, Lang::Da, &langs, None))
    });
    c.bench_function("embed_one_turn", |b| {
        b.iter(|| enc.embed(turn, Role::Query).unwrap())
    });
    // An engine start with the example vectors on disk: a fresh encoder
    // each time (the process's memory cache is keyed by its name, the same
    // for every E5Encoder, so this measures the memory cache plus the file).
    let cache = std::env::temp_dir().join(format!("ivr-bench-intents-{}", std::process::id()));
    let options = || ivr_flow::StoreOptions {
        vector_cache: Some(cache.clone()),
        ..Default::default()
    };
    FlowStore::load_with_options(root().join("flows"), Some(enc.clone()), options()).unwrap();
    let mut g2 = c.benchmark_group("flows_load");
    g2.sample_size(10);
    g2.bench_function("flows_load_with_warm_vector_cache", |b| {
        b.iter(|| {
            FlowStore::load_with_options(root().join("flows"), Some(enc.clone()), options())
                .unwrap()
        })
    });
    g2.finish();
    std::fs::remove_dir_all(&cache).ok();
}

criterion_group!(benches, bench);
criterion_main!(benches);
