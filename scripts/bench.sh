#!/usr/bin/env bash
# `make bench`: criterion benches and harnesses; results as JSON under target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
# Criterion benches (benches/*.rs): SIP parse/print, SDP offer/answer, media per
# call and pacer, flow turn, callback enqueue, STT latency (-> target/bench/stt.json),
# TTS first audio and real-time factor (-> target/bench/tts.json).
cargo bench -p ivr-benches
# SIPp call setup rate against the engine's SIP stack (-> target/bench/sip_load.json).
cargo run --release -p ivr-benches --bin sip_load -- 20000 2000
ls -1 target/bench/*.json
