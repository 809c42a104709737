#!/usr/bin/env bash
# Makes the VAD / endpointing / barge-in test audio in this folder.
# Needs espeak-ng and sox (both in scripts/setup/apt-packages.txt). Deterministic
# apart from sox's noise generator, so the committed files are the reference:
# re-run only to change them, and update the .labels files it writes.
#
# Each WAV is 8 kHz mono 16-bit. Speech (Danish, espeak-ng) is trimmed of its own
# leading/trailing silence and placed at known offsets in silence, then noise is
# mixed in. The .labels file beside each WAV lists "start end" in seconds of the
# speech segments: the ground truth the tests compare against.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

say() { # text out.wav : Danish speech, 8 kHz, trimmed
  espeak-ng -v da -s 150 -w "$tmp/raw.wav" "$1"
  sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$2" silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
}
dur() { soxi -D "$1"; }
sil() { sox -n -r 8000 -c 1 -b 16 "$2" trim 0 "$1"; }

say "Jeg vil gerne bestille en tid hos lægen." "$tmp/u1.wav"
say "Mit telefonnummer er tolv, fireogtredive, seksoghalvtreds." "$tmp/u2.wav"
say "Hvornår har borgerservice åbent i morgen?" "$tmp/u3.wav"

# 1. Two utterances in white noise (SNR about 15 dB): endpointing boundaries.
sil 1.0 "$tmp/s1.wav"; sil 1.5 "$tmp/s2.wav"; sil 1.2 "$tmp/s3.wav"
sox "$tmp/s1.wav" "$tmp/u1.wav" "$tmp/s2.wav" "$tmp/u2.wav" "$tmp/s3.wav" "$tmp/clean.wav"
total=$(dur "$tmp/clean.wav")
sox -n -r 8000 -c 1 -b 16 "$tmp/noise.wav" synth "$total" whitenoise vol 0.02
sox -m -v 1 "$tmp/clean.wav" -v 1 "$tmp/noise.wav" -b 16 two_utterances_in_white_noise_8k.wav
d1=$(dur "$tmp/u1.wav"); d2=$(dur "$tmp/u2.wav")
python3 - "$d1" "$d2" > two_utterances_in_white_noise_8k.labels <<'PY'
import sys
d1, d2 = map(float, sys.argv[1:])
s1 = 1.0; e1 = s1 + d1; s2 = e1 + 1.5; e2 = s2 + d2
print(f"{s1:.3f} {e1:.3f}\n{s2:.3f} {e2:.3f}")
PY

# 2. Same speech in brown (low-frequency, car/street-like) noise, louder: VAD robustness.
sil 0.8 "$tmp/b1.wav"; sil 1.0 "$tmp/b2.wav"
sox "$tmp/b1.wav" "$tmp/u3.wav" "$tmp/b2.wav" "$tmp/clean3.wav"
total=$(dur "$tmp/clean3.wav")
sox -n -r 8000 -c 1 -b 16 "$tmp/bnoise.wav" synth "$total" brownnoise vol 0.08
sox -m "$tmp/clean3.wav" "$tmp/bnoise.wav" -b 16 utterance_in_brown_noise_8k.wav
d3=$(dur "$tmp/u3.wav")
python3 -c "print(f'0.800 {0.8 + $d3:.3f}')" > utterance_in_brown_noise_8k.labels

# 3. A click (5 ms full-scale) at 1.0 s and a cough-like noise burst (120 ms) at
#    2.0 s, then speech at 3.5 s, in light noise: barge-in must ignore the first
#    two and fire on the speech.
sox -n -r 8000 -c 1 -b 16 "$tmp/click.wav" synth 0.005 square 1000 vol 0.9
sox -n -r 8000 -c 1 -b 16 "$tmp/cough.wav" synth 0.12 pinknoise vol 0.6 fade t 0.01 0.12 0.05
sil 1.0 "$tmp/c0.wav"; sil 0.995 "$tmp/c1.wav"; sil 1.38 "$tmp/c2.wav"; sil 1.0 "$tmp/c3.wav"
sox "$tmp/c0.wav" "$tmp/click.wav" "$tmp/c1.wav" "$tmp/cough.wav" "$tmp/c2.wav" "$tmp/u1.wav" "$tmp/c3.wav" "$tmp/clean4.wav"
total=$(dur "$tmp/clean4.wav")
sox -n -r 8000 -c 1 -b 16 "$tmp/lnoise.wav" synth "$total" whitenoise vol 0.01
sox -m "$tmp/clean4.wav" "$tmp/lnoise.wav" -b 16 click_and_cough_then_speech_8k.wav
python3 -c "print(f'3.500 {3.5 + $d1:.3f}')" > click_and_cough_then_speech_8k.labels

# 4. A clean prompt for the PESQ check of the encoder -> RTP -> jitter buffer -> decoder path.
say "Velkommen til kommunen. Du kan tale med mig, eller trykke en tast." prompt_da_clean_8k.wav

ls -la *.wav *.labels
