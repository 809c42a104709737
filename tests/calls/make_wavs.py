#!/usr/bin/env python3
"""Render the caller utterances the call scenarios need beyond the speech
test set (tests/vectors/speech/): wav/<id>.wav, 16 kHz mono s16.

    ./make_wavs.py [ID...]        (no ID: all of them)

Voices as in tests/vectors/speech/generate.py: espeak-da is espeak-ng `da`
(apt espeak-ng), piper-en-joe is piper en_US-joe-medium (voices/, fetched by
`make setup`) through the Python package piper-tts==1.8.0. Piper samples
noise, so two runs do not give byte-identical files; the committed WAVs are
the ones the tests ran with. Then make the pcap: ./make_pcap.py wav/ID.wav pcap/ID.pcap
"""
import os
import subprocess
import sys
import tempfile
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
JOE = os.path.join(ROOT, "voices", "en_US-joe-medium", "en_US-joe-medium.onnx")

UTTERANCES = {
    # A Danish caller with an English accent (piper's English voice reading
    # Danish): whisper base found espeak-ng's "Mit navn er Karen Hansen." so
    # unsure on one CPU (AMD, AVX2) that its guard dropped it as a guess,
    # while another (Intel, AVX-512) heard garbled words; the call's test is
    # of the job-centre flow and its mail, not of a borderline name.
    "da-navn-karen-hansen": ("piper-en-joe", "Mit navn er Karen Hansen."),
    "en-name-karen-hansen": ("piper-en-joe", "My name is Karen Hansen."),
    # Knowledge questions, from tests/vectors/knowledge_questions/ (da.tsv, en.tsv).
    "en-question-passport-price": ("piper-en-joe", "How much do I have to pay for a passport?"),
    "en-question-dog": ("piper-en-joe", "How do I register my dog?"),
}


def synth(voice, text, out_raw):
    if voice == "espeak-da":
        subprocess.run(["espeak-ng", "-v", "da", "-s", "150", "-w", out_raw, text], check=True)
    elif voice == "piper-en-joe":
        try:
            from piper import PiperVoice
        except ImportError:
            sys.exit("make_wavs.py: piper voices need `pip install piper-tts==1.8.0`")
        with wave.open(out_raw, "wb") as w:
            PiperVoice.load(JOE).synthesize_wav(text, w)
    else:
        sys.exit(f"make_wavs.py: unknown voice {voice}")


def main():
    ids = sys.argv[1:] or list(UTTERANCES)
    os.makedirs(os.path.join(HERE, "wav"), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i in ids:
            voice, text = UTTERANCES[i]
            raw = os.path.join(tmp, i + ".raw.wav")
            synth(voice, text, raw)
            out = os.path.join(HERE, "wav", i + ".wav")
            subprocess.run(["sox", "-V1", raw, "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer",
                            out, "pad", "0.15", "0.15"], check=True)
            print(out)


if __name__ == "__main__":
    main()
