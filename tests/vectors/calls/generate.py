#!/usr/bin/env python3
"""Render the call-like speech test set (phrases.toml) into target/speech-calls/.

Every [[menu]] and [[slot]] phrase is spoken by one voice variant (taken in
turn, so every variant is heard) and rendered under every condition:

  clean      16 kHz wideband, no telephone line
  g711       8 kHz G.711 A-law
  loss2      G.711 with 2 % of the 20 ms packets lost (zero-filled)
  babble20   babble (six talkers made from the voices) at 20 dB SNR, G.711
  babble10   the same at 10 dB
  street20   street noise (brown rumble, passing cars) at 20 dB, G.711, 1 % loss
  street10   the same at 10 dB, 3 % loss
  hiss20     line hiss at 20 dB, G.711, 1 % loss
  hiss10     the same at 10 dB, 2 % loss
  pause      a 700 ms pause mid-sentence (where the phrase has "|"), G.711

plus noise-only clips (no speech at all: digital silence, line hiss, pink
noise, street, babble, clicks), which must give "no input".

Voices: espeak-ng Danish in five variants (voice, speed, pitch), and the
piper English voice (voices/en_US-joe-medium, `pip install piper-tts`) at
three speeds, synthesised without sampling noise so runs repeat.

Deterministic: every random choice (noise, packet loss, babble offsets) comes
from a generator seeded with the clip's id. Output (git-ignored):
  target/speech-calls/<condition>/<id>.wav   (16 kHz for clean, else 8 kHz s16)
  target/speech-calls/manifest.toml          every clip with what it expects
The folder is $IVR_SPEECH_CALLS when set. Needs: python3 >= 3.11, numpy, sox,
espeak-ng, piper-tts. Run: tests/vectors/calls/generate.py
"""
import os
import subprocess
import sys
import tempfile
import tomllib
import wave
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = os.environ.get("IVR_SPEECH_CALLS") or os.path.join(ROOT, "target", "speech-calls")
JOE = os.path.join(ROOT, "voices", "en_US-joe-medium", "en_US-joe-medium.onnx")
RATE = 16000

# (espeak voice, words per minute, pitch 0-99)
DA_VOICES = [("da", 150, 50), ("da+f2", 165, 62), ("da+m3", 135, 40), ("da+f4", 175, 55), ("da+m1", 145, 45)]
# piper length scale (1.0 = the voice's own speed)
EN_VOICES = [1.0, 0.9, 1.12]
# condition -> (noise kind, SNR dB, packet loss, telephone, pause)
CONDITIONS = {
    "clean": (None, None, 0.0, False, False),
    "g711": (None, None, 0.0, True, False),
    "loss2": (None, None, 0.02, True, False),
    "babble20": ("babble", 20, 0.0, True, False),
    "babble10": ("babble", 10, 0.0, True, False),
    "street20": ("street", 20, 0.01, True, False),
    "street10": ("street", 10, 0.03, True, False),
    "hiss20": ("hiss", 20, 0.01, True, False),
    "hiss10": ("hiss", 10, 0.02, True, False),
    "pause": (None, None, 0.0, True, True),
}
# Noise-only clips: (id, kind, level dBFS, seconds).
NOISE_ONLY = [
    ("silence-1", "silence", None, 1.5),
    ("hiss-1", "hiss", -40, 1.5),
    ("hiss-2", "hiss", -30, 3.0),
    ("pink-1", "pink", -30, 2.0),
    ("street-1", "street", -28, 2.5),
    ("street-2", "street", -22, 1.5),
    ("babble-1", "babble", -30, 2.0),
    ("babble-2", "babble", -24, 3.0),
    ("clicks-1", "clicks", -20, 2.0),
    ("clicks-2", "clicks", -12, 1.2),
]
PAUSE_S = 0.7
PAD_S = 0.15

_piper = None


def piper_voice():
    global _piper
    if _piper is None:
        try:
            from piper import PiperVoice
        except ImportError:
            sys.exit("generate.py: the English voice needs `pip install piper-tts==1.8.0`")
        if not os.path.exists(JOE):
            sys.exit(f"generate.py: {JOE} missing: run `make setup` (scripts/setup/20-voices.sh)")
        _piper = PiperVoice.load(JOE)
    return _piper


def sox(*args):
    # -D: no dither (sox dithers at random when it reduces the bit depth).
    subprocess.run(["sox", "-D", "-V1", *args], check=True)


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
        return data, w.getframerate()


def write_wav(path, samples, rate):
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def to_16k_trimmed(raw, tmp, trim=True):
    """A voice's WAV as 16 kHz mono, its own leading/trailing silence trimmed."""
    out = os.path.join(tmp, "16k.wav")
    effects = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"] if trim else []
    sox(raw, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", out, *effects)
    return read_wav(out)[0]


def espeak(text, voice, tmp):
    name, wpm, pitch = voice
    raw = os.path.join(tmp, "espeak.wav")
    ssml = "<speak>" + text.replace("|", f'<break time="{int(PAUSE_S * 1000)}ms"/>') + "</speak>"
    subprocess.run(["espeak-ng", "-m", "-v", name, "-s", str(wpm), "-p", str(pitch), "-w", raw, ssml], check=True)
    return to_16k_trimmed(raw, tmp)


def piper(text, length_scale, tmp):
    from piper import SynthesisConfig

    cfg = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
    parts = []
    for part in text.split("|"):
        raw = os.path.join(tmp, "piper.wav")
        with wave.open(raw, "wb") as w:
            piper_voice().synthesize_wav(part.strip(), w, syn_config=cfg)
        parts.append(to_16k_trimmed(raw, tmp))
        parts.append(np.zeros(int(PAUSE_S * RATE)))
    return np.concatenate(parts[:-1])


def speak(lang, text, voice, tmp):
    return espeak(text, voice, tmp) if lang == "da" else piper(text, voice, tmp)


def without_pause(text):
    return " ".join(text.replace("|", " ").split())


def rms(x):
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


def speech_rms(x):
    """RMS over the 20 ms frames within 30 dB of the loudest: the speech itself."""
    frames = [x[i:i + 320] for i in range(0, len(x) - 319, 320)]
    levels = np.array([rms(f) for f in frames])
    if not len(levels) or levels.max() == 0:
        return 0.0
    loud = levels[levels > levels.max() * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(loud ** 2)))


def pink(rng, n):
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec))
    f[0] = 1
    return np.fft.irfft(spec / np.sqrt(f), n)


def street(rng, n):
    brown = np.cumsum(rng.standard_normal(n))
    # Remove the drift (a slow moving average) so only the rumble is left.
    k = 800
    brown = brown - np.convolve(brown, np.ones(k) / k, mode="same")
    t = np.arange(n) / RATE
    env = 0.4 + sum(
        rng.uniform(0.8, 1.6) * np.exp(-(((t - rng.uniform(0, n / RATE)) / rng.uniform(0.4, 1.0)) ** 2))
        for _ in range(2)
    )
    return brown / (rms(brown) or 1.0) * env + 0.3 * pink(rng, n) / (rms(pink(rng, n)) or 1.0)


def clicks(rng, n):
    x = 0.002 * rng.standard_normal(n)
    for _ in range(max(2, int(n / RATE * rng.uniform(3, 8)))):
        at = int(rng.integers(0, max(1, n - 200)))
        length = int(rng.integers(20, 160))
        x[at:at + length] += rng.choice([-1, 1]) * np.exp(-np.arange(length) / (length / 4)) * rng.uniform(0.3, 1.0)
    return x


class Babble:
    """Six talkers (both languages' phrases, different voices), looped and summed."""

    def __init__(self, texts, tmp):
        self.talkers = []
        for i, (lang, text) in enumerate(texts[:6]):
            voice = DA_VOICES[i % len(DA_VOICES)] if lang == "da" else EN_VOICES[i % len(EN_VOICES)]
            self.talkers.append(speak(lang, without_pause(text), voice, tmp))

    def __call__(self, rng, n):
        out = np.zeros(n)
        for t in self.talkers:
            looped = np.tile(t, n // len(t) + 2)
            start = int(rng.integers(0, len(t)))
            out += looped[start:start + n] / (rms(t) or 1.0)
        return out


def noise(kind, rng, n, babble):
    if kind == "hiss":
        return rng.standard_normal(n)
    if kind == "pink":
        return pink(rng, n)
    if kind == "street":
        return street(rng, n)
    if kind == "babble":
        return babble(rng, n)
    if kind == "clicks":
        return clicks(rng, n)
    if kind == "silence":
        return np.zeros(n)
    raise ValueError(kind)


def telephone(x16, loss, rng, tmp):
    """16 kHz -> 8 kHz G.711 A-law and back; `loss` of the 20 ms packets zeroed."""
    src = os.path.join(tmp, "in16.wav")
    alaw = os.path.join(tmp, "alaw.wav")
    back = os.path.join(tmp, "back8.wav")
    write_wav(src, x16, RATE)
    sox(src, "-r", "8000", "-c", "1", "-e", "a-law", "-b", "8", alaw)
    sox(alaw, "-e", "signed-integer", "-b", "16", back)
    x8 = read_wav(back)[0]
    if loss > 0:
        for i in range(0, len(x8), 160):
            if rng.random() < loss:
                x8[i:i + 160] = 0.0
    return x8


def seed(clip_id):
    return np.random.default_rng(zlib.crc32(clip_id.encode()))


def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    with open(os.path.join(HERE, "phrases.toml"), "rb") as f:
        phrases = tomllib.load(f)
    for cond in CONDITIONS:
        os.makedirs(os.path.join(OUT, cond), exist_ok=True)
    os.makedirs(os.path.join(OUT, "noise"), exist_ok=True)
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        babble = Babble([(m["lang"], m["text"]) for m in phrases["menu"][::5]], tmp)
        counters = {"da": 0, "en": 0}
        items = [("menu", m) for m in phrases["menu"]] + [("slot", s) for s in phrases["slot"]]
        for kind, p in items:
            lang = p["lang"]
            n = counters[lang]
            counters[lang] += 1
            voices = DA_VOICES if lang == "da" else EN_VOICES
            voice = voices[n % len(voices)]
            base = f"{kind}-{lang}-{n:02d}"
            voice_name = f"espeak-{voice[0]}-s{voice[1]}-p{voice[2]}" if lang == "da" else f"piper-joe-x{voice}"
            plain = without_pause(p["text"])
            speech = speak(lang, plain, voice, tmp)
            paused = speak(lang, p["text"], voice, tmp) if "|" in p["text"] else speech
            for cond, (nkind, snr, loss, phone, pause) in CONDITIONS.items():
                clip = f"{base}-{cond}"
                rng = seed(clip)
                x = paused if pause else speech
                pad = np.zeros(int(PAD_S * RATE))
                x = np.concatenate([pad, x, pad])
                if nkind:
                    nz = noise(nkind, rng, len(x), babble)
                    nz = nz / (rms(nz) or 1.0) * speech_rms(x) * 10 ** (-snr / 20)
                    x = x + nz
                peak = np.max(np.abs(x))
                if peak > 0.98:
                    x = x * 0.98 / peak
                if phone:
                    write_wav(os.path.join(OUT, cond, base + ".wav"), telephone(x, loss, rng, tmp), 8000)
                else:
                    write_wav(os.path.join(OUT, cond, base + ".wav"), x, RATE)
            entries.append((base, kind, lang, p, voice_name, plain))
            print(f"{base}: {voice_name}: {plain}")
        for nid, nkind, level, secs in NOISE_ONLY:
            rng = seed(nid)
            n = int(secs * RATE)
            x = noise(nkind, rng, n, babble)
            if level is not None:
                x = x / (rms(x) or 1.0) * 10 ** (level / 20)
            x = np.clip(x, -0.98, 0.98)
            write_wav(os.path.join(OUT, "noise", nid + ".wav"), telephone(x, 0.0, rng, tmp), 8000)
            print(f"noise/{nid}: {nkind} {level} dBFS {secs} s")
    with open(os.path.join(OUT, "manifest.toml"), "w", encoding="utf-8") as f:
        f.write("# Written by tests/vectors/calls/generate.py: do not edit.\n")
        f.write("conditions = [" + ", ".join(q(c) for c in CONDITIONS) + "]\n\n")
        for base, kind, lang, p, voice_name, plain in entries:
            f.write(f"[[clip]]\nid = {q(base)}\nkind = {q(p.get('kind', 'menu'))}\nlang = {q(lang)}\n")
            f.write(f"voice = {q(voice_name)}\ntext = {q(plain)}\n")
            expect = p.get("intent") or p.get("expect") or p.get("kind")
            f.write(f"expect = {q(expect)}\n\n")
        for nid, nkind, level, secs in NOISE_ONLY:
            f.write(f"[[noise]]\nid = {q(nid)}\nkind = {q(nkind)}\nseconds = {secs}\n\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
