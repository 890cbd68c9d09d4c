#!/usr/bin/env python3
"""Pillow's decoding of every photo in Fixtures/images/, the reference GANFlow's decoders are tested
against: each file opened by Pillow (HEIC through pillow-heif, AVIF through Pillow's own libavif),
turned upright by ImageOps.exif_transpose, converted to RGB (gray JPEG and WebP files stay L, files
with alpha RGBA; GANFlow decodes every HEIF file to RGB or RGBA, gray ones too) and saved as PNG in
Fixtures/images/golden/.

    ~/.cache/ganflow/venv/bin/python Scripts/golden/decode_images.py
"""
import glob
import os

import pillow_heif
from PIL import Image, ImageOps

pillow_heif.register_heif_opener()

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Fixtures", "images")
golden = os.path.join(root, "golden")
os.makedirs(golden, exist_ok=True)
for path in sorted(sum((glob.glob(os.path.join(root, "*." + ext)) for ext in ["jpg", "webp", "heic", "avif"]), [])):
    im = ImageOps.exif_transpose(Image.open(path))
    heif = path.endswith((".heic", ".avif"))
    mode = {"L": "RGB" if heif else "L", "RGBA": "RGBA"}.get(im.mode, "RGB")
    im.convert(mode).save(os.path.join(golden, os.path.basename(path) + ".png"), optimize=True)
    print(os.path.basename(path), Image.open(path).mode, "->", mode, im.size)
