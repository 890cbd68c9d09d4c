"""Writes Fixtures/golden/ops.json: PyTorch's values for checks in Tests/TensorRuntimeTests.

Run from the repository root with a Python that has torch:
    ~/torchref/bin/python Scripts/golden/ops_golden.py
Only deterministic quantities are recorded (fans, gains, default-init bounds, losses and
activations at fixed inputs); random streams differ from ours by design.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn import init


def fans(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(torch.empty(shape))
    return {"shape": list(shape), "fanIn": fan_in, "fanOut": fan_out}


def default_bounds(layer):
    # PyTorch's reset_parameters: kaiming_uniform_(weight, a=sqrt(5)); bias U(+-1/sqrt(fan_in)).
    # The weight bound is recomputed with init's own helpers, as kaiming_uniform_ does.
    w = layer.weight
    fan_in, _ = init._calculate_fan_in_and_fan_out(w)
    gain = init.calculate_gain("leaky_relu", math.sqrt(5))
    weight_bound = math.sqrt(3.0) * gain / math.sqrt(fan_in)
    torch.manual_seed(0)
    layer.reset_parameters()
    return {
        "weightShape": list(w.shape),
        "weightBound": weight_bound,
        "biasBound": 1 / math.sqrt(fan_in),
        "observedWeightMaxAbs": layer.weight.abs().max().item(),
        "observedBiasMaxAbs": layer.bias.abs().max().item(),
    }


def main():
    x = torch.tensor([-200.0, -90.0, -20.0, -3.0, -0.5, 0.0, 0.5, 3.0, 20.0, 90.0, 200.0])
    t = torch.tensor([1.0, 0.0, 0.3, 1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.0, 1.0])
    out = {
        "fans": [fans(s) for s in [(10, 20), (64, 3, 4, 4), (100, 512, 4, 4), (7, 5, 3), (2, 3, 1, 2, 5)]],
        "gains": {
            "linear": init.calculate_gain("linear"),
            "conv2d": init.calculate_gain("conv2d"),
            "sigmoid": init.calculate_gain("sigmoid"),
            "tanh": init.calculate_gain("tanh"),
            "relu": init.calculate_gain("relu"),
            "leakyRelu0.2": init.calculate_gain("leaky_relu", 0.2),
            "leakyReluSqrt5": init.calculate_gain("leaky_relu", math.sqrt(5)),
            "selu": init.calculate_gain("selu"),
        },
        "defaults": [
            default_bounds(torch.nn.Linear(20, 10)),
            default_bounds(torch.nn.Conv2d(3, 64, 4)),
            default_bounds(torch.nn.ConvTranspose2d(100, 512, 4)),
        ],
        "activations": {
            "x": x.tolist(),
            "sigmoid": torch.sigmoid(x).tolist(),
            "tanh": torch.tanh(x).tolist(),
            "leakyRelu0.2": F.leaky_relu(x, 0.2).tolist(),
        },
        "bce": {
            "logits": x.tolist(),
            "targets": t.tolist(),
            "none": F.binary_cross_entropy_with_logits(x, t, reduction="none").tolist(),
            "mean": F.binary_cross_entropy_with_logits(x, t).item(),
        },
        "torchVersion": torch.__version__,
    }
    json.dump(out, sys.stdout if len(sys.argv) < 2 else open(sys.argv[1], "w"), indent=1)


if __name__ == "__main__":
    main()
