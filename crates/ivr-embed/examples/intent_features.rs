//! Development aid: for each turn of a TSV (`lang<TAB>intent<TAB>text`),
//! prints every intent of a municipality's main menu with its words score
//! and its best cosine, one JSON object a line, for tuning the combination.
//!
//! `cargo run -p ivr-embed --example intent_features -- flows nordby FILE.tsv`
#![allow(clippy::unwrap_used)] // reason: a development tool

use std::sync::Arc;

use ivr_core::Lang;
use ivr_flow::{
    intents,
    model::StepKind,
    semantic::{Role, SentenceEncoder},
    FlowStore,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (flows, muni, file) = (&args[1], &args[2], &args[3]);
    let enc: Arc<dyn SentenceEncoder> = Arc::new(
        ivr_embed::E5Encoder::load(std::path::Path::new(ivr_embed::DEFAULT_MODEL)).unwrap(),
    );
    let (store, _) = FlowStore::load_with(flows, Some(enc.clone())).unwrap();
    let route = store.municipality(muni).unwrap();
    let m = route.municipality.clone();
    let flow = m.flow_named(&route.entry).unwrap();
    let StepKind::Gather(g) = &flow.step_named("menu").unwrap().kind else {
        panic!("no menu")
    };
    let names: Vec<String> = g.intents.iter().map(|i| i.name.clone()).collect();
    println!("{{\"intents\": {names:?}}}");
    let other: Vec<Vec<f32>> = std::env::var("OTHER")
        .ok()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| enc.embed(l, Role::Query).unwrap())
        .collect();
    for line in std::fs::read_to_string(file).unwrap().lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.splitn(3, '\t').collect();
        let lang = if cols[0] == "en" { Lang::En } else { Lang::Da };
        let q = enc.embed(cols[2], Role::Query).unwrap();
        let s = intents::score(g, cols[2], lang, &m.languages, Some(&q));
        let mut lex = vec![0.0; names.len()];
        let mut cos = vec![0.0; names.len()];
        let mut at = vec![Vec::new(); names.len()];
        for x in &s {
            lex[x.intent] = x.lexical;
            cos[x.intent] = x.cosine.unwrap_or(0.0);
            at[x.intent] = x.heard_at.clone();
        }
        let oc: Vec<f32> = other
            .iter()
            .map(|o| ivr_flow::semantic::cosine(&q, o))
            .collect();
        println!(
            "{{\"lang\": \"{}\", \"label\": \"{}\", \"text\": {:?}, \"lex\": {:?}, \"cos\": {:?}, \"other\": {:?}, \"at\": {:?}}}",
            cols[0], cols[1], cols[2], lex, cos, oc, at
        );
    }
}
