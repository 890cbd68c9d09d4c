#!/usr/bin/env python3
"""Converts pytorch-fid's FID Inception weights to the safetensors file `features.inception` reads.

    python Scripts/convert_fid_inception.py pt_inception-2015-12-05-6726825d.pth fid-inception.safetensors

IN is pytorch-fid's `pt_inception-2015-12-05-*.pth`, a plain `state_dict` of torchvision's
Inception3 with pytorch-fid's FID blocks (1008 classes, no auxiliary classifier); the user brings
it (GANFlow ships no weights and downloads nothing). Every convolution, batch-norm and `fc` tensor
is checked against the architecture's names and shapes before anything is written, and a missing
or misshapen tensor is reported by name; `num_batches_tracked` counters are dropped. Tensors are
written as float32, little-endian, in safetensors' layout.

Needs torch (to read the pickle); `Scripts/dev-venv.sh` makes a venv with it. A reduced-width
network (every channel count divided by 2, 4, 8 or 16, as the golden fixture uses) converts too.
"""
import json
import struct
import sys


def expected_shapes(divisor=1, classes=1008):
    """name -> shape of every tensor of the FID Inception, as GANFlow's FIDInception reads them."""
    def c(n):
        return n // divisor
    shapes = {}

    def conv(name, i, o, kh, kw=None):
        kw = kh if kw is None else kw
        shapes[f"{name}.conv.weight"] = [o, i, kh, kw]
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{p}"] = [o]
    conv("Conv2d_1a_3x3", 3, c(32), 3)
    conv("Conv2d_2a_3x3", c(32), c(32), 3)
    conv("Conv2d_2b_3x3", c(32), c(64), 3)
    conv("Conv2d_3b_1x1", c(64), c(80), 1)
    conv("Conv2d_4a_3x3", c(80), c(192), 3)
    for name, i, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        conv(f"{name}.branch1x1", c(i), c(64), 1)
        conv(f"{name}.branch5x5_1", c(i), c(48), 1)
        conv(f"{name}.branch5x5_2", c(48), c(64), 5)
        conv(f"{name}.branch3x3dbl_1", c(i), c(64), 1)
        conv(f"{name}.branch3x3dbl_2", c(64), c(96), 3)
        conv(f"{name}.branch3x3dbl_3", c(96), c(96), 3)
        conv(f"{name}.branch_pool", c(i), c(pool), 1)
    conv("Mixed_6a.branch3x3", c(288), c(384), 3)
    conv("Mixed_6a.branch3x3dbl_1", c(288), c(64), 1)
    conv("Mixed_6a.branch3x3dbl_2", c(64), c(96), 3)
    conv("Mixed_6a.branch3x3dbl_3", c(96), c(96), 3)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        conv(f"{name}.branch1x1", c(768), c(192), 1)
        conv(f"{name}.branch7x7_1", c(768), c(c7), 1)
        conv(f"{name}.branch7x7_2", c(c7), c(c7), 1, 7)
        conv(f"{name}.branch7x7_3", c(c7), c(192), 7, 1)
        conv(f"{name}.branch7x7dbl_1", c(768), c(c7), 1)
        conv(f"{name}.branch7x7dbl_2", c(c7), c(c7), 7, 1)
        conv(f"{name}.branch7x7dbl_3", c(c7), c(c7), 1, 7)
        conv(f"{name}.branch7x7dbl_4", c(c7), c(c7), 7, 1)
        conv(f"{name}.branch7x7dbl_5", c(c7), c(192), 1, 7)
        conv(f"{name}.branch_pool", c(768), c(192), 1)
    conv("Mixed_7a.branch3x3_1", c(768), c(192), 1)
    conv("Mixed_7a.branch3x3_2", c(192), c(320), 3)
    conv("Mixed_7a.branch7x7x3_1", c(768), c(192), 1)
    conv("Mixed_7a.branch7x7x3_2", c(192), c(192), 1, 7)
    conv("Mixed_7a.branch7x7x3_3", c(192), c(192), 7, 1)
    conv("Mixed_7a.branch7x7x3_4", c(192), c(192), 3)
    for name, i in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        conv(f"{name}.branch1x1", c(i), c(320), 1)
        conv(f"{name}.branch3x3_1", c(i), c(384), 1)
        conv(f"{name}.branch3x3_2a", c(384), c(384), 1, 3)
        conv(f"{name}.branch3x3_2b", c(384), c(384), 3, 1)
        conv(f"{name}.branch3x3dbl_1", c(i), c(448), 1)
        conv(f"{name}.branch3x3dbl_2", c(448), c(384), 3)
        conv(f"{name}.branch3x3dbl_3a", c(384), c(384), 1, 3)
        conv(f"{name}.branch3x3dbl_3b", c(384), c(384), 3, 1)
        conv(f"{name}.branch_pool", c(i), c(192), 1)
    shapes["fc.weight"] = [classes, c(2048)]
    shapes["fc.bias"] = [classes]
    return shapes


def check(state_dict, source):
    """The tensors to write, in the architecture's order; exits naming the first problem."""
    first = state_dict.get("Conv2d_1a_3x3.conv.weight")
    if first is None:
        sys.exit(f"{source}: no tensor 'Conv2d_1a_3x3.conv.weight': not pytorch-fid's FID Inception state_dict")
    out = first.shape[0]
    if out == 0 or 32 % out or 32 // out not in (1, 2, 4, 8, 16):
        sys.exit(f"{source}: tensor 'Conv2d_1a_3x3.conv.weight' has shape {list(first.shape)}, expected [32, 3, 3, 3]")
    fc = state_dict.get("fc.weight")
    classes = fc.shape[0] if fc is not None and fc.dim() == 2 else 1008
    tensors = {}
    for name, shape in expected_shapes(32 // out, classes).items():
        t = state_dict.get(name)
        if t is None:
            sys.exit(f"{source}: no tensor '{name}' (expected shape {shape})")
        if list(t.shape) != shape:
            sys.exit(f"{source}: tensor '{name}' has shape {list(t.shape)}, expected {shape}")
        tensors[name] = t
    return tensors


def write_safetensors(tensors, path, metadata=None):
    """float32 tensors (name -> torch tensor) in safetensors' layout: u64 header size, JSON header, data."""
    import numpy as np
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = t.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: convert_fid_inception.py IN.pth OUT.safetensors")
    import torch
    source, target = argv[1], argv[2]
    try:
        state_dict = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as e:  # a missing file, a truncated or foreign pickle
        sys.exit(f"{source}: cannot read a PyTorch state_dict: {e}")
    if not isinstance(state_dict, dict):
        sys.exit(f"{source}: expected a state_dict (a dict of tensors), found {type(state_dict).__name__}")
    tensors = check(state_dict, source)
    write_safetensors(tensors, target, {"format": "pt", "source": "pytorch-fid FID Inception"})
    print(f"{target}: {len(tensors)} tensors, {sum(t.numel() for t in tensors.values()):,} parameters")


if __name__ == "__main__":
    main(sys.argv)
