#!/usr/bin/env python3
"""Render the end-of-turn test set described by turns.toml.

For every [[turn]] and each of two speaker variants this writes, into OUT
(default: target/turn-vectors/ of the workspace; the audio, 7 MB, is not
committed: benches/turn_detect.rs runs this script when it is missing)
  OUT/g711/<id>-<variant>.wav   8 kHz mono s16, through G.711 A-law and back
and OUT/truth.toml with, per file, where speech ends (the true end of the
turn) and where the caller pauses inside it, in milliseconds.

A file: 0.8 s of line, then the parts with the pauses between them, then
2.5 s of line; line hiss (white noise at about -60 dBFS) under everything, as
a telephone line has, so no VAD sees digital silence.

Variants:
  a  espeak-ng `da` at 150 words/min, pitch 50 / piper Joe at length 1.0;
     pauses as written
  b  espeak-ng `da` at 175 words/min, pitch 35 / piper Joe at length 1.15;
     pauses 1.25 times as long
Every part but the last gets a trailing comma, so the voice keeps a
continuing intonation where the caller pauses.

Needs: sox, espeak-ng, python3 >= 3.11, piper-tts 1.8 (pip install
piper-tts==1.8.0) and the Joe voice from `make setup`.
Run: tests/vectors/turn/generate.py [OUT [TURNS]]   (about 2 minutes; TURNS:
another set in the same format, e.g. heldout_turns.toml)
Piper samples noise, so two runs differ slightly (espeak-ng does not); the
figures in docs/turn-detection.md are from one such rendering.
"""
import os
import random
import subprocess
import sys
import tempfile
import tomllib
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
JOE = os.path.join(ROOT, "voices", "en_US-joe-medium", "en_US-joe-medium.onnx")
RATE = 8000
LEAD_MS = 800
TAIL_MS = 2500
HISS = 33  # peak of the line hiss (s16), about -60 dBFS
VARIANTS = {
    "a": {"espeak": ["-s", "150", "-p", "50"], "length": 1.0, "pause": 1.0},
    "b": {"espeak": ["-s", "175", "-p", "35"], "length": 1.15, "pause": 1.25},
}

_piper = None


def piper_voice():
    global _piper
    if _piper is None:
        from piper import PiperVoice

        if not os.path.exists(JOE):
            sys.exit(f"generate.py: {JOE} missing: run `make setup`")
        _piper = PiperVoice.load(JOE)
    return _piper


def synth(voice, variant, text, out_raw):
    v = VARIANTS[variant]
    if voice == "espeak-da":
        subprocess.run(["espeak-ng", "-v", "da", *v["espeak"], "-w", out_raw, text], check=True)
    elif voice == "piper-en-joe":
        from piper.config import SynthesisConfig

        with wave.open(out_raw, "wb") as w:
            piper_voice().synthesize_wav(text, w, syn_config=SynthesisConfig(length_scale=v["length"]))
    else:
        sys.exit(f"generate.py: unknown voice {voice}")


def sox(*args):
    subprocess.run(["sox", "-V1", *args], check=True)


def read_s16(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        b = w.readframes(w.getnframes())
    return [int.from_bytes(b[i : i + 2], "little", signed=True) for i in range(0, len(b), 2)]


def write_s16(path, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(max(-32768, min(32767, s)).to_bytes(2, "little", signed=True) for s in samples))


def part_audio(tmp, voice, variant, text):
    """One part at 8 kHz s16, trimmed of the voice's own leading/trailing silence."""
    raw = os.path.join(tmp, "raw.wav")
    trimmed = os.path.join(tmp, "part.wav")
    synth(voice, variant, text, raw)
    sox(raw, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", trimmed,
        "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse")
    return read_s16(trimmed)


def main():
    turns = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "turns.toml")
    with open(turns, "rb") as f:
        turns = tomllib.load(f)["turn"]
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "turn-vectors")
    out_dir = os.path.join(out, "g711")
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(2026)
    truth = ["# Written by generate.py: per file, the true end of the turn and the",
             "# pauses inside it (ms from the start of the file).", ""]
    ms = lambda n: round(n * 1000 / RATE)
    with tempfile.TemporaryDirectory() as tmp:
        for t in turns:
            if len(t["pauses"]) != len(t["parts"]) - 1:
                sys.exit(f"generate.py: {t['id']}: one pause between each two parts")
            for variant, v in VARIANTS.items():
                fid = f"{t['id']}-{variant}"
                audio = [0] * (LEAD_MS * RATE // 1000)
                pauses = []
                for i, text in enumerate(t["parts"]):
                    last = i == len(t["parts"]) - 1
                    audio += part_audio(tmp, t["voice"], variant, text if last else text + ",")
                    if not last:
                        start = len(audio)
                        audio += [0] * int(t["pauses"][i] * v["pause"] * RATE / 1000)
                        pauses.append((ms(start), ms(len(audio))))
                end = len(audio)
                audio += [0] * (TAIL_MS * RATE // 1000)
                audio = [s + rng.randint(-HISS, HISS) for s in audio]
                lin = os.path.join(tmp, "lin.wav")
                alaw = os.path.join(tmp, "alaw.wav")
                write_s16(lin, audio)
                # Through the telephone: G.711 A-law and back to linear s16.
                sox(lin, "-e", "a-law", "-b", "8", alaw)
                sox(alaw, "-e", "signed-integer", "-b", "16", os.path.join(out_dir, fid + ".wav"))
                truth += [f'[file."{fid}"]', f'lang = "{t["id"][:2]}"', f"speech_end_ms = {ms(end)}",
                          "pauses_ms = [" + ", ".join(f"[{a}, {b}]" for a, b in pauses) + "]", ""]
                print(f"{fid}: {' | '.join(t['parts'])}")
    with open(os.path.join(out, "truth.toml"), "w") as f:
        f.write("\n".join(truth))


if __name__ == "__main__":
    main()
