#!/usr/bin/env bash
# 64x64 RGB at equal wall-clock on a JPEG photo set: dcgan64-rgb, progan-rgb64, msggan-rgb64 and
# stylegan2-rgb64 (or the ones named), each trained for the same time on the same photos, then
# 10,000 samples of each scored in the feature space of a classifier trained on those photos.
#
#   Scripts/photo-compare.sh [minutes] [dir] [python] [variants] [images]
#       minutes: wall-clock per variant (default 20); dir: work folder (default runs/photo-compare);
#       python: one with Pillow (default the venv of Scripts/dev-venv.sh); variants: the shipped
#       pipelines to train, comma-separated (default dcgan64-rgb,progan-rgb64,msggan-rgb64,stylegan2-rgb64);
#       images: train the pipelines on this many crops of their own, drawn with --seed 2 (a small set,
#       as README's session 39 used 500), instead of the 6,000 the classifier learns from
#
# Steps (each skipped when its output exists, so an interrupted run picks up where it stopped):
#   1. Scripts/bench_data.py photos --classes: 6,000 training and 2,000 held-out 1024x768 JPEGs, crops
#      of Fixtures/photos/content, in 24 class folders (source photo x quarter of the crop centres x
#      mirrored); `ganflow dataset prepare` decodes each set once into a 64x64 .gfd.
#   2. A classifier.cnn trained on the training crops' 24 classes (3,000 steps), scored on the held-out
#      ones, exported: the feature network of the metrics (as the Fashion-MNIST classifier is for the
#      32x32 comparisons). Locating a crop in its photo takes more than its colours.
#   3. The shipped pipelines with the data set to the prepared photos and a metric stage added (FID and
#      class coverage on 1,024 samples against the held-out crops), run by `ganflow compare
#      --time-limit`.
#   4. `ganflow sample` (10,000, the moving average and the raw weights) and `ganflow score` of each
#      final checkpoint against the 2,000 held-out crops.
# Needs a release build (swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-20}
dir=${2:-runs/photo-compare}
python=${3:-$HOME/.cache/ganflow/venv/bin/python}
variants=${4:-dcgan64-rgb,progan-rgb64,msggan-rgb64,stylegan2-rgb64}
images=${5:-}
[[ -z $images || $images =~ ^[1-9][0-9]*$ ]] || { echo "photo-compare: images (the fifth argument) must be a count of crops, got '$images'" >&2; exit 1; }
bin=$PWD/.build/release/ganflow
[ -x "$bin" ] || { echo "photo-compare: build first: swift build -c release" >&2; exit 1; }
mkdir -p "$dir"
root=$PWD
cd "$dir"

# 1. The photos.
[ -d train ] || "$python" "$root/Scripts/bench_data.py" photos train 6000 --classes
[ -d test ] || "$python" "$root/Scripts/bench_data.py" photos test 2000 --classes --seed 1
[ -f train64.gfd ] || "$bin" dataset prepare train --size 64 --out train64.gfd --quiet
[ -f test64.gfd ] || "$bin" dataset prepare test --size 64 --out test64.gfd --quiet
gan_data=train64.gfd
if [ -n "$images" ]; then
    gan_data=train$images-64.gfd
    [ -d train$images ] || "$python" "$root/Scripts/bench_data.py" photos train$images "$images" --classes --seed 2
    [ -f $gan_data ] || "$bin" dataset prepare train$images --size 64 --out $gan_data --quiet
fi

# The held-out crops as 64x64 PNGs, exactly as the pipelines see them: the reference of the scores.
if [ ! -d reference ]; then
    cat > reference.json <<'JSON'
{ "name": "reference", "seed": 0, "steps": 1,
  "stages": { "data": { "type": "dataset.prepared", "path": "test64.gfd", "batch": 2000, "shuffle": false, "prefetch": 0 },
              "out": { "type": "sink.images", "input": "data.images", "folder": "images" } },
  "schedule": [ { "run": "out" } ] }
JSON
    "$bin" run reference.json --out reference >/dev/null
fi

# 2. The classifier.
if [ ! -f photo-classifier.safetensors ]; then
    cat > classifier-photos.json <<'JSON'
{
  "name": "classifier-photos",
  "description": "classifier-fashion.json's classifier.cnn on the 64x64 photo crops: 24 classes (source photo, quarter of the crop centres, mirrored or not).",
  "seed": 0,
  "steps": 3000,
  "checkpoint": { "every": 1000, "keep": 1 },
  "log": { "every": 100 },
  "stages": {
    "data": { "type": "dataset.prepared", "path": "train64.gfd", "batch": 64, "shuffle": true },
    "test": { "type": "dataset.prepared", "path": "test64.gfd", "shuffle": false, "prefetch": 0 },
    "C": { "type": "classifier.cnn", "input": "data.images", "classes": 24, "width": 32, "hidden": 128 },
    "loss": { "type": "loss.crossentropy", "logits": "C.logits", "labels": "data.labels" },
    "opt": { "type": "optimizer.adam", "minimize": "loss.loss", "parameters": "C", "lr": 0.001, "betas": [0.9, 0.999],
             "schedule": { "type": "step", "stepSize": 2000, "gamma": 0.2 } },
    "accuracy": { "type": "metric.accuracy", "classifier": "C", "data": "test", "every": 500 }
  },
  "schedule": [ { "run": "opt" } ]
}
JSON
    "$bin" run classifier-photos.json --out classifier --resume
    "$bin" export classifier --stage C --out photo-classifier.safetensors
fi

# 3. The variants, trained for the same wall-clock.
python3 - "$root/pipelines" "$variants" "$gan_data" <<'PY'
import json, sys
for name in sys.argv[2].split(","):
    p = json.load(open(f"{sys.argv[1]}/{name}.json"))
    p.pop("$schema", None)
    stages = p["stages"]
    data = stages["data"]
    data["type"], data["path"] = "dataset.prepared", sys.argv[3]
    data.pop("size", None), data.pop("channels", None)
    every = 250 if "dcgan" in name else 100
    stages["test"] = {"type": "dataset.prepared", "path": "test64.gfd", "shuffle": False, "prefetch": 0}
    stages["features"] = {"type": "features.classifier", "weights": "photo-classifier.safetensors",
                          "generator": "G", "reference": "test", "count": 1024, "size": 64}
    stages["fid"] = {"type": "metric.fid", "real": "features.real", "fake": "features.fake", "every": every}
    stages["modes"] = {"type": "metric.modes", "logits": "features.fakeLogits", "every": every}
    json.dump(p, open(f"{name}.json", "w"), indent=1)
PY
IFS=, read -ra names <<< "$variants"
# One pipeline alone is one file with one variant of no overrides (compare takes two files or more).
one=(); [ ${#names[@]} -eq 1 ] && one=(--variant "${names[0]}:")
# A comparison cut short is begun again (its variants had unequal time); compare refuses a folder
# that holds runs.
if [ ! -f compare/compare.html ]; then
    rm -rf compare
    "$bin" compare "${names[@]/%/.json}" "${one[@]}" --steps 1000000 --time-limit "${minutes}m" --out compare
fi

# 4. 10,000 samples of each, scored against the held-out crops; first, as the floor, 2,000 training
#    crops (one shuffled batch, as the pipelines see them) against the same held-out crops.
if [ ! -d floor ]; then
    sed 's/test64.gfd/train64.gfd/; s/"shuffle": false/"shuffle": true/' reference.json > floor.json
    "$bin" run floor.json --out floor >/dev/null
fi
printf 'training crops (floor): '
"$bin" score floor/images --reference reference/images --classifier photo-classifier.safetensors --size 64 --json
for run in compare/*/; do
    name=$(basename "$run")
    for kind in ema raw; do
        out=samples-$name-$kind
        raw=(); [ $kind = raw ] && raw=(--raw)
        [ -d "$out" ] || "$bin" sample "$run" --count 10000 --out "$out" "${raw[@]}" >/dev/null
        printf '%s %s: ' "$name" "$kind"
        "$bin" score "$out" --reference reference/images --classifier photo-classifier.safetensors --size 64 --json
    done
done
