"""Trains torch_reference.py's ProGAN as pipelines/progan-fashion.json does, to compare grids and FIDs with
GANFlow's at equal steps (a defect shows as PyTorch doing clearly better).

    /work/devvenv/bin/python Scripts/bench/torch_progan_train.py --steps 500 --stabilize-kimg 2 --transition-kimg 2 \
        --out /tmp/torch-progan [--threads 2] [--samples 5000]

As the pipeline: Fashion-MNIST padded to 32x32 in [-1, 1] (background -1), area-downsampled to the current
resolution; the schedule by images shown (start 4, target 32; batch 64 at 4 and 8, 32 above); real images
cross-faded with their pooled selves during a fade-in; each step D's phase (z, G(z) without gradients,
Wasserstein + drift 0.001 + 10 x WGAN-GP, Adam) then G's (a new z, -mean D(G(z)), Adam); Adam 1e-3 (0, 0.99)
reset at every phase change; an EMA of G (0.98) for the samples. Writes grid.png (32 EMA samples, 8 per row,
enlarged to 32x32 by nearest neighbour) and, with --samples N, N PNGs in samples/ for `ganflow score`.
"""
import argparse
import gzip
import pathlib
import sys
import time

import numpy as np
import torch
from torch import nn
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from torch_reference import ProGANG, ProGAND, gradient_penalty  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=1500)
ap.add_argument("--stabilize-kimg", type=float, default=6)
ap.add_argument("--transition-kimg", type=float, default=6)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--samples", type=int, default=0)
ap.add_argument("--out", required=True)
ap.add_argument("--images", default="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
out = pathlib.Path(a.out)
out.mkdir(parents=True, exist_ok=True)

with gzip.open(a.images) as f:
    raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
data = nn.functional.pad(torch.from_numpy(raw.astype(np.float32) / 127.5 - 1), (2, 2, 2, 2), value=-1.0)

G, D = ProGANG(), ProGAND()
ema = ProGANG()
ema.load_state_dict(G.state_dict())
for p in ema.parameters():
    p.requires_grad_(False)
S, T = int(a.stabilize_kimg * 1000), int(a.transition_kimg * 1000)
batches = {4: 64, 8: 64, 16: 32, 32: 32}


def position(images):
    """(level, alpha, phase) after `images` images, as schedule.progressive."""
    level = images // (S + T)
    if level >= 3:
        return 3, 1.0, 6
    within = images - level * (S + T)
    if within < S:
        return level, 1.0, 2 * level
    return level + 1, (within - S) / T, 2 * level + 1


order, cursor = torch.randperm(len(data)), 0


def next_batch(n):
    global order, cursor
    if cursor + n > len(order):
        order, cursor = torch.randperm(len(data)), 0
    x = data[order[cursor:cursor + n]]
    cursor += n
    return x


shown, phase_seen, optG, optD = 0, None, None, None
started = time.time()
for step in range(1, a.steps + 1):
    level, alpha, phase = position(shown)
    res = 4 << level
    B = batches[res]
    if phase != phase_seen:
        optG = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
        optD = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
        phase_seen = phase
    real = next_batch(B)
    if res < 32:
        real = nn.functional.avg_pool2d(real, 32 // res)
    if alpha < 1:
        low = nn.functional.interpolate(nn.functional.avg_pool2d(real, 2), scale_factor=2, mode="nearest")
        real = low * (1 - alpha) + real * alpha
    for p in D.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        fake = G(torch.randn(B, 128), level=level, alpha=alpha)
    critic = lambda x: D(x, alpha=alpha)
    d_real, d_fake = critic(real), critic(fake)
    lossD = d_fake.mean() - d_real.mean() + 0.001 * d_real.pow(2).mean() + 10 * gradient_penalty(critic, real, fake)
    optD.zero_grad(set_to_none=True)
    lossD.backward()
    optD.step()
    for p in D.parameters():
        p.requires_grad_(False)
    lossG = -critic(G(torch.randn(B, 128), level=level, alpha=alpha)).mean()
    optG.zero_grad(set_to_none=True)
    lossG.backward()
    optG.step()
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), G.parameters()):
            pe.lerp_(p, 0.02)
    shown += B
    if step % 25 == 0 or step == a.steps:
        print(f"step {step}/{a.steps} res {res} alpha {alpha:.3f} lossD {lossD.item():.4f} lossG {lossG.item():.4f} "
              f"{time.time() - started:.0f} s", flush=True)


def to_uint8(x):
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


level, alpha, _ = position(shown)
with torch.no_grad():
    g = torch.Generator().manual_seed(0)
    imgs = ema(torch.randn(32, 128, generator=g), level=level, alpha=alpha)
    imgs = nn.functional.interpolate(imgs, size=32, mode="nearest")
    grid = to_uint8(imgs).view(4, 8, 32, 32).permute(0, 2, 1, 3).reshape(128, 256).numpy()
    Image.fromarray(grid, "L").save(out / "grid.png")
    if a.samples:
        (out / "samples").mkdir(exist_ok=True)
        for i in range(0, a.samples, 250):
            batch = ema(torch.randn(min(250, a.samples - i), 128, generator=g), level=level, alpha=alpha)
            batch = nn.functional.interpolate(batch, size=32, mode="nearest")
            for j, im in enumerate(to_uint8(batch)):
                Image.fromarray(im[0].numpy(), "L").save(out / "samples" / f"{i + j:05d}.png")
print(f"wrote {out / 'grid.png'}; {a.steps} steps, {shown} images, resolution {4 << level}, alpha {alpha:.3f}, "
      f"{time.time() - started:.0f} s")
