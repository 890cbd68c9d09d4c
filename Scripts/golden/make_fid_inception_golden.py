"""Writes the reduced-width FID Inception fixture of the Swift tests (FIDInceptionTests).

    ~/.cache/ganflow/venv/bin/python Scripts/golden/make_fid_inception_golden.py

Fixtures/golden/fid-inception-w16.safetensors: pytorch-fid's FID Inception topology with every
channel count divided by 16 (128-d features, 10 classes), seeded random weights whose batch-norm
statistics are calibrated on photo patches (see fid_inception_model.py), converted by
Scripts/convert_fid_inception.py's writer. Fixtures/golden/fid-inception-w16.json: the features and
logits that pytorch-fid's InceptionV3 wrapper (its resize to 299 and scaling) computes for four
fixture photos of different sizes and modes, each alone.
"""
import json
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

here = pathlib.Path(__file__).resolve()
root = here.parents[2]
sys.path.insert(0, str(here.parent))
sys.path.insert(0, str(root / "Scripts"))
from fid_inception_model import features_and_logits, pytorch_fid_model, reduced_fid_inception, seeded_state_dict  # noqa: E402
from convert_fid_inception import check, write_safetensors  # noqa: E402

DIVISOR, CLASSES, SEED = 16, 10, 20
IMAGES = ["Fixtures/photos/patches/astronaut/000.png", "Fixtures/photos/content/chelsea.png",
          "Fixtures/photos/style/brick.png", "Fixtures/photos/patches/rocket/007.png"]


def load01(path):
    """[1, 3, H, W] in [0, 1], as pytorch-fid's ImagePathDataset (PIL RGB, ToTensor) reads it."""
    a = np.asarray(Image.open(root / path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def calibration_batch():
    files = sorted((root / "Fixtures/photos/patches").glob("*/*.png"))[::4]
    x = torch.cat([load01(f.relative_to(root)) for f in files])
    return F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1


def write_numpy_statistics():
    """Fixtures/golden/fid-stats-d8.npz: `mu` [8] float32 and `sigma` [8, 8] float64 as pytorch-fid's
    `np.savez(path, mu=mu, sigma=sigma)` writes them (NumPy's own writer), with values the test
    recomputes: mu[i] = i / 4 - 1, sigma[i][j] = 1 / (i + j + 1) + (i == j)."""
    mu = (np.arange(8, dtype=np.float32) / 4 - 1)
    i, j = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    sigma = 1.0 / (i + j + 1) + (i == j)
    np.savez(root / "Fixtures/golden/fid-stats-d8.npz", mu=mu, sigma=sigma)
    # Fortran order and big-endian float64: what other writers may produce.
    np.savez(root / "Fixtures/golden/fid-stats-d8-fortran.npz", mu=mu.astype(">f8"), sigma=np.asfortranarray(sigma + np.triu(np.ones((8, 8)), 1)))


def main():
    write_numpy_statistics()
    torch.manual_seed(SEED)
    net = reduced_fid_inception(DIVISOR, CLASSES)
    state = seeded_state_dict(net, SEED, calibration_batch())
    model = pytorch_fid_model(state, DIVISOR)
    out = root / "Fixtures/golden/fid-inception-w16.safetensors"
    write_safetensors(check(state, "reduced FID Inception"), out, {"format": "pt", "source": "GANFlow golden: FID Inception / 16, seed 20"})
    cases = []
    for path in IMAGES:
        f, logits = features_and_logits(model, state, load01(path))
        cases.append({"image": path, "features": [float(v) for v in f[0]], "logits": [float(v) for v in logits[0]]})
        print(path, "features", f.shape, "max", float(f.abs().max()), "logits max", float(logits.abs().max()))
    doc = {"divisor": DIVISOR, "classes": CLASSES, "seed": SEED, "weights": out.name, "cases": cases}
    (root / "Fixtures/golden/fid-inception-w16.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
