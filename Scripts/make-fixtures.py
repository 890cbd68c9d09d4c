#!/usr/bin/env python3
"""Regenerates Fixtures/ (images, IDX files and broken files) from their sources.

Sources, never fetched by the tests:
  - Fashion-MNIST test set from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist),
  - the sample photographs shipped in the scikit-image wheel (skimage/data), pinned to one version.

Needs numpy and Pillow (use a scratch virtualenv outside the repository):
    python3 -m venv /tmp/fx && /tmp/fx/bin/pip install numpy pillow
    /tmp/fx/bin/python Scripts/make-fixtures.py [--skimage-data DIR]
Without --skimage-data the scikit-image wheel is fetched with `pip download` into a temporary folder.

Every output is a pure function of the inputs (fixed seeds, gzip mtime 0), so rerunning the script on
the same sources leaves `git status` clean.
"""
import argparse
import gzip
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(ROOT, "Fixtures")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
SKIMAGE_VERSION = "0.26.0"

FASHION_CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
PER_CLASS = 30
IDX_RECORDS = 256

# Public-domain or CC0 photographs in skimage/data (licences in Fixtures/README.md).
PATCH_SOURCES = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg"]
FULL_SIZE = ["astronaut.png", "chelsea.png", "coffee.png"]
STYLE_TEXTURES = ["brick.png", "gravel.png"]
PATCH = 64
PATCH_SHORT_SIDE = 320
FULL_LONG_SIDE = 320
STYLE_SIDE = 256


def read_idx_gz(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def idx_bytes(array, magic):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def gzip_bytes(raw):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(raw)
    return buf.getvalue()


def save_png(image, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, format="PNG", optimize=True)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def png_chunks(data):
    """(offset, type, payload) of each chunk of a PNG byte string."""
    pos, out = 8, []
    while pos < len(data):
        length, = struct.unpack(">I", data[pos:pos + 4])
        out.append((pos, data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def flip_idat_byte(data, offset):
    """Flips every bit of byte `offset` of the first IDAT's zlib stream and fixes the chunk's CRC, so
    that the damage is found by inflate rather than by the checksum."""
    out = bytearray(data)
    for pos, kind, payload in png_chunks(data):
        if kind == b"IDAT":
            out[pos + 8 + offset] ^= 0xFF
            body = bytes(out[pos + 4:pos + 8 + len(payload)])
            out[pos + 8 + len(payload):pos + 12 + len(payload)] = struct.pack(">I", zlib.crc32(body))
            return bytes(out)
    raise RuntimeError("no IDAT chunk")


def break_idat_crc(data):
    """Flips one bit of the first IDAT's CRC, leaving its data intact."""
    out = bytearray(data)
    for pos, kind, payload in png_chunks(data):
        if kind == b"IDAT":
            out[pos + 8 + len(payload)] ^= 0x01
            return bytes(out)
    raise RuntimeError("no IDAT chunk")


def skimage_data_dir(explicit, scratch):
    if explicit:
        return explicit
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                           f"scikit-image=={SKIMAGE_VERSION}", "-d", scratch])
    wheel = next(os.path.join(scratch, n) for n in os.listdir(scratch) if n.endswith(".whl"))
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith("skimage/data/") and not name.endswith("/"):
                z.extract(name, scratch)
    return os.path.join(scratch, "skimage", "data")


def resized(image, short_side=None, long_side=None):
    w, h = image.size
    scale = short_side / min(w, h) if short_side else long_side / max(w, h)
    if scale >= 1:
        return image
    return image.resize((round(w * scale), round(h * scale)), Image.Resampling.BOX)


def make_fashion():
    images = read_idx_gz(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx_gz(os.path.join(FASHION_DIR, "t10k-labels-idx1-ubyte.gz"))
    root = os.path.join(FIXTURES, "fashion-mnist")
    shutil.rmtree(root, ignore_errors=True)
    for label, name in enumerate(FASHION_CLASSES):
        for index in np.flatnonzero(labels == label)[:PER_CLASS]:
            save_png(Image.fromarray(images[index]), os.path.join(root, name, f"{index:04d}.png"))
    idx = os.path.join(FIXTURES, "idx")
    write(os.path.join(idx, "t10k-256-images-idx3-ubyte.gz"), gzip_bytes(idx_bytes(images[:IDX_RECORDS], 0x803)))
    write(os.path.join(idx, "t10k-256-labels-idx1-ubyte.gz"), gzip_bytes(idx_bytes(labels[:IDX_RECORDS], 0x801)))
    return images, labels


def make_photos(data_dir):
    root = os.path.join(FIXTURES, "photos")
    shutil.rmtree(root, ignore_errors=True)
    for name in PATCH_SOURCES:
        image = resized(Image.open(os.path.join(data_dir, name)).convert("RGB"), short_side=PATCH_SHORT_SIDE)
        w, h = image.size
        stem = os.path.splitext(name)[0]
        # A centred grid of non-overlapping patches.
        x0, y0 = (w % PATCH) // 2, (h % PATCH) // 2
        n = 0
        for y in range(y0, h - PATCH + 1, PATCH):
            for x in range(x0, w - PATCH + 1, PATCH):
                save_png(image.crop((x, y, x + PATCH, y + PATCH)), os.path.join(root, "patches", stem, f"{n:03d}.png"))
                n += 1
    for name in FULL_SIZE:
        image = resized(Image.open(os.path.join(data_dir, name)).convert("RGB"), long_side=FULL_LONG_SIDE)
        save_png(image, os.path.join(root, "content", os.path.splitext(name)[0] + ".png"))
    for name in STYLE_TEXTURES:
        image = Image.open(os.path.join(data_dir, name)).convert("L")
        save_png(resized(image, long_side=STYLE_SIDE), os.path.join(root, "style", name))


def type_pattern(x, y):
    """The sample values of Fixtures/png-types (the tests compute the same): gray v, RGB, alpha a."""
    v = (x * 50 + y * 17) % 256
    return v, (v, 255 - v, (3 * v) % 256), (x * 60 + y * 10) % 256


def make_png_types():
    """One small file per PNG colour type and depth, written by Pillow (not by the code under test)."""
    root = os.path.join(FIXTURES, "png-types")
    shutil.rmtree(root, ignore_errors=True)
    w, h = 5, 3
    px = [[type_pattern(x, y) for x in range(w)] for y in range(h)]
    gray = np.array([[p[0] for p in row] for row in px], dtype=np.uint8)
    rgb = np.array([[p[1] for p in row] for row in px], dtype=np.uint8)
    alpha = np.array([[p[2] for p in row] for row in px], dtype=np.uint8)
    save_png(Image.fromarray(((np.indices((h, w)).sum(0) % 2) * 255).astype(np.uint8)).convert("1"),
             os.path.join(root, "gray1.png"))
    save_png(Image.fromarray(gray), os.path.join(root, "gray8.png"))
    gray16 = gray.astype(np.uint16) * 257 + np.arange(w, dtype=np.uint16)[None, :]
    Image.frombytes("I;16", (w, h), gray16.astype("<u2").tobytes()).save(os.path.join(root, "gray16.png"))
    save_png(Image.fromarray(np.dstack([gray, alpha])), os.path.join(root, "gray-alpha8.png"))
    save_png(Image.fromarray(rgb), os.path.join(root, "rgb8.png"))
    save_png(Image.fromarray(np.dstack([rgb, alpha])), os.path.join(root, "rgba8.png"))
    # Palette index = pixel number; entry i holds that pixel's colour (and alpha in the tRNS version).
    indices = np.arange(w * h, dtype=np.uint8).reshape(h, w)
    palette = Image.frombytes("P", (w, h), indices.tobytes())
    palette.putpalette(rgb.reshape(-1).tolist())
    palette.save(os.path.join(root, "palette.png"), optimize=False)
    palette.save(os.path.join(root, "palette-trns.png"), optimize=False, transparency=alpha.reshape(-1).tobytes())


def make_broken(images, labels):
    root = os.path.join(FIXTURES, "broken")
    shutil.rmtree(root, ignore_errors=True)
    good = open(os.path.join(FIXTURES, "fashion-mnist", "Trouser", "0002.png"), "rb").read()
    write(os.path.join(root, "truncated.png"), good[:len(good) // 2])

    jpeg = io.BytesIO()
    Image.fromarray(images[0]).save(jpeg, format="JPEG", quality=90)
    write(os.path.join(root, "jpeg-named.png"), jpeg.getvalue())

    patch = open(os.path.join(FIXTURES, "photos", "patches", "chelsea", "000.png"), "rb").read()
    # Byte 2 is the first byte of deflate data after the 2-byte zlib header.
    write(os.path.join(root, "flipped-idat.png"), flip_idat_byte(patch, 2))
    write(os.path.join(root, "bad-crc.png"), break_idat_crc(patch))

    raw = idx_bytes(images[:IDX_RECORDS], 0x803)
    gz = gzip_bytes(raw)
    write(os.path.join(root, "truncated-images-idx3-ubyte.gz"), gz[:int(len(gz) * 0.6)])
    write(os.path.join(root, "wrong-magic-idx3-ubyte"), struct.pack(">I", 0x804) + idx_bytes(images[:8], 0x803)[4:])
    # The header says 16 images; the file holds 12 and a half.
    write(os.path.join(root, "short-images-idx3-ubyte"), idx_bytes(images[:16], 0x803)[:16 + 12 * 28 * 28 + 392])
    # Pairs with Fixtures/idx/t10k-256-images-idx3-ubyte.gz (256 images).
    write(os.path.join(root, "200-labels-idx1-ubyte.gz"), gzip_bytes(idx_bytes(labels[:200], 0x801)))

    mixed = os.path.join(root, "mixed-sizes")
    for i in range(3):
        save_png(Image.fromarray(images[i]), os.path.join(mixed, "a", f"{i}.png"))
    padded = np.zeros((32, 32), dtype=np.uint8)
    padded[2:30, 2:30] = images[3]
    save_png(Image.fromarray(padded), os.path.join(mixed, "b", "0.png"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skimage-data", help="an unpacked skimage/data folder (scikit-image %s)" % SKIMAGE_VERSION)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = skimage_data_dir(args.skimage_data, scratch)
        images, labels = make_fashion()
        make_photos(data_dir)
        make_png_types()
        make_broken(images, labels)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(FIXTURES) for f in fs)
    print(f"Fixtures: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
