#!/usr/bin/env bash
# `make bench`: criterion benches and harnesses; results as JSON under target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
# The STT/TTS benches and the latency harness run real models: `make setup` fetches them.
for f in models/whisper-base/ggml-base-q8_0.bin models/whisper-base/ggml-base-q4_0.bin models/onnxruntime/libonnxruntime.so models/e5-small/e5-small-q4.bin \
	models/turn/silero_vad.onnx models/turn/smart-turn-v3.2-cpu.onnx; do
	if [ ! -f "$f" ]; then
		echo "bench: $f is missing: run \`make setup\` first" >&2
		exit 2
	fi
done
# Criterion benches (benches/*.rs): SIP parse/print, SDP offer/answer, media per
# call and pacer, flow turn, intent scoring at 40 intents and model load,
# callback enqueue, STT latency old vs fast settings, median/p95 (-> target/bench/stt.json),
# TTS first audio and real-time factor (-> target/bench/tts.json).
cargo bench -p ivr-benches
# SIPp call setup rate against the engine's SIP stack (-> target/bench/sip_load.json).
cargo run --release -p ivr-benches --bin sip_load -- 20000 2000
# benches/turn_detect.rs: end of turn, wait after the true end at <= 5 % false
# cut-offs per VAD, with and without Smart Turn (-> target/bench/turn_detect.json).
cargo run --release -p ivr-benches --bin turn_detect
# benches/turn_answer.rs: end of turn by answer ([turn] end_on_answer): false
# cut-offs and wait on the same turns, each asked by its kind of question
# (-> target/bench/turn_answer.json).
cargo run --release -p ivr-benches --bin turn_answer
# benches/latency.rs: real calls over loopback into the engine; end of speech ->
# first reply packet with its breakdown at 1, 10, 20 calls, and the most calls
# with p95 < 1 s (-> target/bench/latency.json).
cargo run --release -p ivr-benches --bin latency
# benches/security_probe.rs: issue 14's probe again: a call's set-up delay and
# RTP pacing with and without a 2,000/s INVITE flood from outside the trunks,
# the 503 at the call limit, and a flood spoofing the trunk (-> stdout, JSON).
cargo run --release -p ivr-benches --bin security_probe | tee target/bench/security_probe.txt
# benches/crisis.rs: the crisis peak on this box: callers from the bench's own
# light load generator (speech and keys) at 50, 100, 200, 300 calls against
# `ivr serve`: greeting within 1 s, pacing p99, turns by speech vs keys (full
# STT queue), memory and CPU per call; then 1,000 media-only calls with
# packet-gap p99 (-> target/bench/crisis.json).
cargo build --release -p ivr-server
cargo run --release -p ivr-benches --bin crisis
ls -1 target/bench/*.json
