#!/usr/bin/env bash
# `make bench`: criterion benches and harnesses; results as JSON under target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
# includes benches/stt.rs: STT latency medians (1, 3, 5 s; da, en) -> target/bench/stt.json
cargo bench -p ivr-benches
echo "bench: text to speech (first audio, real-time factor, voice load per voice) in target/bench/tts.json"
