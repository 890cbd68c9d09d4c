"""Trains NVlabs' stylegan2-ada-pytorch networks on Fashion-MNIST (padded to 32x32) at
pipelines/stylegan2-fashion.json's settings, on the CPU, to check that GANFlow's StyleGAN2 learns as
fast per step as the reference code does. Development check only; `make test` does not run it.

GANFlow does not ship or download that code: point --ada at a checkout of
https://github.com/NVlabs/stylegan2-ada-pytorch (its torch_utils/ and training/ are enough; the
reference upfirdn2d and bias_act run on the CPU). The loop is that repository's training loop
reduced to one process: per step the phases Gmain, Greg (every 4 steps), Dmain and Dreg (every 16),
each with its own latents, an optimizer step each, Adam's learning rate and betas scaled by
interval / (interval + 1) as its lazy regularization does, and the EMA of G with ramp-up. Losses
are its StyleGAN2Loss. Every --every steps it writes --count images of the EMA generator (fresh
noise, truncation 1) as PNGs, to be scored as GANFlow's own samples are:

    python Scripts/stylegan2_ada_train.py --ada ~/stylegan2-ada-pytorch --steps 7000 --every 1000 --out ada-run
    ganflow score ada-run/step-007000 --reference /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --json
"""
import argparse
import copy
import gzip
import os
import sys
import time
import warnings

import numpy as np
import torch
from PIL import Image

parser = argparse.ArgumentParser()
parser.add_argument("--ada", required=True, help="a stylegan2-ada-pytorch checkout")
parser.add_argument("--images", default="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
                    help="an IDX file of 28x28 gray images")
parser.add_argument("--steps", type=int, default=7000)
parser.add_argument("--every", type=int, default=1000, help="write samples every this many steps")
parser.add_argument("--count", type=int, default=10000, help="samples written each time")
parser.add_argument("--out", required=True)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--gamma", type=float, default=1.0,
                    help="R1 gamma (the pipeline's loss.penaltyWeight; session 15's comparison ran 0.01)")
parser.add_argument("--channel-base", type=int, default=512,
                    help="channels min(base / r, max) in G and D (session 15's comparison ran 1024 and 64)")
parser.add_argument("--channel-max", type=int, default=128)
parser.add_argument("--pl-weight", type=float, default=0.0,
                    help="path-length weight (the pipeline's pl.weight; session 15's comparison ran 2)")
parser.add_argument("--mixing", type=float, default=0.0,
                    help="style-mixing probability (the pipeline's G.mixing; session 15's comparison ran 0.9)")
args = parser.parse_args()

warnings.filterwarnings("ignore")
sys.path.insert(0, args.ada)
from training.loss import StyleGAN2Loss  # noqa: E402
from training.networks import Discriminator, Generator  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
np.random.seed(args.seed)

# pipelines/stylegan2-fashion.json
BATCH, Z, W, RES = 32, 128, 128, 32
net = dict(channel_base=args.channel_base, channel_max=args.channel_max, num_fp16_res=0, conv_clamp=None)
G = Generator(z_dim=Z, c_dim=0, w_dim=W, img_resolution=RES, img_channels=1,
              mapping_kwargs=dict(num_layers=4, lr_multiplier=0.01), synthesis_kwargs=net)
D = Discriminator(c_dim=0, img_resolution=RES, img_channels=1, epilogue_kwargs=dict(mbstd_group_size=4), **net)
G_ema = copy.deepcopy(G).eval()
loss = StyleGAN2Loss(device=torch.device("cpu"), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
                     style_mixing_prob=args.mixing, r1_gamma=args.gamma, pl_batch_shrink=2, pl_decay=0.01,
                     pl_weight=args.pl_weight)
LR, BETAS, EMA_IMAGES, EMA_RAMP = 0.0025, (0.0, 0.99), 10_000, 0.05

phases = []
for name, module, interval in [("G", G, 4), ("D", D, 16)]:
    ratio = interval / (interval + 1)
    opt = torch.optim.Adam(module.parameters(), lr=LR * ratio, betas=tuple(b ** ratio for b in BETAS), eps=1e-8)
    phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]

with gzip.open(args.images) as f:
    raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
padded = np.zeros((raw.shape[0], 1, RES, RES), np.float32)  # "fit": "pad": black borders
padded[:, 0, 2:30, 2:30] = raw
images = torch.from_numpy(padded / 127.5 - 1)


def write_samples(step):
    folder = os.path.join(args.out, f"step-{step:06d}")
    os.makedirs(folder, exist_ok=True)
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for start in range(0, args.count, 250):
            n = min(250, args.count - start)
            img = G_ema(torch.randn([n, Z], generator=generator), torch.zeros([n, 0]), noise_mode="random")
            img = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
            for j in range(n):
                Image.fromarray(img[j, 0], "L").save(os.path.join(folder, f"{start + j:05d}.png"))


no_labels = torch.zeros([BATCH, 0])
order, position, seen, started = torch.randperm(len(images)), 0, 0, time.time()
for step in range(args.steps):
    if position + BATCH > len(images):
        order, position = torch.randperm(len(images)), 0
    real = images[order[position:position + BATCH]]
    position += BATCH
    for name, module, opt, interval in phases:
        if step % interval != 0:
            continue
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        loss.accumulate_gradients(phase=name, real_img=real, real_c=no_labels, gen_z=torch.randn([BATCH, Z]),
                                  gen_c=no_labels, sync=True, gain=interval)
        module.requires_grad_(False)
        for p in module.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
    seen += BATCH
    beta = 0.5 ** (BATCH / max(min(EMA_IMAGES, seen * EMA_RAMP), 1e-8))
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)
    if (step + 1) % 100 == 0:
        print(f"step {step + 1}  {time.time() - started:.0f} s", flush=True)
    if (step + 1) % args.every == 0 or step + 1 == args.steps:
        write_samples(step + 1)
