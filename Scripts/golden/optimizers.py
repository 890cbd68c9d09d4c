"""Records PyTorch optimizer trajectories for OptimizerTests: Fixtures/golden/optimizers.json.

Run with the reference venv: ~/torchref/bin/python Scripts/golden/optimizers.py
Two parameters ("layer.weight" [2, 3], "layer.bias" [3]) start from fixed values; every case
applies the same five recorded gradients and records the parameters after each step, plus the
learning rate used at each step (a StepLR schedule in one case).
"""
import json
import pathlib

import torch

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "Fixtures" / "golden" / "optimizers.json"

STEPS = 5
gen = torch.Generator().manual_seed(20240601)
initial = {
    "layer.weight": torch.randn(2, 3, generator=gen) * 0.5 + 1.0,
    "layer.bias": torch.randn(3, generator=gen) * 0.5 - 1.0,
}
# Gradients grow and shrink across steps so bias correction and momentum both show.
scales = [1.0, 0.1, 3.0, 0.5, 1.0]
gradients = [
    {name: torch.randn(t.shape, generator=gen) * s for name, t in initial.items()} for s in scales
]
gradients[1]["layer.bias"][1] = 0.0

cases = [
    ("sgd", "sgd", {"lr": 0.1}, None),
    ("sgd_momentum_dampening_decay", "sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}, None),
    ("sgd_nesterov", "sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.001}, None),
    ("adam", "adam", {"lr": 1e-3}, None),
    ("adam_gan_decay", "adam", {"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-6, "weight_decay": 0.01}, None),
    ("adam_beta1_zero_step_lr", "adam", {"lr": 1e-2, "betas": (0.0, 0.99)}, {"step_size": 2, "gamma": 0.5}),
    ("adamw", "adamw", {"lr": 1e-3, "weight_decay": 0.01}, None),
    ("adamw_large_decay", "adamw", {"lr": 5e-3, "betas": (0.5, 0.9), "eps": 1e-5, "weight_decay": 0.5}, None),
    ("rmsprop", "rmsprop", {"lr": 1e-2}, None),
    ("rmsprop_centered_momentum_decay", "rmsprop", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "momentum": 0.9, "centered": True, "weight_decay": 0.01}, None),
    ("rmsprop_centered", "rmsprop", {"lr": 5e-3, "centered": True}, None),
    ("rmsprop_momentum", "rmsprop", {"lr": 5e-3, "momentum": 0.5}, None),
]
classes = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop}


def flat(t):
    return [float(x) for x in t.detach().flatten().tolist()]


records = []
for name, kind, options, schedule in cases:
    params = {n: t.clone().requires_grad_(True) for n, t in initial.items()}
    opt = classes[kind](list(params.values()), foreach=False, **options)
    sched = torch.optim.lr_scheduler.StepLR(opt, **schedule) if schedule else None
    steps, rates = [], []
    for g in gradients:
        for n, p in params.items():
            p.grad = g[n].clone()
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched:
            sched.step()
        steps.append([flat(p) for p in params.values()])
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    records.append({
        "name": name, "optimizer": kind, "options": options,
        "stepLR": schedule and {"stepSize": schedule["step_size"], "gamma": schedule["gamma"]},
        "learningRates": rates, "parameters": steps,
    })

document = {
    "torch": torch.__version__,
    "names": list(initial),
    "shapes": [list(t.shape) for t in initial.values()],
    "initial": [flat(t) for t in initial.values()],
    "gradients": [[flat(g[n]) for n in initial] for g in gradients],
    "cases": records,
}
out.write_text(json.dumps(document, indent=1) + "\n")
print(f"wrote {out} ({len(records)} cases, torch {torch.__version__})")
