"""StyleGAN2 networks in plain torch ops (no custom CUDA/C++ ops), the same as GANFlow's
generator.stylegan2 / discriminator.stylegan2, for `torch_reference.py --model stylegan2_32`.

FIR resampling is zero insertion, padding and a depthwise convolution with the [1, 3, 3, 1] filter
(upfirdn2d's reference semantics); the modulated convolution scales the activations around one
convolution of the whole batch (stylegan2-ada-pytorch's training path, fused_modconv=False).
Training-mode forward: random noise, no style mixing. Written for this benchmark from the papers'
definitions; Scripts/golden/stylegan2.py checks the same formulas against the Swift code.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F

SQRT2 = math.sqrt(2)
TAPS = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8


def fir(x, pad, up=1, down=1, gain=1.0):
    n, c, h, w = x.shape
    if up > 1:
        y = x.new_zeros(n, c, h * up, w * up)
        y[:, :, ::up, ::up] = x
        x = y
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    # A depthwise convolution (one filter per channel), as upfirdn2d's reference implementation in
    # stylegan2-ada-pytorch does. Every plane through one single-channel convolution of a batch of
    # N*C planes gives the same values, but torch 2.13's backward of that convolution took most of
    # the step on a Zen 4 (an earlier form of this reference, which made PyTorch look 5x slower).
    f = (torch.outer(TAPS, TAPS) * gain)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, f, stride=down, groups=c)


def bias_act(x, b, act=True, gain=1.0):
    if b is not None:
        x = x + b.reshape(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, 0.2) * (SQRT2 * gain) if act else x * gain


class FC(nn.Module):
    def __init__(self, i, o, act=False, lr=1.0, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) / lr)
        self.bias = nn.Parameter(torch.full([o], float(bias_init)))
        self.wg, self.bg, self.act = lr / math.sqrt(i), lr, act

    def forward(self, x):
        x = F.linear(x, self.weight * self.wg, self.bias * self.bg)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.act else x


def conv_resample(x, w, up=1, down=1, padding=0):
    k = w.shape[2]
    if up == 2:
        y = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        return fir(y, (padding + 2 - (k - 1), padding + 1 - (k - 2)), gain=4)
    if down == 2:
        if k == 1:
            return F.conv2d(fir(x, (1 + padding, 1 + padding), down=2), w)
        return F.conv2d(fir(x, (padding + 1, padding + 1)), w, stride=2)
    return F.conv2d(x, w, padding=padding)


def modconv(x, weight, styles, demod=True, up=1, padding=1):
    n = x.shape[0]
    y = conv_resample(x * styles.reshape(n, -1, 1, 1), weight, up=up, padding=padding)
    if demod:
        d = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
        y = y * d.reshape(n, -1, 1, 1)
    return y


class SynthesisLayer(nn.Module):
    def __init__(self, i, o, w_dim, res, up=1):
        super().__init__()
        self.affine = FC(w_dim, i, bias_init=1)
        self.weight = nn.Parameter(torch.randn(o, i, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(o))
        self.res, self.up = res, up

    def forward(self, x, w):
        y = modconv(x, self.weight, self.affine(w), up=self.up)
        y = y + torch.randn(x.shape[0], 1, self.res, self.res) * self.noise_strength
        return bias_act(y, self.bias)


class ToRGB(nn.Module):
    def __init__(self, i, o, w_dim):
        super().__init__()
        self.affine = FC(w_dim, i, bias_init=1)
        self.weight = nn.Parameter(torch.randn(o, i, 1, 1))
        self.bias = nn.Parameter(torch.zeros(o))
        self.gain = 1 / math.sqrt(i)

    def forward(self, x, w):
        return bias_act(modconv(x, self.weight, self.affine(w) * self.gain, demod=False, padding=0), self.bias, act=False)


class Generator(nn.Module):
    def __init__(self, z_dim, w_dim, layers, res, channels, base, cmax):
        super().__init__()
        ch = lambda r: min(base // r, cmax)
        self.mapping = nn.ModuleList([FC(z_dim if i == 0 else w_dim, w_dim, act=True, lr=0.01) for i in range(layers)])
        self.resolutions = [2 ** i for i in range(2, int(math.log2(res)) + 1)]
        self.const = nn.Parameter(torch.randn(ch(4), 4, 4))
        self.convs, self.rgbs = nn.ModuleList(), nn.ModuleList()
        for r in self.resolutions:
            if r > 4:
                self.convs.append(SynthesisLayer(ch(r // 2), ch(r), w_dim, r, up=2))
            self.convs.append(SynthesisLayer(ch(r), ch(r), w_dim, r))
            self.rgbs.append(ToRGB(ch(r), channels, w_dim))

    def forward(self, z):
        w = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for fc in self.mapping:
            w = fc(w)
        x = self.const[None].expand(z.shape[0], -1, -1, -1)
        img, i = None, 0
        for k, r in enumerate(self.resolutions):
            for _ in range(1 if r == 4 else 2):
                x = self.convs[i](x, w)
                i += 1
            y = self.rgbs[k](x, w)
            img = y if img is None else fir(img, (2, 1), up=2, gain=4) + y
        return img


class Conv(nn.Module):
    def __init__(self, i, o, k, bias=True, act=True, down=1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i, k, k))
        self.bias = nn.Parameter(torch.zeros(o)) if bias else None
        self.gain, self.act, self.down = 1 / math.sqrt(i * k * k), act, down

    def forward(self, x, gain=1.0):
        y = conv_resample(x, self.weight * self.gain, down=self.down, padding=self.weight.shape[2] // 2)
        return bias_act(y, self.bias, act=self.act, gain=gain)


class Discriminator(nn.Module):
    def __init__(self, res, channels, base, cmax, group=4):
        super().__init__()
        ch = lambda r: min(base // r, cmax)
        self.blocks = nn.ModuleList()
        self.fromrgb = Conv(channels, ch(res), 1)
        for r in [2 ** i for i in range(int(math.log2(res)), 2, -1)]:
            self.blocks.append(nn.ModuleList([Conv(ch(r), ch(r), 3), Conv(ch(r), ch(r // 2), 3, down=2),
                                              Conv(ch(r), ch(r // 2), 1, bias=False, act=False, down=2)]))
        self.conv = Conv(ch(4) + 1, ch(4), 3)
        self.fc = FC(ch(4) * 16, ch(4), act=True)
        self.out = FC(ch(4), 1)
        self.group = group

    def forward(self, img):
        x = self.fromrgb(img)
        half = math.sqrt(0.5)
        for conv0, conv1, skip in self.blocks:
            x = skip(x, gain=half) + conv1(conv0(x), gain=half)
        n, c, h, w = x.shape
        g = min(self.group, n)
        y = x.reshape(g, -1, c, h, w)
        y = ((y - y.mean(dim=0)).square().mean(dim=0) + 1e-8).sqrt().mean(dim=[1, 2, 3])
        x = torch.cat([x, y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)], dim=1)
        return self.out(self.fc(self.conv(x).flatten(1))).flatten()


def stylegan2_32():
    """pipelines/stylegan2-fashion.json's networks: (G, D, latent shape, image shape). Channels
    min(512 / r, 128); min(1024 / r, 64) until session 20."""
    return (Generator(128, 128, 4, 32, 1, 512, 128), Discriminator(32, 1, 512, 128), (128,), (1, 32, 32))
