//! Quick timing of what `benches/intents.rs` measures with criterion, built
//! with only this crate's dependencies (for a machine where a release build of
//! the whole engine is too slow): model load, embedding one turn, scoring it
//! against 40 intents. Prints medians of repeated runs.
//!
//! `cargo run --release -p ivr-embed --example intent_timing`
#![allow(clippy::unwrap_used)] // reason: a development tool

use std::{path::PathBuf, sync::Arc, time::Instant};

use ivr_core::Lang;
use ivr_flow::{
    intents,
    model::StepKind,
    semantic::{Role, SentenceEncoder},
    FlowStore,
};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(n: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(f());
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(v)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = root.join(ivr_embed::DEFAULT_MODEL);
    let load = time(20, || ivr_embed::E5Encoder::load(&model).unwrap());
    let enc: Arc<dyn SentenceEncoder> = Arc::new(ivr_embed::E5Encoder::load(&model).unwrap());
    let t = Instant::now();
    let (store, _) = FlowStore::load_with(root.join("flows"), Some(enc.clone())).unwrap();
    let flows_ms = t.elapsed().as_secs_f64() * 1000.0;
    let m = store.municipality("nordby").unwrap().municipality;
    let StepKind::Gather(g) = &m
        .flow_named("main")
        .unwrap()
        .step_named("menu")
        .unwrap()
        .kind
    else {
        panic!("menu")
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
    let turn = "øh hej, jeg har et møde på jobcentret på torsdag som jeg ikke kan komme til";
    let embed = time(200, || enc.embed(turn, Role::Query).unwrap());
    let q = enc.embed(turn, Role::Query).unwrap();
    let score = time(500, || {
        intents::score(&g, turn, Lang::Da, &m.languages, Some(&q))
    });
    let words = time(500, || {
        intents::score(&g, turn, Lang::Da, &m.languages, None)
    });
    let whole = time(200, || {
        let q = enc.embed(turn, Role::Query).unwrap();
        let s = intents::score(&g, turn, Lang::Da, &m.languages, Some(&q));
        let o = intents::out_of_scope_similarity(&m, Some(&q));
        intents::decide(&s, &g, &Default::default(), o)
    });
    // An engine start with the example vectors on disk (fresh cache folder,
    // filled once; the process's memory cache also holds them after the
    // first load, so the second figure is memory + file).
    let cache = std::env::temp_dir().join(format!("ivr-intent-timing-{}", std::process::id()));
    let options = || ivr_flow::StoreOptions {
        vector_cache: Some(cache.clone()),
        ..Default::default()
    };
    let fresh: Arc<dyn SentenceEncoder> = Arc::new(ivr_embed::E5Encoder::load(&model).unwrap());
    let t = Instant::now();
    FlowStore::load_with_options(root.join("flows"), Some(fresh.clone()), options()).unwrap();
    let fingerprint_and_fill_ms = t.elapsed().as_secs_f64() * 1000.0;
    let warm = time(5, || {
        FlowStore::load_with_options(root.join("flows"), Some(fresh.clone()), options()).unwrap()
    });
    std::fs::remove_dir_all(&cache).ok();
    println!("flows load, model hash + cache file written:   {fingerprint_and_fill_ms:.0} ms");
    println!("flows load with the warm disk cache, median:   {warm:.0} ms");
    println!("model load (check + map), median of 20:       {load:.2} ms");
    println!("flows load with example embeddings (once):     {flows_ms:.0} ms");
    println!("embed one turn, median of 200:                 {embed:.2} ms");
    println!("score 40 intents given the vector, median:     {score:.3} ms");
    println!("score 40 intents by words alone, median:       {words:.3} ms");
    println!("whole turn (embed + score 40 + decide), median: {whole:.2} ms");
}
