#!/usr/bin/env python3
"""Render the speech test set described by utterances.toml.

For every [[utterance]] this writes
  wav/<id>.wav   16 kHz mono signed 16-bit
  g711/<id>.wav  the 16 kHz file resampled to 8 kHz, encoded as G.711 A-law and
                 decoded again, stored as 8 kHz mono signed 16-bit

Voices:
  espeak-da      espeak-ng, voice `da` (apt espeak-ng, espeak-ng-data)
  espeak-en      espeak-ng, voice `en`
  piper-en-joe   piper, en_US-joe-medium (voices/en_US-joe-medium/, fetched by
                 `make setup`), run through the Python package `piper-tts`
                 (pip install piper-tts==1.8.0): the same ONNX model the Rust
                 engine uses.

Needs: sox, espeak-ng, python3 >= 3.11, piper-tts (only for piper voices).
Run from anywhere: tests/vectors/speech/generate.py [ID...]
Piper samples noise, so two runs do not give byte-identical files: the
committed audio is the reference the STT thresholds were calibrated on;
regenerate only when the set itself changes.
"""
import os
import subprocess
import sys
import tempfile
import tomllib
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
JOE = os.path.join(ROOT, "voices", "en_US-joe-medium", "en_US-joe-medium.onnx")
ESPEAK = {"espeak-da": "da", "espeak-en": "en"}
# A little silence either side, as an endpointer would cut it.
PAD_S = "0.15"

_piper = None


def piper_voice():
    global _piper
    if _piper is None:
        try:
            from piper import PiperVoice
        except ImportError:
            sys.exit("generate.py: piper voices need `pip install piper-tts==1.8.0`")
        if not os.path.exists(JOE):
            sys.exit(f"generate.py: {JOE} missing: run `make setup` (scripts/setup/20-voices.sh)")
        _piper = PiperVoice.load(JOE)
    return _piper


def synth(voice, text, out_raw):
    """Writes the voice's native WAV to out_raw."""
    if voice in ESPEAK:
        subprocess.run(["espeak-ng", "-v", ESPEAK[voice], "-s", "150", "-w", out_raw, text], check=True)
    elif voice == "piper-en-joe":
        # Load first: an error inside the `with` would be hidden by wave's own.
        joe = piper_voice()
        with wave.open(out_raw, "wb") as w:
            joe.synthesize_wav(text, w)
    else:
        sys.exit(f"generate.py: unknown voice {voice}")


def sox(*args):
    subprocess.run(["sox", "-V1", *args], check=True)


def main():
    with open(os.path.join(HERE, "utterances.toml"), "rb") as f:
        utts = tomllib.load(f)["utterance"]
    only = set(sys.argv[1:])
    ids = set()
    for u in utts:
        if u["id"] in ids:
            sys.exit(f"generate.py: duplicate id {u['id']}")
        ids.add(u["id"])
    os.makedirs(os.path.join(HERE, "wav"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "g711"), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for u in utts:
            if only and u["id"] not in only:
                continue
            raw = os.path.join(tmp, "raw.wav")
            alaw = os.path.join(tmp, "alaw.wav")
            wav16 = os.path.join(HERE, "wav", u["id"] + ".wav")
            g711 = os.path.join(HERE, "g711", u["id"] + ".wav")
            synth(u["voice"], u["text"], raw)
            # 16 kHz mono s16, trimmed of the voice's own leading/trailing silence, padded evenly.
            sox(raw, "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", wav16,
                "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse",
                "pad", PAD_S, PAD_S)
            # Through the telephone: 8 kHz, G.711 A-law, back to linear s16.
            sox(wav16, "-r", "8000", "-c", "1", "-e", "a-law", "-b", "8", alaw)
            sox(alaw, "-e", "signed-integer", "-b", "16", g711)
            print(f"{u['id']}: {u['voice']}: {u['text']}")


if __name__ == "__main__":
    main()
