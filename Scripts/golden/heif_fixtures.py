#!/usr/bin/env python3
"""Writes the HEIF fixtures of Fixtures/images/ from the JPEG and WebP ones beside them, as phones
and browsers save such files: HEIC (HEVC, through pillow-heif's libheif and x265) and AVIF (AV1,
through Pillow's libavif). Then run Scripts/golden/decode_images.py for their reference decodings.

    ~/.cache/ganflow/venv/bin/python Scripts/golden/heif_fixtures.py

- chelsea.heic: chelsea-baseline.jpg (RGB, chroma subsampled 4:2:0, x265's default, as phones save photos);
- chelsea-alpha.heic: chelsea-alpha-lossless.webp (RGBA);
- astronaut-gray.heic: astronaut-gray.jpg (gray, stored as one channel);
- rocket-rotated.heic: rocket-exif6.webp's picture as stored (120x80), with the container's
  rotation (an irot box) turning it upright as EXIF orientation 6 does, as phones store portrait
  photos; written by Scripts/golden/heif_rotated.c through Debian's libheif (pillow-heif writes no
  irot), which needs gcc and libheif-dev. libheif 1.15 writes the upright size (80x120) into the
  'ispe' box, which the HEIF standard and later libheif (pillow-heif's 1.23 refuses the file) take
  for the coded size, so the script writes the coded size, 120x80, there, as phones do;
- rocket-rotated-ispe-first.heic: rocket-rotated.heic with the item's properties listed in the order the
  standard asks for, the descriptive 'ispe' before the transformative 'irot' (libheif 1.15 lists irot
  first; for this order it reports the upright size itself);
- rocket-mirrored.heic: the same stored picture with a mirror (imir box, EXIF orientation 2), and
  rocket-transposed.heic with a mirror and a quarter turn (EXIF orientation 5; 'ispe' set to the coded
  size as for rocket-rotated.heic). All three share rocket-rotated.heic's HEVC bitstream;
- coffee.avif: coffee-lossy.webp (RGB, chroma 4:4:4), and coffee-420.avif (4:2:0);
- broken/truncated.heic: chelsea.heic cut in half;
- broken/bomb.heic: chelsea.heic whose 'ispe' box declares 100000x100000 pixels.
"""
import os
import subprocess
import tempfile

import pillow_heif
from PIL import Image

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Fixtures", "images")


def path(name):
    return os.path.join(root, name)


pillow_heif.register_heif_opener()
Image.open(path("chelsea-baseline.jpg")).save(path("chelsea.heic"), quality=85)
Image.open(path("chelsea-alpha-lossless.webp")).save(path("chelsea-alpha.heic"), quality=85)
Image.open(path("astronaut-gray.jpg")).save(path("astronaut-gray.heic"), quality=85)
with tempfile.TemporaryDirectory() as tmp:
    tool, raw = os.path.join(tmp, "heif_rotated"), os.path.join(tmp, "rocket.rgb")
    subprocess.run(["gcc", "-O2", "-o", tool, os.path.join(os.path.dirname(os.path.abspath(__file__)), "heif_rotated.c"), "-lheif"], check=True)
    stored = Image.open(path("rocket-exif6.webp")).convert("RGB")  # as stored, not turned upright
    open(raw, "wb").write(stored.tobytes())
    for orientation, name in [(6, "rocket-rotated.heic"), (2, "rocket-mirrored.heic"), (5, "rocket-transposed.heic")]:
        subprocess.run([tool, raw, str(stored.width), str(stored.height), str(orientation), path(name)], check=True)
        oriented = bytearray(open(path(name), "rb").read())
        at = oriented.index(b"ispe") + 8
        oriented[at:at + 8] = stored.width.to_bytes(4, "big") + stored.height.to_bytes(4, "big")
        open(path(name), "wb").write(oriented)


def ispe_first(data):
    """The primary item's (the only item's) property list reordered so that ispe comes before irot."""
    data = bytearray(data)
    ipco = data.index(b"ipco") + 4
    types = []  # the property boxes in ipco, numbered from 1
    at = ipco
    end = data.index(b"ipma") - 4
    while at < end:
        size = int.from_bytes(data[at:at + 4], "big")
        types.append(bytes(data[at + 4:at + 8]))
        at += size
    entry = data.index(b"ipma") + 4 + 4 + 4 + 2  # version and flags, entry count, item id
    count = data[entry]
    order = list(data[entry + 1:entry + 1 + count])
    kinds = [types[(a & 0x7F) - 1] for a in order]
    i, j = kinds.index(b"irot"), kinds.index(b"ispe")
    assert i < j, kinds
    order.insert(i, order.pop(j))
    data[entry + 1:entry + 1 + count] = bytes(order)
    return bytes(data)


open(path("rocket-rotated-ispe-first.heic"), "wb").write(ispe_first(open(path("rocket-rotated.heic"), "rb").read()))
Image.open(path("coffee-lossy.webp")).convert("RGB").save(path("coffee.avif"), quality=85, subsampling="4:4:4")
Image.open(path("coffee-lossy.webp")).convert("RGB").save(path("coffee-420.avif"), quality=85, subsampling="4:2:0")

data = open(path("chelsea.heic"), "rb").read()
open(path("broken/truncated.heic"), "wb").write(data[: len(data) // 2])
at = data.index(b"ispe") + 8  # box type, then version and flags (4 bytes), then width and height
bomb = data[:at] + (100000).to_bytes(4, "big") * 2 + data[at + 8:]
open(path("broken/bomb.heic"), "wb").write(bomb)
for name in ["chelsea.heic", "chelsea-alpha.heic", "astronaut-gray.heic", "rocket-rotated.heic", "rocket-rotated-ispe-first.heic",
             "rocket-mirrored.heic", "rocket-transposed.heic", "coffee.avif", "coffee-420.avif"]:
    im = Image.open(path(name))
    print(name, im.mode, im.size, os.path.getsize(path(name)), "bytes")
