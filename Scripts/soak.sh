#!/usr/bin/env bash
# Runs a pipeline for many steps and samples the process's resident memory as it goes.
#
#   Scripts/soak.sh [steps] [pipeline] [run-directory]
#
# Defaults: 10000 steps of pipelines/dcgan-fashion.json into a fresh /tmp folder. Every
# SOAK_EVERY steps (default 100) the RSS is appended to <run-directory>/rss.csv (step, seconds,
# rss_kib); at the end the drift after warm-up (SOAK_WARMUP steps, default 500, or the first
# sample after it) is printed. GANFLOW_THREADS sets the kernel threads. Stop it at any time with
# Ctrl-C: the figures so far are printed. Needs a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-10000}
pipeline=${2:-pipelines/dcgan-fashion.json}
dir=${3:-$(mktemp -d /tmp/ganflow-soak-XXXXXX)}
every=${SOAK_EVERY:-100}
warmup=${SOAK_WARMUP:-500}
bin=${GANFLOW:-.build/release/ganflow}
[ -x "$bin" ] || { echo "soak: $bin not found; run swift build -c release first" >&2; exit 1; }
mkdir -p "$dir"
csv=$dir/rss.csv
echo "step,seconds,rss_kib" >"$csv"

threads=()
[ -n "${GANFLOW_THREADS:-}" ] && threads=(--threads "$GANFLOW_THREADS")
"$bin" run "$pipeline" --out "$dir" --steps "$steps" "${threads[@]}" >"$dir/soak.log" 2>&1 &
pid=$!
start=$(date +%s)

report() {
    awk -F, -v warmup="$warmup" 'NR > 1 {
            n++; step[n] = $1; rss[n] = $3
            if (!base && $1 >= warmup) { base = $3; baseStep = $1 }
            if (base && $3 > peak) peak = $3
        }
        END {
            if (n == 0) { print "soak: no samples"; exit }
            if (!base) { base = rss[1]; baseStep = step[1]; peak = base; print "soak: warm-up not reached; drift measured from the first sample" }
            printf "soak: %d samples up to step %d; RSS %.1f MiB at step %d, %.1f MiB at step %d (drift %+.1f%%), peak after warm-up %.1f MiB\n",
                n, step[n], base / 1024, baseStep, rss[n] / 1024, step[n], 100 * (rss[n] - base) / base, peak / 1024
        }' "$csv"
}
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; report; exit 130' INT TERM

next=$every
while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    # metrics.jsonl gets one line per finished step.
    step=$(tail -n 1 "$dir/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step":\([0-9]*\),.*/\1/p' || true)
    [ -n "$step" ] || continue
    if ((step >= next)); then
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$rss" ] && echo "$step,$(($(date +%s) - start)),$rss" >>"$csv"
        next=$(((step / every + 1) * every))
    fi
done
wait "$pid" || { echo "soak: the run failed; see $dir/soak.log" >&2; tail -3 "$dir/soak.log" >&2; report; exit 1; }
report
