//! Shared helpers of the benches (writing results as JSON under `target/bench/`).
//!
//! Each bench is declared as a `[[bench]]` (criterion, `harness = false`) or a
//! `[[bin]]` harness in `benches/Cargo.toml`.
