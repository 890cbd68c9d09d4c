#!/usr/bin/env python3
"""Writes the HEIF fixtures of Fixtures/images/ from the JPEG and WebP ones beside them, as phones
and browsers save such files: HEIC (HEVC, through pillow-heif's libheif and x265) and AVIF (AV1,
through Pillow's libavif). Then run Scripts/golden/decode_images.py for their reference decodings.

    ~/.cache/ganflow/venv/bin/python Scripts/golden/heif_fixtures.py

- chelsea.heic: chelsea-baseline.jpg (RGB, chroma subsampled 4:2:0, x265's default, as phones save photos);
- chelsea-alpha.heic: chelsea-alpha-lossless.webp (RGBA);
- astronaut-gray.heic: astronaut-gray.jpg (gray, stored as one channel);
- coffee.avif: coffee-lossy.webp (RGB, chroma 4:4:4), and coffee-420.avif (4:2:0);
- broken/truncated.heic: chelsea.heic cut in half;
- broken/bomb.heic: chelsea.heic whose 'ispe' box declares 100000x100000 pixels.
"""
import os

import pillow_heif
from PIL import Image

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Fixtures", "images")


def path(name):
    return os.path.join(root, name)


pillow_heif.register_heif_opener()
Image.open(path("chelsea-baseline.jpg")).save(path("chelsea.heic"), quality=85)
Image.open(path("chelsea-alpha-lossless.webp")).save(path("chelsea-alpha.heic"), quality=85)
Image.open(path("astronaut-gray.jpg")).save(path("astronaut-gray.heic"), quality=85)
Image.open(path("coffee-lossy.webp")).convert("RGB").save(path("coffee.avif"), quality=85, subsampling="4:4:4")
Image.open(path("coffee-lossy.webp")).convert("RGB").save(path("coffee-420.avif"), quality=85, subsampling="4:2:0")

data = open(path("chelsea.heic"), "rb").read()
open(path("broken/truncated.heic"), "wb").write(data[: len(data) // 2])
at = data.index(b"ispe") + 8  # box type, then version and flags (4 bytes), then width and height
bomb = data[:at] + (100000).to_bytes(4, "big") * 2 + data[at + 8:]
open(path("broken/bomb.heic"), "wb").write(bomb)
for name in ["chelsea.heic", "chelsea-alpha.heic", "astronaut-gray.heic", "coffee.avif", "coffee-420.avif"]:
    im = Image.open(path(name))
    print(name, im.mode, im.size, os.path.getsize(path(name)), "bytes")
