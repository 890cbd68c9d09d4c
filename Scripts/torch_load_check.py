"""Checks that a model stage's weights, as GANFlow exports them, load into PyTorch and compute the same outputs.

    PYTHON Scripts/torch_load_check.py RUN_DIR [--stage G] [--ema] [--ganflow .build/debug/ganflow]
    PYTHON Scripts/torch_load_check.py RUN_DIR --stage G --stage D --given DIR

The first form runs `ganflow export RUN_DIR --stage G --out g.safetensors --probe probe.safetensors`
(a generator); the second takes each stage's weights and probe already written in DIR as STAGE.safetensors
and STAGE-probe.safetensors (`make test` writes them for
generators and discriminators from its interop test, TorchInteropTests). A generator's probe holds
latents `z` and GANFlow's `images`; a discriminator's holds images `x` and GANFlow's `logits`.
The script builds the PyTorch nn.Sequential that the run's pipeline.json describes for the stage
(generator.dcgan or discriminator.dcgan with its preset, resolution, width, depth, norm and channels;
generator.mlp or discriminator.mlp; generator.progan or discriminator.progan at their target
resolution; generator.msg's top image, discriminator.msg on an image and its average-pooled pyramid), loads the weights with load_state_dict(strict=True), runs it on
the probe's input in training mode (batch statistics, as GANFlow samples and scores) and prints the
largest difference from GANFlow's output as one JSON line. Exit status 1 when the difference exceeds
--tolerance.
"""
import argparse, json, os, subprocess, sys, tempfile

import torch
from torch import nn
from safetensors.torch import load_file


def dcgan_depth(resolution):
    d = 0
    while resolution % (2 << d) == 0 and resolution >> (d + 1) >= 4:
        d += 1
    return d


def dcgan_generator(cfg, latent):
    channels = cfg.get("channels", 1)
    norm = cfg.get("norm", "batch")
    preset = cfg.get("preset")
    if preset == "notebook28":
        features = [latent, 256, 128, 64, channels]
        specs = [(3, 2, 0, 0), (3, 2, 0, 0), (3, 2, 1, 1), (3, 2, 1, 1)]
    else:
        resolution = 64 if preset == "classic64" else cfg.get("resolution") or 32
        width = 64 if preset == "classic64" else cfg.get("width") or 64
        depth = cfg.get("depth") or dcgan_depth(resolution)
        start = resolution >> depth
        features = [latent] + [width << (depth - 1 - i) for i in range(depth)] + [channels]
        specs = [(start, 1, 0, 0)] + [(4, 2, 1, 0)] * depth
    layers = []
    for i, (k, s, p, op) in enumerate(specs):
        conv = nn.ConvTranspose2d(features[i], features[i + 1], k, s, p, output_padding=op, bias=norm != "batch")
        layers.append(nn.utils.spectral_norm(conv) if norm == "spectral" else conv)
        if i < len(specs) - 1:
            if norm == "batch":
                layers.append(nn.BatchNorm2d(features[i + 1]))
            layers.append(nn.ReLU())
    layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def dcgan_discriminator(cfg, channels, resolution):
    norm = cfg.get("norm", "batch")
    preset = cfg.get("preset")
    if preset == "notebook28":
        features, specs = [channels, 64, 128, 256, 1], [(4, 2, 1)] * 4
    else:
        width = 64 if preset == "classic64" else cfg.get("width") or 64
        depth = cfg.get("depth") or dcgan_depth(resolution)
        features = [channels] + [width << i for i in range(depth)] + [1]
        specs = [(4, 2, 1)] * depth + [(resolution >> depth, 1, 0)]
    layers = []
    for i, (k, s, p) in enumerate(specs):
        conv = nn.Conv2d(features[i], features[i + 1], k, s, p, bias=norm != "batch")
        layers.append(nn.utils.spectral_norm(conv) if norm == "spectral" else conv)
        if i < len(specs) - 1:
            if norm == "batch" and i > 0:
                layers.append(nn.BatchNorm2d(features[i + 1]))
            layers.append(nn.LeakyReLU(0.2))
    layers.append(nn.Flatten(0))
    return nn.Sequential(*layers)


def mlp_discriminator(cfg, channels, size):
    hidden, slope = cfg.get("hidden", [512, 256]), cfg.get("slope", 0.2)

    def dense(i, o):
        l = nn.Linear(i, o)
        return nn.utils.spectral_norm(l) if cfg.get("norm", "none") == "spectral" else l
    layers, width = [nn.Flatten(1)], channels * size * size
    for h in hidden:
        layers += [dense(width, h), nn.LeakyReLU(slope)]
        width = h
    layers += [dense(width, 1), nn.Flatten(0)]
    return nn.Sequential(*layers)


class EqualizedConv(nn.Module):
    """ProGAN's convolution: weights stored N(0, 1), scaled by gain / sqrt(fan-in) when applied; same padding."""
    def __init__(self, i, o, k, gain=2 ** 0.5):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.empty(o, i, k, k)), nn.Parameter(torch.empty(o))
        self.scale, self.pad = gain / (i * k * k) ** 0.5, k // 2

    def forward(self, x):
        return nn.functional.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class EqualizedLinear(nn.Module):
    """ProGAN's dense layer; with `side`, the output is a [N, C, side, side] map with a bias per map."""
    def __init__(self, i, o, gain=2 ** 0.5, side=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(o, i))
        self.bias = nn.Parameter(torch.empty(o // (side * side) if side else o))
        self.scale, self.side = gain / i ** 0.5, side

    def forward(self, x):
        if not self.side:
            return nn.functional.linear(x, self.weight * self.scale, self.bias)
        y = nn.functional.linear(x, self.weight * self.scale).reshape(x.shape[0], -1, self.side, self.side)
        return y + self.bias.reshape(1, -1, 1, 1)


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MinibatchStddev(nn.Module):
    """The official layer: groups of `group` samples n = j * (N / group) + m, one more feature map."""
    def __init__(self, group):
        super().__init__()
        self.group = group

    def forward(self, x):
        g = min(self.group, x.shape[0])
        y = x.reshape(g, -1, *x.shape[1:])
        y = (y - y.mean(dim=0)).pow(2).mean(dim=0).add(1e-8).sqrt().mean(dim=(1, 2, 3))
        return torch.cat([x, y.repeat(g).reshape(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])], dim=1)


def progan_features(cfg, stage):
    base, decay, top = cfg.get("fmapBase", 8192), cfg.get("fmapDecay", 1), cfg.get("fmapMax", 512)
    return max(1, min(int(base / 2 ** (stage * decay)), top))


class ProGANGenerator(nn.Module):
    """At its target resolution (alpha 1): blocks.<k> per resolution, toRGB.<k> at the last."""
    def __init__(self, cfg, latent):
        super().__init__()
        levels = cfg["target"].bit_length() - 2
        blocks, to_rgb = [], []
        for k in range(levels):
            n = progan_features(cfg, k + 1)
            if k == 0:
                layers = [PixelNorm()] if cfg.get("normalizeLatent", True) else []
                layers += [EqualizedLinear(latent, n * 16, gain=2 ** 0.5 / 4, side=4), nn.LeakyReLU(0.2), PixelNorm(),
                           EqualizedConv(n, n, 3), nn.LeakyReLU(0.2), PixelNorm()]
            else:
                m = progan_features(cfg, k)
                layers = [nn.Upsample(scale_factor=2, mode="nearest"), EqualizedConv(m, n, 3), nn.LeakyReLU(0.2), PixelNorm(),
                          EqualizedConv(n, n, 3), nn.LeakyReLU(0.2), PixelNorm()]
            blocks.append(nn.Sequential(*layers))
            to_rgb.append(EqualizedConv(n, cfg.get("channels", 1), 1, gain=1))
        self.blocks, self.toRGB = nn.ModuleList(blocks), nn.ModuleList(to_rgb)

    def forward(self, z):
        h = z
        for b in self.blocks:
            h = b(h)
        return self.toRGB[-1](h)


def progan_discriminator_block(cfg, k, width, group):
    """Block k of ProGAN's (and MSG-GAN's) discriminator on `width` input maps: down to the next
    resolution, or at 4x4 the minibatch stddev, a convolution and two dense layers to one score."""
    n = progan_features(cfg, k + 1)
    if k == 0:
        d = progan_features(cfg, 0)
        layers = [MinibatchStddev(group)] if group > 1 else []
        layers += [EqualizedConv(width + (1 if group > 1 else 0), n, 3), nn.LeakyReLU(0.2), nn.Flatten(1),
                   EqualizedLinear(n * 16, d), nn.LeakyReLU(0.2), EqualizedLinear(d, 1, gain=1), nn.Flatten(0)]
    else:
        layers = [EqualizedConv(width, n, 3), nn.LeakyReLU(0.2), EqualizedConv(n, progan_features(cfg, k), 3),
                  nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
    return nn.Sequential(*layers)


class ProGANDiscriminator(nn.Module):
    """At its target resolution (alpha 1): fromRGB.<k> at the top, blocks.<k> down to 4x4."""
    def __init__(self, cfg, channels, target):
        super().__init__()
        levels, group = target.bit_length() - 2, cfg.get("groupSize", 4)
        from_rgb, blocks = [], []
        for k in range(levels):
            n = progan_features(cfg, k + 1)
            from_rgb.append(nn.Sequential(EqualizedConv(channels, n, 1), nn.LeakyReLU(0.2)))
            blocks.append(progan_discriminator_block(cfg, k, n, group))
        self.fromRGB, self.blocks = nn.ModuleList(from_rgb), nn.ModuleList(blocks)

    def forward(self, x):
        h = self.fromRGB[-1](x)
        for b in reversed(self.blocks):
            h = b(h)
        return h


class MSGDiscriminator(nn.Module):
    """MSG-GAN's discriminator on an image and its 2x2-average pyramid: fromRGB at the top, then
    blocks.<k> down to 4x4, each below the top fed by combine.<k> of its scale's image and the features."""
    def __init__(self, cfg, channels, target):
        super().__init__()
        levels, group, self.kind = target.bit_length() - 2, cfg.get("groupSize", 4), cfg.get("combine", "simple")
        top = levels - 1
        self.fromRGB = nn.Sequential(EqualizedConv(channels, progan_features(cfg, top + 1), 1), nn.LeakyReLU(0.2))
        combines, blocks = [], []
        for k in range(levels):
            n = progan_features(cfg, k + 1)
            width = n
            if k < top:
                if self.kind == "lin_cat":
                    combines.append(EqualizedConv(channels, n, 1, gain=1))
                    width = 2 * n
                elif self.kind == "cat_lin":
                    combines.append(EqualizedConv(n + channels, n, 1, gain=1))
                else:
                    combines.append(nn.Identity())
                    width = n + channels
            blocks.append(progan_discriminator_block(cfg, k, width, group))
        self.combine, self.blocks, self.levels = nn.ModuleList(combines), nn.ModuleList(blocks), levels

    def forward(self, x):
        pyramid = [x]
        while len(pyramid) < self.levels:
            pyramid.insert(0, nn.functional.avg_pool2d(pyramid[0], 2))
        h = self.blocks[-1](self.fromRGB(pyramid[-1]))
        for k in reversed(range(self.levels - 1)):
            image, c = pyramid[k], self.combine[k]
            if self.kind == "lin_cat":
                h = torch.cat([c(image), h], dim=1)
            elif self.kind == "cat_lin":
                h = c(torch.cat([image, h], dim=1))
            else:
                h = torch.cat([image, h], dim=1)
            h = self.blocks[k](h)
        return h


def mlp_generator(cfg, latent):
    hidden = cfg.get("hidden", [256, 512, 1024])
    size, channels = cfg.get("size", 28), cfg.get("channels", 1)
    slope = cfg.get("slope", 0.2)
    layers, width = [], latent
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if cfg.get("norm", "batch") == "batch":
            layers.append(nn.BatchNorm1d(h, momentum=cfg.get("momentum", 0.2)))
        layers.append(nn.LeakyReLU(slope))
        width = h
    layers += [nn.Linear(width, channels * size * size), nn.Tanh(), nn.Unflatten(1, (channels, size, size))]
    return nn.Sequential(*layers)


def check(args, stage):
    """Compares one stage; returns whether it is within the tolerance."""
    with open(os.path.join(args.run, "pipeline.json")) as f:
        cfg = json.load(f)["stages"][stage]
    if args.given:
        state = load_file(os.path.join(args.given, stage + ".safetensors"))
        probe = load_file(os.path.join(args.given, stage + "-probe.safetensors"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            weights, probe = os.path.join(tmp, "g.safetensors"), os.path.join(tmp, "probe.safetensors")
            cmd = [args.ganflow, "export", args.run, "--stage", stage, "--out", weights, "--probe", probe]
            subprocess.run(cmd + (["--ema"] if args.ema else []), check=True, stdout=subprocess.DEVNULL)
            state, probe = load_file(weights), load_file(probe)

    kind = cfg["type"]
    if kind.startswith("generator."):
        x, expected = probe["z"], probe["images"]
        latent = x.shape[1]
        if kind == "generator.dcgan":
            model, x = dcgan_generator(cfg, latent), x.reshape(x.shape[0], latent, 1, 1)
        elif kind == "generator.mlp":
            model, x = mlp_generator(cfg, latent), x.reshape(x.shape[0], latent)
        elif kind in ("generator.progan", "generator.msg"):
            model, x = ProGANGenerator(cfg, latent), x.reshape(x.shape[0], latent)
        else:
            sys.exit(f"no PyTorch equivalent written for {kind}")
    else:
        x, expected = probe["x"], probe["logits"]
        if kind == "discriminator.dcgan":
            model = dcgan_discriminator(cfg, x.shape[1], x.shape[2])
        elif kind == "discriminator.mlp":
            model = mlp_discriminator(cfg, x.shape[1], x.shape[2])
        elif kind == "discriminator.progan":
            model = ProGANDiscriminator(cfg, x.shape[1], x.shape[2])
        elif kind == "discriminator.msg":
            model = MSGDiscriminator(cfg, x.shape[1], x.shape[2])
        else:
            sys.exit(f"no PyTorch equivalent written for {kind}")
    model.load_state_dict(state, strict=True)
    # Spectral norm would run a power-iteration round in training mode; GANFlow's outputs reuse the
    # stored vectors, so put only the spectral-norm wrappers in eval mode.
    model.train()
    for m in model.modules():
        if hasattr(m, "weight_orig"):
            m.eval()
    with torch.no_grad():
        out = model(x)
    if out.shape != expected.shape:
        print(f"{stage}: PyTorch's output has shape {list(out.shape)}, GANFlow's {list(expected.shape)}")
        return False
    diff = (out - expected).abs().max().item()
    print(json.dumps({"run": args.run, "stage": stage, "type": kind, "preset": cfg.get("preset"),
                      "norm": cfg.get("norm"), "ema": args.ema, "tensors": len(state), "shape": list(out.shape),
                      "max_abs_diff": diff, "strict_load": True}))
    return diff <= args.tolerance


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--stage", action="append", help="a model stage (repeatable; default G)")
    ap.add_argument("--ema", action="store_true")
    ap.add_argument("--ganflow", default=".build/debug/ganflow")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--given", help="a folder holding STAGE.safetensors and STAGE-probe.safetensors (skips ganflow export)")
    args = ap.parse_args()
    results = [check(args, stage) for stage in args.stage or ["G"]]
    sys.exit(0 if all(results) else 1)




if __name__ == "__main__":
    main()
