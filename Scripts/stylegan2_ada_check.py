"""Loads a `ganflow export --stage G [--ema] --probe` of a generator.stylegan2 into NVlabs'
stylegan2-ada-pytorch `Generator` with strict=True and compares its images with GANFlow's; with
--discriminator, the same for a `ganflow export --stage D --probe` of a discriminator.stylegan2 and
its scores.

GANFlow does not ship or download that code: point --ada at a checkout of
https://github.com/NVlabs/stylegan2-ada-pytorch (its torch_utils/ and training/ are enough; the
reference upfirdn2d runs on the CPU). Pass the generator's keys as in the pipeline, e.g. for
pipelines/stylegan2-fashion.json:

    ganflow export runs/stylegan2-fashion --stage G --ema --out G.safetensors --probe probe.safetensors
    python Scripts/stylegan2_ada_check.py --ada ~/stylegan2-ada-pytorch G.safetensors probe.safetensors \
        --z-dim 128 --w-dim 128 --resolution 32 --channels 1 --mapping-layers 4 --channel-base 512 --channel-max 128 \
        [--discriminator D.safetensors D-probe.safetensors --group-size 4]

For pipelines/stylegan2-cond-fashion.json add --classes 10 (c_dim; the probes hold the labels).

Exit status 0 when every state_dict loads strictly and the images (and scores) agree within
--tolerance.
"""
import argparse
import sys
import warnings

import torch
from safetensors.torch import load_file

parser = argparse.ArgumentParser()
parser.add_argument("weights")
parser.add_argument("probe")
parser.add_argument("--ada", required=True, help="a stylegan2-ada-pytorch checkout")
parser.add_argument("--z-dim", type=int, required=True)
parser.add_argument("--w-dim", type=int, required=True)
parser.add_argument("--resolution", type=int, required=True)
parser.add_argument("--channels", type=int, default=1)
parser.add_argument("--mapping-layers", type=int, default=8)
parser.add_argument("--channel-base", type=int, default=32768)
parser.add_argument("--channel-max", type=int, default=512)
parser.add_argument("--discriminator", nargs=2, metavar=("WEIGHTS", "PROBE"),
                    help="also load a `ganflow export --stage D --probe PROBE` strictly and compare its scores")
parser.add_argument("--group-size", type=int, default=4, help="the discriminator's minibatch stddev group size (groupSize)")
parser.add_argument("--d-architecture", choices=["resnet", "orig"], default="resnet", help="the discriminator's blocks (architecture)")
parser.add_argument("--classes", type=int, default=0,
                    help="a class-conditional pair's classes (conditioning concat / projection): c_dim, the probes' labels one-hot")
parser.add_argument("--d-mapping-layers", type=int, default=8, help="a conditional discriminator's mappingLayers")
parser.add_argument("--tolerance", type=float, default=1e-4)
args = parser.parse_args()

warnings.filterwarnings("ignore")
sys.path.insert(0, args.ada)
from training import networks  # noqa: E402

def one_hot(probe):
    """The probe's class labels as stylegan2-ada-pytorch's c, or None for an unconditional network."""
    if args.classes == 0:
        return None
    return torch.nn.functional.one_hot(probe["labels"].long(), args.classes).float()


G = networks.Generator(args.z_dim, args.classes, args.w_dim, args.resolution, args.channels,
                       mapping_kwargs={"num_layers": args.mapping_layers},
                       synthesis_kwargs={"channel_base": args.channel_base, "channel_max": args.channel_max}).eval()
G.load_state_dict(load_file(args.weights), strict=True)
probe = load_file(args.probe)
z = probe["z"].reshape(probe["z"].shape[0], -1)
with torch.no_grad():
    images = G(z, one_hot(probe), noise_mode="const")
difference = (images - probe["images"]).abs().max().item()
print(f"Generator: loaded {args.weights} with strict=True; largest |PyTorch - GANFlow| over {len(z)} images: {difference:.3g}")
worst = difference
if args.discriminator:
    weights, probe_file = args.discriminator
    D = networks.Discriminator(args.classes, args.resolution, args.channels, channel_base=args.channel_base, channel_max=args.channel_max,
                               architecture=args.d_architecture, epilogue_kwargs={"mbstd_group_size": args.group_size},
                               mapping_kwargs={"num_layers": args.d_mapping_layers}).eval()
    D.load_state_dict(load_file(weights), strict=True)
    d_probe = load_file(probe_file)
    with torch.no_grad():
        scores = D(d_probe["images"], one_hot(d_probe)).reshape(-1)
    ganflow_scores = d_probe["scores"].reshape(-1)
    # Scores are sums over many features; compare them relative to their own scale.
    d_difference = ((scores - ganflow_scores).abs().max() / ganflow_scores.abs().max().clamp(min=1)).item()
    print(f"Discriminator: loaded {weights} with strict=True; largest |PyTorch - GANFlow| over {len(scores)} scores "
          f"(relative to the largest score, {ganflow_scores.abs().max().item():.3g}): {d_difference:.3g}")
    worst = max(worst, d_difference)
sys.exit(0 if worst <= args.tolerance else 1)
