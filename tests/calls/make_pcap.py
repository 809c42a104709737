#!/usr/bin/env python3
"""Turn a WAV into a pcap of G.711 A-law RTP packets (payload type 8, 20 ms)
that SIPp plays with <exec play_pcap_audio=...> as the caller's voice.

    ./make_pcap.py IN.wav OUT.pcap [--lead-ms 300] [--tail-ms 1200]

sox resamples to 8 kHz mono and encodes A-law; silence (A-law 0xD5) is put
before and after so the engine's endpointer sees the end of the utterance.
SIPp rewrites addresses and ports, so the ones written here are placeholders.
"""
import argparse
import struct
import subprocess
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("wav")
    ap.add_argument("out")
    ap.add_argument("--lead-ms", type=int, default=300)
    ap.add_argument("--tail-ms", type=int, default=1200)
    a = ap.parse_args()
    alaw = subprocess.run(
        ["sox", a.wav, "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw", "-"],
        check=True, capture_output=True).stdout
    silence = b"\xd5"
    data = silence * (8 * a.lead_ms) + alaw + silence * (8 * a.tail_ms)
    data += silence * (-len(data) % 160)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    seq, ts, ssrc = 1000, 16000, 0x1234ABCD
    t_us = 0
    for i in range(0, len(data), 160):
        payload = data[i:i + 160]
        rtp = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | 8, seq, ts, ssrc) + payload
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        eth = b"\x00" * 12 + b"\x08\x00" + ip
        out.append(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(eth), len(eth)) + eth)
        seq = (seq + 1) & 0xFFFF
        ts = (ts + 160) & 0xFFFFFFFF
        t_us += 20_000
    with open(a.out, "wb") as f:
        f.write(b"".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
