"""Records PyTorch's ProGAN and MSG-GAN, layer by layer, for ProGANParityTests: Fixtures/golden/progan.safetensors.

Run with the reference venv: /work/devvenv/bin/python Scripts/golden/progan_golden.py
The networks are Scripts/bench/torch_reference.py's (GANFlow's state_dict names), small: 4 -> 16, one
channel, latent 8, feature maps min(32 / 2^stage, 8), minibatch stddev in groups of 2, batch 4. Weights
N(0, 1) and biases N(0, 0.1) (not zero, so the biases are checked). Recorded, for the progressive
networks at (8, alpha 1), (16, alpha 0.25) (a fade-in) and (16, alpha 1):
  <case>.g.block<k>      G's features after each block
  <case>.g.images        G's images;  <case>.d.real, <case>.d.fake: D's scores
  <case>.lossD           Wasserstein + drift 0.001 + 10 x WGAN-GP (the given eps), as loss.wgangp
  <case>.gradD.<name>    d lossD / d D's parameters (through the penalty's double backward)
  <case>.lossG, <case>.gradG.<name>   -mean D(G(z)) and its gradients for G's parameters
  <case>.adamD.<name>, <case>.adamG.<name>   the parameters after one Adam step (lr 1e-3, betas (0, 0.99))
and for MSG-GAN (lin_cat, the same G's pyramid, relativistic average hinge): msg.g.<s> (each scale),
msg.d.real, msg.d.fake, msg.lossD, msg.gradD.<name>, msg.lossG, msg.gradG.<name>.
"""
import pathlib
import sys

import torch
from safetensors.torch import save_file

root = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(root / "Scripts" / "bench"))
from torch_reference import ProGANG, ProGAND, MSGD, rahinge  # noqa: E402

out = root / "Fixtures" / "golden" / "progan.safetensors"
torch.manual_seed(20261203)
torch.set_num_threads(1)
ARCH = dict(target=16, channels=1, base=32, fmax=8)
B, LATENT = 4, 8


def randomized(net):
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.randn_like(p) * (0.1 if name.endswith("bias") else 1.0))
    return net


G = randomized(ProGANG(latent=LATENT, **ARCH).double())
D = randomized(ProGAND(group=2, **ARCH).double())
M = randomized(MSGD(group=2, **ARCH).double())
z = torch.randn(B, LATENT, dtype=torch.float64)
z2 = torch.randn(B, LATENT, dtype=torch.float64)
real16 = torch.rand(B, 1, 16, 16, dtype=torch.float64) * 2 - 1
eps = torch.rand(B, dtype=torch.float64)
tensors = {"z": z, "z2": z2, "real": real16, "eps": eps}
tensors.update({f"G.{n}": p for n, p in G.named_parameters()})
tensors.update({f"D.{n}": p for n, p in D.named_parameters()})
tensors.update({f"M.{n}": p for n, p in M.named_parameters()})


def adam_step(net, grads, lr=1e-3):
    """One torch.optim.Adam step from fresh state on a copy of the parameters."""
    params = {n: p.detach().clone().requires_grad_(True) for n, p in net.named_parameters()}
    opt = torch.optim.Adam(list(params.values()), lr=lr, betas=(0.0, 0.99), eps=1e-8, foreach=False)
    for n, p in params.items():
        p.grad = grads[n].clone()
    opt.step()
    return params


def penalty(critic, realx, fakex):
    point = (eps.view(-1, 1, 1, 1) * realx + (1 - eps.view(-1, 1, 1, 1)) * fakex).detach().requires_grad_(True)
    g, = torch.autograd.grad(critic(point).sum(), point, create_graph=True)
    return ((g.pow(2).sum(dim=[1, 2, 3]) + 1e-12).sqrt() - 1).pow(2).mean()


for res, alpha in [(8, 1.0), (16, 0.25), (16, 1.0)]:
    case = f"r{res}a{alpha:g}"
    level = res.bit_length() - 3
    # The real images at this resolution, cross-faded as transform.fade does.
    real = real16 if res == 16 else torch.nn.functional.avg_pool2d(real16, 16 // res)
    if alpha < 1:
        low = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(real, 2), scale_factor=2, mode="nearest")
        real = low * (1 - alpha) + real * alpha
    tensors[f"{case}.realFaded"] = real
    h = z
    for k in range(level + 1):
        h = G.blocks[k](h)
        tensors[f"{case}.g.block{k}"] = h.detach()
    fake = G(z, level=level, alpha=alpha)
    tensors[f"{case}.g.images"] = fake.detach()
    critic = lambda x: D(x, alpha=alpha)
    d_real, d_fake = critic(real), critic(fake.detach())
    tensors[f"{case}.d.real"], tensors[f"{case}.d.fake"] = d_real.detach(), d_fake.detach()
    gp = penalty(critic, real, fake.detach())
    lossD = d_fake.mean() - d_real.mean() + 0.001 * d_real.pow(2).mean() + 10 * gp
    tensors[f"{case}.gp"] = gp.detach().reshape(1)
    tensors[f"{case}.lossD"] = lossD.detach().reshape(1)
    names = [n for n, _ in D.named_parameters()]
    grads = torch.autograd.grad(lossD, [p for _, p in D.named_parameters()], allow_unused=True)
    gradD = {n: (g if g is not None else torch.zeros_like(p)) for (n, p), g in zip(D.named_parameters(), grads)}
    for n in names:
        tensors[f"{case}.gradD.{n}"] = gradD[n].detach()
    for n, p in adam_step(D, gradD).items():
        tensors[f"{case}.adamD.{n}"] = p.detach()
    lossG = -critic(G(z2, level=level, alpha=alpha)).mean()
    tensors[f"{case}.lossG"] = lossG.detach().reshape(1)
    grads = torch.autograd.grad(lossG, [p for _, p in G.named_parameters()], allow_unused=True)
    gradG = {n: (g if g is not None else torch.zeros_like(p)) for (n, p), g in zip(G.named_parameters(), grads)}
    for n, g in gradG.items():
        tensors[f"{case}.gradG.{n}"] = g.detach()
    for n, p in adam_step(G, gradG).items():
        tensors[f"{case}.adamG.{n}"] = p.detach()

# MSG-GAN: the pyramid of G, the real pyramid by average pooling, RaHinge.
pyramid = G.pyramid(z)
for s, img in zip((4, 8, 16), pyramid):
    tensors[f"msg.g.{s}"] = img.detach()
real_pyramid = [torch.nn.functional.avg_pool2d(real16, 4), torch.nn.functional.avg_pool2d(real16, 2), real16]
d_real, d_fake = M(real_pyramid), M([p.detach() for p in pyramid])
tensors["msg.d.real"], tensors["msg.d.fake"] = d_real.detach(), d_fake.detach()
lossD, _ = rahinge(d_real, d_fake)
tensors["msg.lossD"] = lossD.detach().reshape(1)
for (n, p), g in zip(M.named_parameters(), torch.autograd.grad(lossD, list(M.parameters()))):
    tensors[f"msg.gradD.{n}"] = g.detach()
_, lossG = rahinge(M(real_pyramid).detach(), M(G.pyramid(z2)))
tensors["msg.lossG"] = lossG.detach().reshape(1)
for (n, p), g in zip(G.named_parameters(), torch.autograd.grad(lossG, list(G.parameters()))):
    tensors[f"msg.gradG.{n}"] = g.detach()

save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(out), metadata={"format": "pt", "note": "GANFlow ProGAN/MSG-GAN parity"})
print(f"wrote {out}: {len(tensors)} tensors, {out.stat().st_size} bytes")
