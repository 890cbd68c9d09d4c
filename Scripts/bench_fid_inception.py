#!/usr/bin/env python3
"""Speed of FID Inception features: GANFlow against pytorch-fid on the CPU, interleaved in one run.

    OMP_NUM_THREADS=2 ~/.cache/ganflow/venv/bin/python Scripts/bench_fid_inception.py --images 10000 --rounds 20 \
        [--ganflow .build/release/ganflow] [--work /tmp/fid-bench] > /tmp/fid-bench.log 2>&1 &

A benchmark, not a test. `--images` 32x32 RGB crops of the photo fixtures (PNG) are cut into
`--rounds` folders; each round runs pytorch-fid's `get_activations` (batch 50, 2 torch threads,
model loaded once, timed around the call) and then `ganflow score FOLDER --features inception
--save-features` (chunk 50, OMP_NUM_THREADS=2, timed around the whole process: start, weight
loading and PNG decoding included), alternating A B A B so that the shared machine's load falls
on both. Both resize every image to 299x299. Reports each round and the median of the per-round
time ratios. Weights: the seeded random ones of Scripts/fid_inception_parity.py (speed does not
depend on the values); made here if absent.
"""
import argparse
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

root = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root / "Scripts" / "golden"))
sys.path.insert(0, str(root / "Scripts"))
from fid_inception_model import pytorch_fid_model  # noqa: E402
from pytorch_fid.fid_score import get_activations  # noqa: E402


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--ganflow", default=str(root / ".build/release/ganflow"))
    p.add_argument("--work", default="/tmp/fid-bench")
    p.add_argument("--weights-dir", default="/tmp/fid-parity")
    args = p.parse_args()
    work, weights_dir = pathlib.Path(args.work), pathlib.Path(args.weights_dir)
    pth, weights = weights_dir / "pt_inception-random-seed2015.pth", weights_dir / "fid-inception-random.safetensors"
    if not weights.exists():
        sys.exit(f"{weights}: run Scripts/fid_inception_parity.py first (it makes the seeded random weights)")
    torch.set_num_threads(2)
    os.environ["OMP_NUM_THREADS"] = "2"
    state = torch.load(pth, weights_only=True)
    model = pytorch_fid_model(state)
    rng = np.random.default_rng(0)
    photos = [np.asarray(Image.open(f).convert("RGB")) for f in sorted((root / "Fixtures/photos").glob("*/*.png"))]
    per = args.images // args.rounds
    folders = []
    for r in range(args.rounds):
        folder = work / f"round{r:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if len(list(folder.glob("*.png"))) != per:
            for i in range(per):
                im = photos[rng.integers(len(photos))]
                y, x = rng.integers(im.shape[0] - 32), rng.integers(im.shape[1] - 32)
                Image.fromarray(im[y:y + 32, x:x + 32]).save(folder / f"{i:05d}.png")
        folders.append(folder)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs; torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"{args.rounds} rounds of {per} 32x32 images resized to 299x299; load average {os.getloadavg()}")
    def children_cpu():
        u = resource.getrusage(resource.RUSAGE_CHILDREN)
        return u.ru_utime + u.ru_stime

    # On a shared machine wall time depends on the neighbours; CPU seconds (user + system, all
    # threads) are reported beside it.
    ratios, cpu_ratios, total_t, total_g, cpu_t, cpu_g = [], [], 0.0, 0.0, 0.0, 0.0
    for r, folder in enumerate(folders):
        files = sorted(folder.glob("*.png"))
        start, cpu0 = time.perf_counter(), time.process_time()
        get_activations(files, model, batch_size=50, dims=2048, device="cpu", num_workers=0)
        t, ct = time.perf_counter() - start, time.process_time() - cpu0
        start, cpu0 = time.perf_counter(), children_cpu()
        subprocess.run([args.ganflow, "score", str(folder), "--features", "inception", "--weights", str(weights), "--chunk", "50",
                        "--save-features", str(work / "features.npz")], check=True, capture_output=True)
        g, cg = time.perf_counter() - start, children_cpu() - cpu0
        ratios.append(g / t)
        cpu_ratios.append(cg / ct)
        total_t += t
        total_g += g
        cpu_t += ct
        cpu_g += cg
        print(f"round {r:2d}: pytorch-fid {t:7.2f} s wall {ct:7.2f} s CPU   ganflow {g:7.2f} s wall {cg:7.2f} s CPU   "
              f"ratio wall {g / t:.3f} CPU {cg / ct:.3f}   load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"total for {per * len(folders)} images each: pytorch-fid {total_t:.1f} s wall {cpu_t:.1f} s CPU, ganflow {total_g:.1f} s wall "
          f"{cpu_g:.1f} s CPU; median ratio ganflow / pytorch-fid: wall {statistics.median(ratios):.3f}, CPU {statistics.median(cpu_ratios):.3f}; "
          f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
