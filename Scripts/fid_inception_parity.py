#!/usr/bin/env python3
"""GANFlow's FID Inception against pytorch-fid's, at full width, with seeded random weights.

    ~/.cache/ganflow/venv/bin/python Scripts/fid_inception_parity.py [--ganflow .build/release/ganflow] [--crops 0] [--work /tmp/fid-parity]

What it does (needs the development venv: torch, torchvision 0.16.2, pytorch-fid 0.3.0):
1. Builds pytorch-fid's FID Inception with seeded random weights (Scripts/golden/fid_inception_model.py;
   batch-norm statistics calibrated on photo patches), checks that pytorch-fid's own
   `fid_inception_v3()` loads them strictly, saves them as a .pth and converts it with
   Scripts/convert_fid_inception.py: the converted file is also what pipelines/dcgan64-rgb-inception.json
   runs with in the README's walk-through (random weights: its numbers mean nothing for papers).
2. Features: pytorch-fid's `get_activations` and `ganflow score --save-features` on the same PNG folders
   (Fixtures/photos/patches/*); reports max |a - b| / max |b| over each image's 2048 features.
3. FID between two folders: pytorch-fid's `calculate_frechet_distance` on its own features against
   `ganflow score DIR --reference DIR --features inception`, and against statistics saved by
   `ganflow score --save-stats` (the .npz path); with --crops N also on two sets of N 32x32 crops
   (N > 2048 gives full-rank covariances, where pytorch-fid's sqrtm is well conditioned).
"""
import argparse
import json
import pathlib
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

root = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root / "Scripts" / "golden"))
sys.path.insert(0, str(root / "Scripts"))
from fid_inception_model import pytorch_fid_model, reduced_fid_inception, seeded_state_dict  # noqa: E402
import pytorch_fid.inception as fid_inception  # noqa: E402
from pytorch_fid.fid_score import calculate_frechet_distance, get_activations  # noqa: E402

SEED = 2015


def load01(path):
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def make_weights(work):
    torch.manual_seed(SEED)
    files = sorted((root / "Fixtures/photos/patches").glob("*/*.png"))[::3]
    calibration = F.interpolate(torch.cat([load01(f) for f in files]), size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    state = seeded_state_dict(reduced_fid_inception(1), SEED, calibration)
    # pytorch-fid's own builder accepts them strictly (same names and shapes as the real weights).
    saved = fid_inception.load_state_dict_from_url
    fid_inception.load_state_dict_from_url = lambda *a, **k: state
    try:
        fid_inception.fid_inception_v3()
    finally:
        fid_inception.load_state_dict_from_url = saved
    pth = work / "pt_inception-random-seed2015.pth"
    torch.save(state, pth)
    out = work / "fid-inception-random.safetensors"
    subprocess.run([sys.executable, str(root / "Scripts/convert_fid_inception.py"), str(pth), str(out)], check=True)
    return state, out


def ganflow(binary, *args):
    r = subprocess.run([binary, "score", *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"ganflow score {' '.join(map(str, args))} failed:\n{r.stderr}")
    return r.stdout


def pytorch_features(model, folder, batch=50):
    files = sorted(pathlib.Path(folder).glob("*.png"))
    torch.set_num_threads(2)
    return get_activations(files, model, batch_size=min(batch, len(files)), dims=2048, device="cpu", num_workers=0)


def statistics(act):
    return np.mean(act, axis=0), np.cov(act, rowvar=False)


def compare_folders(binary, weights, model, a, b, work, label):
    fa, fb = pytorch_features(model, a), pytorch_features(model, b)
    ours = {}
    for name, folder in (("a", a), ("b", b)):
        npz = work / f"{label}-{name}.npz"
        ganflow(binary, folder, "--features", "inception", "--weights", weights, "--save-features", npz)
        ours[name] = np.load(npz)["features"]
    errors = [float(np.abs(x - y).max() / np.abs(y).max()) for f, name in ((fa, "a"), (fb, "b")) for x, y in zip(ours[name], f)]
    reference = calculate_frechet_distance(*statistics(fa), *statistics(fb))
    score = json.loads(ganflow(binary, a, "--reference", b, "--features", "inception", "--weights", weights, "--json"))
    stats = work / f"{label}-b-stats.npz"
    ganflow(binary, b, "--features", "inception", "--weights", weights, "--save-stats", stats)
    from_stats = json.loads(ganflow(binary, a, "--reference", stats, "--features", "inception", "--weights", weights, "--json"))
    # pytorch-fid's own reading of GANFlow's statistics file.
    with np.load(stats) as f:
        mu, sigma = f["mu"][:], f["sigma"][:]
    ours_by_pytorch_fid = calculate_frechet_distance(*statistics(fa), mu, sigma)
    print(f"{label}: {len(fa)} vs {len(fb)} images")
    print(f"  features, max |ganflow - pytorch-fid| / max |pytorch-fid| per image: max {max(errors):.2e}, median {np.median(errors):.2e}")
    print(f"  FID pytorch-fid {reference:.6f}  ganflow {score['fid']:.6f}  (relative {abs(score['fid'] - reference) / reference:.2e})")
    print(f"  FID from ganflow's saved statistics: ganflow {from_stats['fid']:.6f}, pytorch-fid {ours_by_pytorch_fid:.6f}")
    print(f"  KID {score['kid_mean']:.6f} +- {score['kid_std']:.6f}, precision {score['precision']:.4f}, recall {score['recall']:.4f}, "
          f"IS {score['is_mean']:.4f} +- {score['is_std']:.4f}")
    return max(errors), abs(score["fid"] - reference) / reference


def write_crops(folder, sources, count, seed):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = [np.asarray(Image.open(s).convert("RGB")) for s in sources]
    for i in range(count):
        im = images[rng.integers(len(images))]
        y, x = rng.integers(im.shape[0] - 32), rng.integers(im.shape[1] - 32)
        Image.fromarray(im[y:y + 32, x:x + 32]).save(folder / f"{i:05d}.png")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ganflow", default=str(root / ".build/release/ganflow"))
    p.add_argument("--work", default="/tmp/fid-parity")
    p.add_argument("--crops", type=int, default=0, help="also compare on two sets of this many 32x32 crops")
    args = p.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    state, weights = make_weights(work)
    model = pytorch_fid_model(state)
    patches = root / "Fixtures/photos/patches"
    results = [compare_folders(args.ganflow, weights, model, patches / "astronaut", patches / "coffee", work, "patches")]
    if args.crops:
        a, b = work / "crops-content", work / "crops-style"
        write_crops(a, sorted((root / "Fixtures/photos/content").glob("*.png")), args.crops, 1)
        write_crops(b, sorted((root / "Fixtures/photos/style").glob("*.png")), args.crops, 2)
        results.append(compare_folders(args.ganflow, weights, model, a, b, work, f"crops{args.crops}"))
    worst_features, worst_fid = max(r[0] for r in results), max(r[1] for r in results)
    ok = worst_features <= 1e-4 and worst_fid <= 5e-3
    print(f"{'PASS' if ok else 'FAIL'}: features within {worst_features:.2e} (bound 1e-4), FID within {worst_fid:.2e} (bound 5e-3)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
