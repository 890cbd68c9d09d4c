"""Golden values for StyleGAN2's ops (Tests/TensorRuntimeTests/StyleGANOpsTests, NeuralNetTests).

Run with the development venv:
    /work/devvenv/bin/python Scripts/golden/stylegan2.py > Fixtures/golden/stylegan2.json

The reference implementations below are written from the definitions in StyleGAN2 (Karras et al.,
2020) and stylegan2-ada-pytorch's documented semantics (upfirdn2d: upsample by zero insertion, pad,
convolve with the FIR filter, downsample; conv2d_resample; modulated_conv2d; normalize_2nd_moment;
FullyConnectedLayer's learning-rate multiplier), with plain torch ops. The modulated convolution is
computed both ways StyleGAN2 allows (activations scaled around one convolution, and per-sample
weights as a grouped convolution) and the script checks that they agree. Every tensor is float32.
"""
import math

import torch
import torch.nn.functional as F

from nnops import resample_case, t, write_golden

SQRT2 = math.sqrt(2)


def fir_taps(taps):
    f = torch.tensor(taps, dtype=torch.float32)
    return f / f.sum()


def upfirdn(x, taps, up=1, down=1, pad=(0, 0), gain=1.0):
    """Zero-stuff by `up`, pad (negative crops), convolve with the separable filter, keep every `down`-th."""
    n, c, h, w = x.shape
    if up > 1:
        y = x.new_zeros(n, c, h * up, w * up)
        y[:, :, ::up, ::up] = x
        x = y
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
    f = fir_taps(taps) * math.sqrt(gain)
    k2 = torch.outer(f, f).flip([0, 1])  # a true convolution
    weight = k2[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down]


def upsample2d(x, taps=(1, 3, 3, 1)):
    k = len(taps)
    return upfirdn(x, taps, up=2, pad=((k + 1) // 2, (k - 2) // 2), gain=4)


def downsample2d(x, taps=(1, 3, 3, 1)):
    k = len(taps)
    return upfirdn(x, taps, down=2, pad=((k - 1) // 2, (k - 2) // 2))


def conv_resample(x, w, up=1, down=1, padding=0, taps=(1, 3, 3, 1), groups=1):
    """Convolution with FIR up/downsampling, as upsample -> conv / conv -> downsample on the fine grid.

    Written as the direct definition (zero-stuff, filter, then a true convolution for `up`;
    filter, then a strided correlation for `down`), not as the fast paths the Swift code takes.
    """
    k = w.shape[2]
    f = len(taps)
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    if up == 2:
        # Transposed stride-2 convolution == zero-stuffing followed by a full convolution with the
        # (unflipped) kernel; then the FIR filter with gain 4.
        n, c, h, ww = x.shape
        z = x.new_zeros(n, c, 2 * h, 2 * ww)
        z[:, :, ::2, ::2] = x
        z = z[:, :, : 2 * h - 1, : 2 * ww - 1]
        if groups == 1:
            wt = w.flip([2, 3])  # [O, I, k, k]; conv2d correlates, so flip for a true convolution
        else:
            wt = w.flip([2, 3])
        y = F.conv2d(z, wt, padding=k - 1, groups=groups)
        before = padding + (f + 1) // 2 - (k - 1)
        after = padding + (f - 2) // 2 - (k - 2)
        return upfirdn(y, taps, pad=(before, after), gain=4)
    if down == 2:
        before = padding + (f - 1) // 2
        after = padding + (f - 2) // 2
        if k == 1:
            return F.conv2d(upfirdn(x, taps, down=2, pad=(before, after)), w, groups=groups)
        return F.conv2d(upfirdn(x, taps, pad=(before, after)), w, stride=2, groups=groups)
    raise ValueError("unsupported")


def modconv_activations(x, weight, styles, demodulate=True, up=1, padding=1):
    n = x.shape[0]
    y = conv_resample(x * styles.reshape(n, -1, 1, 1), weight, up=up, padding=padding)
    if demodulate:
        wm = weight[None] * styles[:, None, :, None, None]
        d = (wm.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        y = y * d.reshape(n, -1, 1, 1)
    return y


def modconv_grouped(x, weight, styles, demodulate=True, up=1, padding=1):
    n, i, h, w = x.shape
    o, _, k, _ = weight.shape
    wm = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        wm = wm * (wm.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
    y = conv_resample(x.reshape(1, n * i, h, w), wm.reshape(n * o, i, k, k), up=up, padding=padding, groups=n)
    return y.reshape(n, o, *y.shape[2:])


def linear_eq(x, weight, bias, lr_mul, activation):
    y = x.matmul((weight * (lr_mul / math.sqrt(weight.shape[1]))).t()) + bias * lr_mul
    if activation == "lrelu":
        y = F.leaky_relu(y, 0.2) * SQRT2
    return y


def conv_resample_case(seed, x_shape, w_shape, up, down, padding):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=g).requires_grad_()
    w = torch.randn(w_shape, generator=g).requires_grad_()
    y = conv_resample(x, w, up=up, down=down, padding=padding)
    upstream = torch.randn(y.shape, generator=g)
    dx, dw = torch.autograd.grad(y, [x, w], upstream)
    return {"params": {"up": up, "down": down, "padding": padding},
            "tensors": {"x": t(x), "weight": t(w), "output": t(y), "upstream": t(upstream), "dx": t(dx), "dweight": t(dw)}}


def modconv_case(seed, n, i, o, k, h, up, demodulate):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, i, h, h, generator=g).requires_grad_()
    weight = torch.randn(o, i, k, k, generator=g).requires_grad_()
    styles = (torch.randn(n, i, generator=g) * 0.5 + 1).requires_grad_()
    padding = k // 2
    y = modconv_activations(x, weight, styles, demodulate=demodulate, up=up, padding=padding)
    y2 = modconv_grouped(x, weight, styles, demodulate=demodulate, up=up, padding=padding)
    assert torch.allclose(y, y2, atol=1e-4), (y - y2).abs().max()
    upstream = torch.randn(y.shape, generator=g)
    dx, dw, ds = torch.autograd.grad(y, [x, weight, styles], upstream)
    return {"params": {"up": up, "padding": padding, "demodulate": int(demodulate)},
            "tensors": {"x": t(x), "weight": t(weight), "styles": t(styles), "output": t(y), "upstream": t(upstream),
                        "dx": t(dx), "dweight": t(dw), "dstyles": t(ds)}}


def mapping_case(seed, n, z_dim, w_dim, layers, lr_mul):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=g).requires_grad_()
    params = {}
    dims = [z_dim] + [w_dim] * layers
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    tensors = {"z": t(z)}
    leaves = []
    for idx in range(layers):
        weight = (torch.randn(dims[idx + 1], dims[idx], generator=g) / lr_mul).requires_grad_()
        bias = (torch.randn(dims[idx + 1], generator=g) * 0.1).requires_grad_()
        tensors[f"fc{idx}.weight"] = t(weight)
        tensors[f"fc{idx}.bias"] = t(bias)
        leaves += [weight, bias]
        x = linear_eq(x, weight, bias, lr_mul, "lrelu")
    upstream = torch.randn(x.shape, generator=g)
    grads = torch.autograd.grad(x, [z] + leaves, upstream)
    tensors.update({"output": t(x), "upstream": t(upstream), "dz": t(grads[0])})
    for idx in range(layers):
        tensors[f"fc{idx}.weight.grad"] = t(grads[1 + 2 * idx])
        tensors[f"fc{idx}.bias.grad"] = t(grads[2 + 2 * idx])
    return {"params": {"layers": layers, "lrMultiplier": lr_mul, "wDim": w_dim}, "tensors": tensors}


def conditional_mapping_case(seed, n, z_dim, classes, w_dim, layers, lr_mul):
    """stylegan2-ada-pytorch's MappingNetwork with c_dim = classes: the one-hot label through the
    embedding (a linear FullyConnectedLayer, learning-rate multiplier 1) to w_dim features, both it
    and z (when z_dim > 0) normalised to unit second moment and concatenated, then the layers. With
    z_dim 0 it is a conditional Discriminator's mapping of the label to cmap."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    c = F.one_hot(labels, classes).float()
    tensors = {"labels": t(labels.float())}
    leaves, names = [], []
    parts = []
    z = None
    if z_dim > 0:
        z = torch.randn(n, z_dim, generator=g).requires_grad_()
        tensors["z"] = t(z)
        parts.append(z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt())
    embed_w = torch.randn(w_dim, classes, generator=g).requires_grad_()
    embed_b = (torch.randn(w_dim, generator=g) * 0.1).requires_grad_()
    y = linear_eq(c, embed_w, embed_b, 1, "linear")
    parts.append(y * (y.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt())
    leaves += [embed_w, embed_b]
    names += ["embed.weight", "embed.bias"]
    x = torch.cat(parts, dim=1)
    dims = [x.shape[1]] + [w_dim] * layers
    for idx in range(layers):
        weight = (torch.randn(dims[idx + 1], dims[idx], generator=g) / lr_mul).requires_grad_()
        bias = (torch.randn(dims[idx + 1], generator=g) * 0.1).requires_grad_()
        leaves += [weight, bias]
        names += [f"fc{idx}.weight", f"fc{idx}.bias"]
        x = linear_eq(x, weight, bias, lr_mul, "lrelu")
    upstream = torch.randn(x.shape, generator=g)
    grads = torch.autograd.grad(x, ([z] if z is not None else []) + leaves, upstream)
    tensors.update({"output": t(x), "upstream": t(upstream)})
    if z is not None:
        tensors["dz"] = t(grads[0])
        grads = grads[1:]
    for name, leaf, grad in zip(names, leaves, grads):
        tensors[name] = t(leaf)
        tensors[name + ".grad"] = t(grad)
    return {"params": {"layers": layers, "lrMultiplier": lr_mul, "wDim": w_dim, "zDim": z_dim, "classes": classes},
            "tensors": tensors}


def path_length_case(seed, n, w_dim, c, res, pl_mean, decay, weight_pl):
    """A two-layer synthesis (4x4 const -> modulated 3x3 conv with noise-free lrelu -> up-conv -> toRGB)
    and the path-length penalty of its images with respect to ws [N, 3, w_dim]."""
    g = torch.Generator().manual_seed(seed)
    ws = torch.randn(n, 3, w_dim, generator=g).requires_grad_()
    const = torch.randn(c, 4, 4, generator=g)
    a0w = torch.randn(c, w_dim, generator=g).requires_grad_()
    conv0 = torch.randn(c, c, 3, 3, generator=g).requires_grad_()
    a1w = torch.randn(c, w_dim, generator=g).requires_grad_()
    conv1 = torch.randn(c, c, 3, 3, generator=g).requires_grad_()
    a2w = torch.randn(c, w_dim, generator=g).requires_grad_()
    rgb = torch.randn(3, c, 1, 1, generator=g).requires_grad_()
    ones = torch.ones(c)

    def synth(ws):
        x = const[None].repeat(n, 1, 1, 1)
        s0 = linear_eq(ws[:, 0], a0w, ones, 1, "linear")
        x = F.leaky_relu(modconv_activations(x, conv0, s0), 0.2) * SQRT2
        s1 = linear_eq(ws[:, 1], a1w, ones, 1, "linear")
        x = F.leaky_relu(modconv_activations(x, conv1, s1, up=2), 0.2) * SQRT2
        s2 = linear_eq(ws[:, 2], a2w, ones, 1, "linear") / math.sqrt(c)
        return modconv_activations(x, rgb, s2, demodulate=False, padding=0)

    img = synth(ws)
    noise = torch.randn(img.shape, generator=g) / math.sqrt(img.shape[2] * img.shape[3])
    (grads,) = torch.autograd.grad((img * noise).sum(), [ws], create_graph=True)
    lengths = grads.square().sum(2).mean(1).sqrt()
    new_mean = pl_mean + (lengths.mean().detach() - pl_mean) * decay
    penalty = (lengths - new_mean).square()
    loss = penalty.mean() * weight_pl
    leaves = [a0w, conv0, a1w, conv1, a2w, rgb]
    dl = torch.autograd.grad(loss, leaves)
    names = ["affine0", "conv0", "affine1", "conv1", "affine2", "torgb"]
    tensors = {"ws": t(ws), "const": t(const), "noise": t(noise), "images": t(img), "lengths": t(lengths),
               "loss": t(loss), "newMean": t(new_mean.detach().clone())}
    for name, leaf, d in zip(names, leaves, dl):
        tensors[name] = t(leaf)
        tensors[name + ".grad"] = t(d)
    return {"params": {"plMean": pl_mean, "decay": decay, "weight": weight_pl}, "tensors": tensors}


torch.manual_seed(0)
cases = {
    "upsample2d": resample_case([2, 2, 3, 4], 11, upsample2d, {}),
    "downsample2d": resample_case([2, 2, 6, 4], 12, downsample2d, {}),
    "upfirdnCrop": resample_case([1, 2, 5, 5], 13, lambda x: upfirdn(x, (1, 2, 1), up=2, down=3, pad=(-1, 2), gain=2),
                            {"up": 2, "down": 3, "before": -1, "after": 2, "gain": 2}),
    "convUp": conv_resample_case(21, [2, 3, 4, 4], [5, 3, 3, 3], 2, 1, 1),
    "convDown": conv_resample_case(22, [2, 3, 8, 8], [4, 3, 3, 3], 1, 2, 1),
    "convDown1x1": conv_resample_case(23, [2, 3, 8, 8], [4, 3, 1, 1], 1, 2, 0),
    "modconv": modconv_case(31, 3, 4, 5, 3, 4, 1, True),
    "modconvUp": modconv_case(32, 2, 3, 4, 3, 4, 2, True),
    "modconvRGB": modconv_case(33, 2, 4, 3, 1, 4, 1, False),
    "mapping": mapping_case(41, 3, 6, 5, 3, 0.01),
    "pathLength": path_length_case(51, 2, 4, 3, 8, 0.5, 0.01, 2.0),
    "mappingConditional": conditional_mapping_case(42, 5, 6, 4, 5, 2, 0.01),
    "mappingLabelOnly": conditional_mapping_case(43, 5, 0, 4, 5, 3, 0.01),
}

write_golden("Scripts/golden/stylegan2.py", cases)
