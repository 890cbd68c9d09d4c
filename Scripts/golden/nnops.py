"""Golden values for the normalisation, pooling and resampling ops (Tests/TensorRuntimeTests).

Run with a PyTorch environment:  python Scripts/golden/nnops.py > Fixtures/golden/nnops.json
Every tensor is float32; values are written as the exact doubles of those floats.
"""
import json
import re

import torch
import torch.nn.functional as F


def t(x):
    x = x.detach().to(torch.float32).contiguous()
    return {"shape": list(x.shape), "values": x.flatten().tolist()}


def batch_norm_case(shape, momentum, seed):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = (torch.randn(shape, generator=g) * 2 + 0.5).requires_grad_()
    weight = (torch.rand(c, generator=g) + 0.5).requires_grad_()
    bias = torch.randn(c, generator=g).requires_grad_()
    running_mean = torch.randn(c, generator=g) * 0.3
    running_var = torch.rand(c, generator=g) + 0.5
    upstream = torch.randn(shape, generator=g)
    tensors = {"x": t(x), "weight": t(weight), "bias": t(bias), "runningMean": t(running_mean),
               "runningVar": t(running_var), "upstream": t(upstream)}

    rm, rv = running_mean.clone(), running_var.clone()
    y = F.batch_norm(x, rm, rv, weight, bias, training=True, momentum=momentum, eps=1e-5)
    dx, dw, db = torch.autograd.grad(y, [x, weight, bias], upstream)
    tensors.update({"trainOutput": t(y), "trainDx": t(dx), "trainDweight": t(dw), "trainDbias": t(db),
                    "updatedRunningMean": t(rm), "updatedRunningVar": t(rv)})

    y = F.batch_norm(x, rm, rv, weight, bias, training=False, momentum=momentum, eps=1e-5)
    dx, dw, db = torch.autograd.grad(y, [x, weight, bias], upstream)
    tensors.update({"evalOutput": t(y), "evalDx": t(dx), "evalDweight": t(dw), "evalDbias": t(db)})
    return {"params": {"momentum": momentum}, "tensors": tensors}


def resample_case(shape, seed, fn, params):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).requires_grad_()
    y = fn(x)
    upstream = torch.randn(y.shape, generator=g)
    (dx,) = torch.autograd.grad(y, [x], upstream)
    return {"params": params, "tensors": {"x": t(x), "output": t(y), "upstream": t(upstream), "dx": t(dx)}}



def write_golden(generator, cases):
    """Prints the fixture of `cases` made by `generator`; one line per list of numbers keeps it short
    and diffable. The golden scripts beside this one share it."""
    text = json.dumps({"generator": generator, "torch": torch.__version__, "cases": cases}, indent=1, sort_keys=True)
    print(re.sub(r"\[\s+([-0-9.,e\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text))


def main():
    cases = {
        "batchNorm4d": batch_norm_case([4, 3, 2, 2], 0.2, 1),
        "batchNorm2d": batch_norm_case([5, 3], 0.1, 2),
        "bilinearUp": resample_case([2, 2, 3, 4], 3,
                                    lambda x: F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=False),
                                    {"height": 5, "width": 7}),
        "bilinearDown": resample_case([1, 2, 5, 6], 4,
                                      lambda x: F.interpolate(x, size=(2, 4), mode="bilinear", align_corners=False),
                                      {"height": 2, "width": 4}),
        "avgPool": resample_case([2, 2, 5, 6], 5,
                                 lambda x: F.avg_pool2d(x, kernel_size=3, stride=2, padding=1),
                                 {"kernel": 3, "stride": 2, "padding": 1}),
        "area": resample_case([1, 2, 4, 6], 6,
                              lambda x: F.interpolate(x, size=(2, 3), mode="area"),
                              {"factor": 2}),
        "nearest": resample_case([1, 2, 2, 3], 7,
                                 lambda x: F.interpolate(x, scale_factor=3, mode="nearest"),
                                 {"factor": 3}),
    }
    write_golden("Scripts/golden/nnops.py", cases)


if __name__ == "__main__":
    main()
