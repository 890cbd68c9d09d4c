"""Times `ganflow sample RUN --count N` against PyTorch + Pillow doing the same job, interleaved.

    ~/.cache/ganflow/venv/bin/python Scripts/sample_speed.py RUN_DIR [--count 10000] [--rounds 3] [--ganflow .build/release/ganflow]

The PyTorch side loads the run's generator as `ganflow export` writes it (the same weights, strict
load), generates N images in batches of the run's batch size in training mode (batch statistics,
as GANFlow samples) and saves each with Pillow as an 8-bit PNG: a fresh process each round, like
the ganflow command, so both include start-up and loading. Rounds alternate ganflow, torch,
ganflow, torch... and the script prints each time, each round's ratio and the median ratio as
JSON lines. Output folders are emptied between rounds.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

TORCH_JOB = r"""
import json, os, sys, time
import numpy as np, torch
from PIL import Image
from safetensors.torch import load_file
sys.path.insert(0, sys.argv[1])
from torch_load_check import dcgan_generator, mlp_generator
run, weights, out, count = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
doc = json.load(open(os.path.join(run, "pipeline.json")))
cfg = doc["stages"]["G"]
z_cfg = doc["stages"][cfg["input"].split(".")[0]]
latent, batch = z_cfg["dim"], z_cfg["batch"]
model = dcgan_generator(cfg, latent) if cfg["type"] == "generator.dcgan" else mlp_generator(cfg, latent)
model.load_state_dict(load_file(weights), strict=True)
model.train()
made = 0
with torch.no_grad():
    while made < count:
        z = torch.randn(batch, latent, 1, 1) if cfg["type"] == "generator.dcgan" else torch.randn(batch, latent)
        images = model(z)[: count - made]
        codes = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        for i, im in enumerate(codes):
            Image.fromarray(im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0)).save(os.path.join(out, f"sample-{made + i:05d}.png"))
        made += len(codes)
"""


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ganflow", default=".build/release/ganflow")
    args = ap.parse_args()
    scripts = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "g.safetensors")
        subprocess.run([args.ganflow, "export", args.run, "--stage", "G", "--out", weights], check=True, stdout=subprocess.DEVNULL)
        job = os.path.join(tmp, "torch_job.py")
        with open(job, "w") as f:
            f.write(TORCH_JOB)
        out_g, out_t = os.path.join(tmp, "ganflow"), os.path.join(tmp, "torch")
        ratios = []
        for r in range(args.rounds):
            fresh(out_g)
            g = timed([args.ganflow, "sample", args.run, "--count", str(args.count), "--out", out_g])
            fresh(out_t)
            t = timed([sys.executable, job, scripts, args.run, weights, out_t, str(args.count)])
            n_g, n_t = len(os.listdir(out_g)), len(os.listdir(out_t))
            assert n_g == n_t == args.count, (n_g, n_t)
            ratios.append(g / t)
            print(json.dumps({"round": r + 1, "ganflow_s": round(g, 2), "torch_pil_s": round(t, 2), "ratio": round(g / t, 3)}), flush=True)
        print(json.dumps({"count": args.count, "rounds": args.rounds, "median_ratio": round(statistics.median(ratios), 3),
                          "torch": __import__("torch").__version__, "torch_threads": __import__("torch").get_num_threads()}))


if __name__ == "__main__":
    main()
