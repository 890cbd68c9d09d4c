#!/usr/bin/env bash
# Per-step time of DCGAN-32 (pytorch/examples' widths, global batch 64) on 1 process and on 2
# mpirun ranks, interleaved A B A B (this machine's speed drifts), with synchronized batch norm.
# Usage: Scripts/mpi-overhead.sh [rounds] [steps]   (needs a release build: swift build -c release)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-30}
bin=.build/release/ganflow
pipeline=Fixtures/pipelines/distributed/dcgan32-sync.json
sets=(--set data.batch=64 --set z.batch=64 --set z.dim=100 --set G.width=64 --set D.width=64
      --set checkpoint.every=100000 --set steps="$steps")
out=$(mktemp -d)
# Seconds per step after the first 5 (warm-up), from metrics.jsonl.
per_step() { awk -F'"time":' -v skip=5 'NR==skip {split($2,a,/[,}]/); t0=a[1]} END {split($2,a,/[,}]/); printf "%.1f", (a[1]-t0)/(NR-skip)*1000}' "$1/metrics.jsonl"; }
for r in $(seq 1 "$rounds"); do
    "$bin" run "$pipeline" "${sets[@]}" --out "$out/one-$r" --threads 1 --no-tensorboard >/dev/null 2>&1
    mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" run "$pipeline" "${sets[@]}" --out "$out/two-$r" \
        --threads 1 --no-tensorboard > "$out/two-$r.log" 2>&1
    echo "round $r: 1 process $(per_step "$out/one-$r") ms/step, 2 ranks $(per_step "$out/two-$r") ms/step"
    grep "exposed" "$out/two-$r.log" | sed 's/^/    /'
done
rm -rf "$out"
