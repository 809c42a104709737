#!/usr/bin/env bash
# Regenerates the audio-prompt test files (committed; tests do not run this).
# Each file is a 1.0 s 440 Hz tone at half scale, in the format its name says,
# so a test can check that decoding keeps the length and the pitch.
# Needs sox, and libsox-fmt-mp3 (apt) for the MP3.
set -euo pipefail
cd "$(dirname "$0")"
tone() { sox -V1 -n -r "$1" -c "$2" "${@:3}" synth 1.0 sine 440 vol 0.5; }
tone 44100 2 -b 16 prompt-stereo-44k1-s16.wav
tone 8000 1 -e a-law prompt-8k-alaw.wav
tone 48000 1 -b 16 prompt-48k.flac
tone 44100 1 -C 64 prompt-44k1.mp3
tone 22050 2 -C 3 prompt-stereo-22k05.ogg
printf 'this is not audio\n' > not-audio.mp3
