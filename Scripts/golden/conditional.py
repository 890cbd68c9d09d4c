"""Golden values for the class-conditional layers (Tests/NeuralNetTests/ConditionalLayerTests.swift):
conditional batch norm (SNGAN/BigGAN), the projection discriminator head (Miyato and Koyama 2018) and
the ACGAN auxiliary classifier head, and both heads together, each as a small PyTorch module named as GANFlow names it.

Run with a PyTorch environment:  python Scripts/golden/conditional.py > Fixtures/golden/conditional.json
Every tensor is float32; values are written as the exact doubles of those floats.
"""
import json
import re

import torch
import torch.nn as nn


def t(x):
    x = x.detach().to(torch.float32).contiguous()
    return {"shape": list(x.shape), "values": x.flatten().tolist()}


class ConditionalBatchNorm(nn.Module):
    def __init__(self, features, classes, momentum):
        super().__init__()
        self.bn = nn.BatchNorm1d(features, affine=False, momentum=momentum)
        self.gain = nn.Embedding(classes, features)
        self.bias = nn.Embedding(classes, features)

    def forward(self, x, y):
        h = nn.functional.batch_norm(x, self.bn.running_mean, self.bn.running_var, None, None,
                                     self.training, self.bn.momentum, self.bn.eps)
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        return h * self.gain(y).view(shape) + self.bias(y).view(shape)


class ClassHead(nn.Module):
    """psi(h) + <embed[y], sum_hw h> (projection), [psi(h), W sum_hw h + b] (auxiliary), or
    [psi(h) + <embed[y], sum_hw h>, W sum_hw h + b] (both)."""

    def __init__(self, psi, features, classes, projection, auxiliary):
        super().__init__()
        self.psi = psi
        if projection:
            self.embed = nn.Embedding(classes, features)
        if auxiliary:
            self.classifier = nn.Linear(features, classes)

    def forward(self, h, y):
        n = h.shape[0]
        logit = self.psi(h).reshape(n)
        pooled = h.sum(dim=(2, 3)) if h.dim() == 4 else h
        if hasattr(self, "embed"):
            logit = logit + (self.embed(y) * pooled).sum(dim=1)
        if hasattr(self, "classifier"):
            return torch.cat([logit.reshape(n, 1), self.classifier(pooled)], dim=1)
        return logit


def cbn_case(shape, classes, momentum, seed):
    g = torch.Generator().manual_seed(seed)
    m = ConditionalBatchNorm(shape[1], classes, momentum)
    with torch.no_grad():
        m.gain.weight.copy_(torch.rand(m.gain.weight.shape, generator=g) + 0.5)
        m.bias.weight.copy_(torch.randn(m.bias.weight.shape, generator=g))
        m.bn.running_mean.copy_(torch.randn(shape[1], generator=g) * 0.3)
        m.bn.running_var.copy_(torch.rand(shape[1], generator=g) + 0.5)
    x = (torch.randn(shape, generator=g) * 2 + 0.5).requires_grad_()
    y = torch.randint(0, classes, (shape[0],), generator=g)
    upstream = torch.randn(shape, generator=g)
    tensors = {"x": t(x), "labels": t(y.float()), "gain": t(m.gain.weight), "bias": t(m.bias.weight),
               "runningMean": t(m.bn.running_mean), "runningVar": t(m.bn.running_var), "upstream": t(upstream)}
    m.train()
    out = m(x, y)
    dx, dgain, dbias = torch.autograd.grad(out, [x, m.gain.weight, m.bias.weight], upstream)
    tensors.update({"trainOutput": t(out), "trainDx": t(dx), "trainDgain": t(dgain), "trainDbias": t(dbias),
                    "updatedRunningMean": t(m.bn.running_mean), "updatedRunningVar": t(m.bn.running_var)})
    m.eval()
    out = m(x, y)
    dx, dgain, dbias = torch.autograd.grad(out, [x, m.gain.weight, m.bias.weight], upstream)
    tensors.update({"evalOutput": t(out), "evalDx": t(dx), "evalDgain": t(dgain), "evalDbias": t(dbias)})
    return {"params": {"classes": classes, "momentum": momentum}, "tensors": tensors}


def head_case(shape, classes, projection, auxiliary, seed):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    psi = nn.Conv2d(c, 1, kernel_size=shape[2]) if len(shape) == 4 else nn.Linear(c, 1)
    m = ClassHead(psi, c, classes, projection, auxiliary)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    h = torch.randn(shape, generator=g).requires_grad_()
    y = torch.randint(0, classes, (shape[0],), generator=g)
    out = m(h, y)
    upstream = torch.randn(out.shape, generator=g)
    names = [n for n, _ in m.named_parameters()]
    grads = torch.autograd.grad(out, [h] + list(m.parameters()), upstream)
    tensors = {"h": t(h), "labels": t(y.float()), "upstream": t(upstream), "output": t(out), "dh": t(grads[0])}
    for n, p, d in zip(names, m.parameters(), grads[1:]):
        tensors[n] = t(p)
        tensors["d" + n] = t(d)
    return {"params": {"classes": classes}, "tensors": tensors}


cases = {
    "cbn4d": cbn_case([6, 3, 2, 2], 4, 0.1, 1),
    "cbn2d": cbn_case([5, 4], 3, 0.2, 2),
    "projection4d": head_case([4, 3, 2, 2], 5, True, False, 3),
    "projection2d": head_case([5, 6], 4, True, False, 4),
    "auxiliary4d": head_case([4, 3, 2, 2], 5, False, True, 5),
    "auxiliary2d": head_case([5, 6], 4, False, True, 6),
    "projectionAuxiliary4d": head_case([4, 3, 2, 2], 5, True, True, 7),
}

text = json.dumps({"generator": "Scripts/golden/conditional.py", "torch": torch.__version__, "cases": cases},
                  indent=1, sort_keys=True)
print(re.sub(r"\[\s+([-0-9.,e\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text))
