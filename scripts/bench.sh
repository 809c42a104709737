#!/usr/bin/env bash
# `make bench`: criterion benches and harnesses; results as JSON under target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
# The latency harness runs the whole engine: it needs the models `make setup` fetches.
for f in models/whisper-base/ggml-base-q8_0.bin models/onnxruntime/libonnxruntime.so; do
	if [ ! -f "$f" ]; then
		echo "bench: $f is missing: run \`make setup\` first" >&2
		exit 2
	fi
done
# includes benches/stt.rs: STT latency medians (1, 3, 5 s; da, en) -> target/bench/stt.json
cargo bench -p ivr-benches
echo "bench: text to speech (first audio, real-time factor, voice load per voice) in target/bench/tts.json"
# benches/latency.rs: real calls over loopback into the engine; end of speech ->
# first reply packet with its breakdown at 1, 10, 20 calls, and the most calls
# with p95 < 1 s -> target/bench/latency.json
cargo run --release -p ivr-benches --bin latency
