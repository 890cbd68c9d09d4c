#!/usr/bin/env python3
"""Pillow's decoding of every photo in Fixtures/images/, the reference GANFlow's decoders are tested
against: each file opened by Pillow, turned upright by ImageOps.exif_transpose, converted to RGB
(gray files stay L, files with alpha RGBA) and saved as PNG in Fixtures/images/golden/.

    ~/.cache/ganflow/venv/bin/python Scripts/golden/decode_images.py
"""
import glob
import os

from PIL import Image, ImageOps

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Fixtures", "images")
golden = os.path.join(root, "golden")
os.makedirs(golden, exist_ok=True)
for path in sorted(glob.glob(os.path.join(root, "*.jpg")) + glob.glob(os.path.join(root, "*.webp"))):
    im = ImageOps.exif_transpose(Image.open(path))
    mode = {"L": "L", "RGBA": "RGBA"}.get(im.mode, "RGB")
    im.convert(mode).save(os.path.join(golden, os.path.basename(path) + ".png"), optimize=True)
    print(os.path.basename(path), Image.open(path).mode, "->", mode, im.size)
