"""Writes Fixtures/golden/tiny.safetensors with PyTorch's safetensors, for SafeTensorsTests.

Run with the reference venv: ~/torchref/bin/python Scripts/golden/safetensors_fixture.py
The values are small exact binary fractions so every dtype holds them without rounding, except
`half.rounded` and `bf16.rounded`, whose expected (rounded) values the test states explicitly.
"""
import pathlib

import torch
from safetensors.torch import save_file

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "Fixtures" / "golden" / "tiny.safetensors"

tensors = {
    "conv.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2) * 0.25 - 3.0,
    "conv.bias": torch.tensor([0.5, -1.5], dtype=torch.float32),
    "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
    "counts": torch.tensor([[-3, 0, 1 << 40]], dtype=torch.int64),
    "half.exact": torch.tensor([1.0, -2.5, 0.0009765625, 65504.0, 2.0**-24, -float("inf")], dtype=torch.float16),
    "half.rounded": torch.tensor([0.1], dtype=torch.float16),
    "bf16.exact": torch.tensor([[1.0, -0.375], [256.0, 3.0e38]], dtype=torch.bfloat16),
    "bf16.rounded": torch.tensor([0.1], dtype=torch.bfloat16),
    "empty": torch.zeros(0, 3, dtype=torch.float32),
}
save_file(tensors, str(out), metadata={"format": "pt", "note": "GANFlow golden fixture"})
for name, t in tensors.items():
    print(name, t.dtype, list(t.shape), t.flatten().tolist())
