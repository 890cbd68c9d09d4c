"""Checks a generator exported by `ganflow export --format onnx` with onnx.checker and onnxruntime.

    ~/.cache/ganflow/venv/bin/python Scripts/onnx_check.py RUN_DIR [--stage G] [--ema] [--truncation PSI] [--ganflow .build/debug/ganflow] [--tolerance 1e-5]

It runs `ganflow export RUN_DIR --stage G --format onnx --out g.onnx --probe probe.safetensors`
(the probe holds latents 'z', for a class-conditional generator their classes 'labels', and the
images GANFlow's exported network makes from them, as one batch), checks the model with onnx.checker (full check, with shape inference), runs it in
onnxruntime on the same latents and prints the largest difference as one JSON line. Exit status
1 when it exceeds --tolerance times the images' scale, the largest magnitude in GANFlow's images
or 1, whichever is larger: tanh outputs (MLP, DCGAN) are within [-1, 1], so the tolerance is
absolute for them, while StyleGAN2's images are unbounded (up to about 7 after a few steps) and
float32 rounding grows with them. Works for any run: MLP, DCGAN, ProGAN, MSG-GAN, StyleGAN2 and
class-conditional generators.
"""
import argparse, json, os, subprocess, sys, tempfile

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--stage", default="G")
    ap.add_argument("--ema", action="store_true")
    ap.add_argument("--ganflow", default=".build/debug/ganflow")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--truncation", type=float, default=1.0, help="psi built into the exported model (ganflow export --truncation)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model_path, probe_path = os.path.join(tmp, "g.onnx"), os.path.join(tmp, "probe.safetensors")
        cmd = [args.ganflow, "export", args.run, "--stage", args.stage, "--format", "onnx", "--out", model_path, "--probe", probe_path]
        cmd += ["--ema"] if args.ema else []
        cmd += ["--truncation", str(args.truncation)] if args.truncation != 1 else []
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        model = onnx.load(model_path)
        onnx.checker.check_model(model, full_check=True)
        probe = load_file(probe_path)
        session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        feeds = {"z": probe["z"]}
        if any(i.name == "labels" for i in session.get_inputs()):  # a class-conditional generator
            feeds["labels"] = probe["labels"].astype(np.int64)
        (out,) = session.run(["images"], feeds)
        size = os.path.getsize(model_path)

    expected = probe["images"]
    diff = float(np.abs(out - expected).max()) if out.shape == expected.shape else float("inf")
    scale = max(1.0, float(np.abs(expected).max()))
    with open(os.path.join(args.run, "pipeline.json")) as f:
        stage_type = json.load(f)["stages"][args.stage]["type"]
    print(json.dumps({"run": args.run, "stage": args.stage, "type": stage_type, "ema": args.ema, "truncation": args.truncation,
                      "opset": model.opset_import[0].version,
                      "nodes": len(model.graph.node), "bytes": size, "shape": list(out.shape), "checker": "ok",
                      "onnxruntime": ort.__version__, "max_abs_diff": diff, "scale": scale}))
    sys.exit(0 if diff <= args.tolerance * scale else 1)


if __name__ == "__main__":
    main()
