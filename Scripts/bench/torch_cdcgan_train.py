"""Trains the projection-D recipe of pipelines/cdcgan-fashion.json (as it was before its auxiliary-classifier
term: "conditioning": "projection", no class losses) class-conditional DCGAN-32 in plain PyTorch and measures its class
consistency with GANFlow's Fashion-MNIST classifier, to tell a defect in GANFlow (PyTorch clearly ahead at equal
steps) from what the recipe gives.

    ~/.cache/ganflow/venv/bin/python Scripts/bench/torch_cdcgan_train.py --steps 500 --out /tmp/torch-cdcgan \
        [--norm batch|spectral] [--lr-d 2e-4] [--lr-g 2e-4] [--betas 0.5 0.999] [--every 250] [--count 2000]

As the pipeline: Fashion-MNIST padded to 32x32 in [-1, 1] (background -1), shuffled, batch 64 with real labels;
G = DCGAN-32 (ngf 64) with conditional batch norm (a per-class gain, starting at 1, and bias, at 0, after an
affine-free batch norm); D = DCGAN-32 (ndf 64, batch norm, LeakyReLU 0.2) whose last convolution psi is joined by
the projection <embed[y], sum_hw h> (embed N(0, 0.02)); convolutions N(0, 0.02), D's batch-norm gains N(1, 0.02);
hinge loss; each step D's update (z, uniform classes y, G(z, y) without gradients, real with their labels) then
G's (a new z and y, -mean D(G(z, y), y)); Adam for both. Class consistency: every `--every` steps, `--count`
images whose rows take every class in turn (G in eval mode, as GANFlow samples), centre-cropped to 28x28 and
classified by Fixtures/models/fashion-classifier.safetensors; the share classified as the class asked for.
"""
import argparse
import gzip
import pathlib
import time

import numpy as np
import torch
from torch import nn
from safetensors.torch import load_file

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=500)
ap.add_argument("--norm", choices=["batch", "spectral"], default="batch")
ap.add_argument("--lr-d", type=float, default=2e-4)
ap.add_argument("--lr-g", type=float, default=2e-4)
ap.add_argument("--betas", type=float, nargs=2, default=[0.5, 0.999])
ap.add_argument("--cbn-lr", type=float, default=None, help="Adam rate of G's per-class gains and biases (default: --lr-g)")
ap.add_argument("--embed-lr", type=float, default=None, help="Adam rate of D's class embedding (default: --lr-d)")
ap.add_argument("--every", type=int, default=250)
ap.add_argument("--count", type=int, default=2000)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--out", required=True)
root = pathlib.Path(__file__).resolve().parents[2]
ap.add_argument("--classifier", default=str(root / "Fixtures/models/fashion-classifier.safetensors"))
ap.add_argument("--images", default="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
ap.add_argument("--labels", default="/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
out = pathlib.Path(a.out)
out.mkdir(parents=True, exist_ok=True)
K = 10

with gzip.open(a.images) as f:
    raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
with gzip.open(a.labels) as f:
    labels = torch.from_numpy(np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64))
data = nn.functional.pad(torch.from_numpy(raw.astype(np.float32) / 127.5 - 1), (2, 2, 2, 2), value=-1.0)


class CBN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bn = nn.BatchNorm2d(c, affine=False)
        self.gain = nn.Embedding(K, c)
        self.bias = nn.Embedding(K, c)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x, y):
        return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class G(nn.Module):
    def __init__(self):
        super().__init__()
        w = [100, 256, 128, 64]
        self.convs = nn.ModuleList([nn.ConvTranspose2d(100, 256, 4, 1, 0, bias=False),
                                    nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False),
                                    nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)])
        self.bns = nn.ModuleList([CBN(c) for c in w[1:]])
        self.last = nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False)

    def forward(self, z, y):
        h = z.view(-1, 100, 1, 1)
        for conv, bn in zip(self.convs, self.bns):
            h = torch.relu(bn(conv(h), y))
        return torch.tanh(self.last(h))


class D(nn.Module):
    def __init__(self, spectral):
        super().__init__()
        sn = nn.utils.spectral_norm if spectral else (lambda m: m)
        bias = spectral
        self.body = nn.Sequential(
            sn(nn.Conv2d(1, 64, 4, 2, 1, bias=bias)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(64, 128, 4, 2, 1, bias=bias)), *([] if spectral else [nn.BatchNorm2d(128)]), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(128, 256, 4, 2, 1, bias=bias)), *([] if spectral else [nn.BatchNorm2d(256)]), nn.LeakyReLU(0.2))
        self.psi = sn(nn.Conv2d(256, 1, 4, 1, 0, bias=bias))
        self.embed = nn.Embedding(K, 256)
        nn.init.normal_(self.embed.weight, 0, 0.02)

    def forward(self, x, y):
        h = self.body(x)
        return self.psi(h).view(-1) + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)


def init(m):
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            w = getattr(mod, "weight_orig", mod.weight)
            nn.init.normal_(w, 0, 0.02)
        elif isinstance(mod, nn.BatchNorm2d) and mod.affine:
            nn.init.normal_(mod.weight, 1, 0.02)
            nn.init.zeros_(mod.bias)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(),
                                 nn.Conv2d(32, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                 nn.Conv2d(64, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                 nn.Conv2d(64, 128, 3, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(2048, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x[:, :, 2:30, 2:30])


g, d = G(), D(a.norm == "spectral")
init(g)
init(d)
clf = Classifier()
clf.net.load_state_dict(load_file(a.classifier))
clf.eval()
with torch.no_grad():
    real_acc = (clf(data[:5000]).argmax(1) == labels[:5000]).float().mean().item()
print(f"classifier on 5000 training images: {100 * real_acc:.1f}%", flush=True)


def groups(model, special, rate, base):
    """The model's parameters in two Adam groups: names containing `special` at `rate`, the rest at `base`."""
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if special not in n], "lr": base},
            {"params": [p for n, p in named if special in n], "lr": rate if rate is not None else base}]


optD = torch.optim.Adam(groups(d, "embed", a.embed_lr, a.lr_d), betas=tuple(a.betas))
optG = torch.optim.Adam(groups(g, "bns", a.cbn_lr, a.lr_g), betas=tuple(a.betas))


def consistency():
    g.eval()
    hits, per = 0, torch.zeros(K)
    with torch.no_grad():
        for start in range(0, a.count, 64):
            n = min(64, a.count - start)
            y = (torch.arange(64) + start) % K
            x = g(torch.randn(64, 100), y)[:n]
            right = clf(x).argmax(1) == y[:n]
            hits += right.sum().item()
            per += torch.bincount(y[:n][right], minlength=K).float()
    g.train()
    return hits / a.count, (per / (a.count / K)).min().item()


order, cursor = torch.randperm(len(data)), 0
started = time.time()
for step in range(1, a.steps + 1):
    if cursor + 64 > len(order):
        order, cursor = torch.randperm(len(data)), 0
    idx = order[cursor:cursor + 64]
    cursor += 64
    real, ry = data[idx], labels[idx]
    y = torch.randint(0, K, (64,))
    with torch.no_grad():
        fake = g(torch.randn(64, 100), y)
    lossD = torch.relu(1 - d(real, ry)).mean() + torch.relu(1 + d(fake, y)).mean()
    optD.zero_grad()
    lossD.backward()
    optD.step()
    y = torch.randint(0, K, (64,))
    lossG = -d(g(torch.randn(64, 100), y), y).mean()
    optG.zero_grad()
    lossG.backward()
    optG.step()
    if step % 50 == 0:
        print(f"step {step} lossD {lossD.item():.3f} lossG {lossG.item():.3f} ({time.time() - started:.0f} s)", flush=True)
    if step % a.every == 0 or step == a.steps:
        acc, worst = consistency()
        print(f"step {step} consistency {100 * acc:.1f}% worst class {100 * worst:.1f}%", flush=True)
torch.save({"G": g.state_dict(), "D": d.state_dict()}, out / "cdcgan.pt")
