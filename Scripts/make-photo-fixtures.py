#!/usr/bin/env python3
"""Makes Fixtures/images/: small real photographs as JPEG and WebP in the variants GANFlow's decoders
must handle, broken files, a folder laid out as people keep photos, and ZIP archives.

    ~/.cache/ganflow/venv/bin/python Scripts/make-photo-fixtures.py SKIMAGE_DATA_DIR

SKIMAGE_DATA_DIR is `skimage/data` unpacked from the scikit-image 0.26.0 wheel
(`pip download scikit-image==0.26.0 --no-deps`, then unzip). Pillow encodes everything except the
YCCK file, which libjpeg-turbo's TurboJPEG (libturbojpeg.so.0, through ctypes) writes. Deterministic:
rerunning it leaves the files byte for byte the same.
"""
import ctypes
import io
import json
import os
import shutil
import struct
import sys
import zipfile
import zlib

from PIL import Image

src = sys.argv[1]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "images")
shutil.rmtree(root, ignore_errors=True)
os.makedirs(os.path.join(root, "broken"))


def photo(name, long_side):
    im = Image.open(os.path.join(src, name)).convert("RGB")
    scale = long_side / max(im.size)
    return im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BOX)


def exif_with_orientation(o):
    ex = Image.Exif()
    ex[0x0112] = o
    return ex.tobytes()


def out(*parts):
    return os.path.join(root, *parts)


chelsea = photo("chelsea.png", 160)      # 160x106, non-square
coffee = photo("coffee.png", 150)        # 100x150, portrait
astronaut = photo("astronaut.png", 96)   # 96x96
rocket = photo("rocket.jpg", 120)        # 80x120
hubble = photo("hubble_deep_field.jpg", 128)

chelsea.save(out("chelsea-baseline.jpg"), quality=90)
coffee.save(out("coffee-progressive.jpg"), quality=85, progressive=True)
astronaut.convert("L").save(out("astronaut-gray.jpg"), quality=90)
hubble.save(out("hubble-444.jpg"), quality=92, subsampling=0)
# Pillow writes CMYK with Adobe's APP14 marker and inverted samples, as Photoshop does.
rocket.convert("CMYK").save(out("rocket-cmyk.jpg"), quality=90)
small = photo("chelsea.png", 48)         # 48x32
for o in range(1, 9):
    small.save(out(f"chelsea-exif{o}.jpg"), quality=90, exif=exif_with_orientation(o))

# YCCK: TurboJPEG compresses CMYK pixels to YCCK (Adobe transform 2).
tj = ctypes.CDLL("libturbojpeg.so.0")
tj.tjInitCompress.restype = ctypes.c_void_p
handle = tj.tjInitCompress()
cmyk = rocket.convert("CMYK")
buf = (ctypes.c_ubyte * (cmyk.width * cmyk.height * 4)).from_buffer_copy(cmyk.tobytes())
jpeg = ctypes.POINTER(ctypes.c_ubyte)()
size = ctypes.c_ulong(0)
TJPF_CMYK, TJSAMP_420 = 11, 2
rc = tj.tjCompress2(ctypes.c_void_p(handle), buf, cmyk.width, 0, cmyk.height, TJPF_CMYK,
                    ctypes.byref(jpeg), ctypes.byref(size), TJSAMP_420, 90, 0)
assert rc == 0, "tjCompress2 failed"
open(out("rocket-ycck.jpg"), "wb").write(ctypes.string_at(jpeg, size.value))
tj.tjFree(jpeg)
tj.tjDestroy(ctypes.c_void_p(handle))

coffee.save(out("coffee-lossy.webp"), quality=80, method=6)
chelsea_rgba = photo("chelsea.png", 64).convert("RGBA")
chelsea_rgba.putalpha(Image.linear_gradient("L").resize(chelsea_rgba.size))
chelsea_rgba.save(out("chelsea-alpha-lossless.webp"), lossless=True)
rocket.save(out("rocket-exif6.webp"), quality=85, exif=exif_with_orientation(6))

# Broken files.
def broken(name, data):
    open(out("broken", name), "wb").write(data)

base = open(out("chelsea-baseline.jpg"), "rb").read()
broken("truncated.jpg", base[: len(base) * 6 // 10])
# Every code-length count of the first Huffman table set to 255: a table of 4080 codes.
dht = base.index(b"\xff\xc4")
broken("bad-huffman.jpg", base[: dht + 5] + b"\xff" * 16 + base[dht + 21:])
broken("empty.jpg", b"")
png = io.BytesIO()
photo("chelsea.png", 40).save(png, "PNG")
broken("png-named.jpg", png.getvalue())
# Decompression bombs: tiny files whose headers declare far more pixels than the limit.
sof = base.index(b"\xff\xc0")
broken("bomb.jpg", base[: sof + 5] + struct.pack(">HH", 65000, 65000) + base[sof + 9:])
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
row = zlib.compress(b"\x00" * 101, 9)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
broken("bomb.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", row) + chunk(b"IEND", b""))
lossless = io.BytesIO()
photo("chelsea.png", 16).save(lossless, "WEBP", lossless=True)
webp = bytearray(lossless.getvalue())
assert webp[12:16] == b"VP8L" and webp[20] == 0x2F
bits = (16383 - 1) | (16383 - 1) << 14 | (webp[24] >> 4 & 1) << 28
webp[21:25] = struct.pack("<I", bits | (webp[24] >> 5) << 29)
broken("bomb.webp", bytes(webp))
lossy = open(out("coffee-lossy.webp"), "rb").read()
broken("truncated.webp", lossy[: len(lossy) // 2])
broken("not-an-image.jpg", b"This is a text file with a .jpg name.\n")

# A folder as people keep photos: classes in first-level subfolders, nested folders, any size,
# and the litter beside them.
folder = out("folder")
for d in ["cat/2019", "cup", "space"]:
    os.makedirs(os.path.join(folder, d))
shutil.copy(out("chelsea-baseline.jpg"), os.path.join(folder, "cat", "IMG_0001.JPG"))
shutil.copy(out("chelsea-exif6.jpg"), os.path.join(folder, "cat", "2019", "IMG_0002.jpeg"))
shutil.copy(out("coffee-progressive.jpg"), os.path.join(folder, "cup", "coffee.jpg"))
shutil.copy(out("coffee-lossy.webp"), os.path.join(folder, "cup", "coffee.webp"))
shutil.copy(out("rocket-cmyk.jpg"), os.path.join(folder, "space", "rocket.jpg"))
shutil.copy(out("astronaut-gray.jpg"), os.path.join(folder, "space", "astronaut.jpg"))
open(os.path.join(folder, "space", "hubble.png"), "wb").write(png.getvalue())
open(os.path.join(folder, ".DS_Store"), "wb").write(b"\x00\x00\x00\x01Bud1" + b"\x00" * 24)
open(os.path.join(folder, "cup", "Thumbs.db"), "wb").write(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 24)
open(os.path.join(folder, "cat", "notes.txt"), "w").write("Chelsea, summer 2019.\n")


def write_zip(path, members, corrupt=None):
    """A ZIP with fixed timestamps; `corrupt` names a member whose first data byte is flipped."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            z.writestr(info, data)
    if corrupt:
        raw = bytearray(open(path, "rb").read())
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(corrupt)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        raw[start + 100] ^= 0xFF
        open(path, "wb").write(bytes(raw))


files = [("img/00000/img00000000.jpg", open(out("chelsea-baseline.jpg"), "rb").read()),
         ("img/00000/img00000001.webp", open(out("coffee-lossy.webp"), "rb").read()),
         ("img/00000/img00000002.jpg", open(out("rocket-cmyk.jpg"), "rb").read())]
labels = {"labels": [[files[0][0], 1], [files[1][0], 0], [files[2][0], 2]]}
write_zip(out("stylegan-dataset.zip"), files + [("dataset.json", json.dumps(labels).encode())])
write_zip(out("broken", "bad-crc.zip"), files, corrupt=files[1][0])
