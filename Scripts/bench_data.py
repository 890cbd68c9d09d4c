#!/usr/bin/env python3
"""Helpers of Scripts/bench-data.sh (run with ~/.cache/ganflow/venv/bin/python: Pillow, torch, torchvision).

    bench_data.py photos OUT N        writes N photographic 1024x768 JPEGs to OUT/photos/
    bench_data.py photos OUT N --classes [--seed S]
    bench_data.py photos OUT N --format heic   the same photos as HEIC (pillow-heif), as iPhones save them
                                      the same in one folder per class: the source photo, the quarter of
                                      the possible crop centres that the crop's centre is in, and whether
                                      it is mirrored (OUT/astronaut-left-top, ...-mirrored: 24 classes, for
                                      a classifier whose features score GANs trained on the crops, so that
                                      it must see where in the photo a crop is); --seed draws other crops
    bench_data.py torch DIR SIZE BATCH WORKERS IMAGES
                                      PIL + torchvision ImageFolder through a DataLoader: images/s

The photos are crops and rescales of the real photographs in Fixtures/photos/content (scikit-image's
astronaut, chelsea and coffee: public domain / CC0): each a random 4:3 box covering 55-100% of the
source's width, maybe mirrored, resized to 1024x768 (bicubic) and saved as a quality-90 JPEG.
"""
import os
import random
import sys
import time


def photos(out, n, classes=False, seed=0, fmt="jpg"):
    from PIL import Image
    if fmt == "heic":
        import pillow_heif
        pillow_heif.register_heif_opener()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "photos", "content")
    files = [f for f in sorted(os.listdir(root)) if f.endswith(".png")]
    sources = [Image.open(os.path.join(root, f)).convert("RGB") for f in files]
    names = [f[:-4] for f in files]
    rng = random.Random(seed)
    if not classes:
        os.makedirs(os.path.join(out, "photos"), exist_ok=True)
    for i in range(n):
        im = sources[i % len(sources)]
        w = rng.uniform(0.55, 1.0) * min(im.width, im.height * 4 / 3)
        h = w * 3 / 4
        x, y = rng.uniform(0, im.width - w), rng.uniform(0, im.height - h)
        tile = im.resize((1024, 768), Image.Resampling.BICUBIC, box=(x, y, x + w, y + h))
        mirrored = rng.random() < 0.5
        if mirrored:
            tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        side = "left" if x < (im.width - w) / 2 else "right"
        half = "top" if y < (im.height - h) / 2 else "bottom"
        folder = f"{names[i % len(sources)]}-{side}-{half}" + ("-mirrored" if mirrored else "") if classes else "photos"
        os.makedirs(os.path.join(out, folder), exist_ok=True)
        tile.save(os.path.join(out, folder, f"IMG_{i:04d}.{fmt}"), quality=90)


def torch_rate(folder, size, batch, workers, images):
    import torch
    from torchvision import datasets, transforms
    torch.set_num_threads(1)
    t = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
                            transforms.Normalize([0.5] * 3, [0.5] * 3)])
    try:  # HEIC photos open through pillow-heif's Pillow plugin
        import pillow_heif
        pillow_heif.register_heif_opener()
    except ImportError:
        pass
    extensions = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".avif")
    data = datasets.ImageFolder(folder, transform=t, is_valid_file=lambda p: p.lower().endswith(extensions))
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    batches = -(-images // batch)
    served = 0
    while True:
        it = iter(loader)
        next(it)  # warm-up: worker start and the first batch
        start = time.perf_counter()
        for _ in range(batches):
            try:
                next(it)
            except StopIteration:
                it = iter(loader)
                next(it)
            served += batch
        return served / (time.perf_counter() - start)


if __name__ == "__main__":
    if sys.argv[1] == "photos":
        rest = sys.argv[4:]
        seed = int(rest[rest.index("--seed") + 1]) if "--seed" in rest else 0
        fmt = rest[rest.index("--format") + 1] if "--format" in rest else "jpg"
        photos(sys.argv[2], int(sys.argv[3]), classes="--classes" in rest, seed=seed, fmt=fmt)
    else:
        rate = torch_rate(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
        print(f"{rate:.1f}")
