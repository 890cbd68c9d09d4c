#!/usr/bin/env bash
# Kills a training run with SIGKILL at random moments, over and over, and checks after every kill
# that the newest checkpoint on disk loads and that `--resume` carries on from it.
#
#   Scripts/killtest.sh [kills] [run-directory]
#
# The pipeline (Fixtures/pipelines/faults/killtest.json) checkpoints every other step (24 MB each)
# and writes a sample grid every third, so many kills land inside a write. After each kill:
#   - the newest step-*.safetensors is noted (a kill mid-write leaves only a hidden temporary file);
#   - `ganflow run --resume --steps <newest + 1>` must say it resumes from exactly that file (no
#     fall-back, nothing unreadable), run one step and exit 0, and summary.json must say so.
# Prints a tally at the end; exits non-zero at the first failed check. Needs a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-50}
dir=${2:-$(mktemp -d /tmp/ganflow-killtest-XXXXXX)}
bin=${GANFLOW:-.build/release/ganflow}
pipeline=Fixtures/pipelines/faults/killtest.json
[ -x "$bin" ] || { echo "killtest: $bin not found; run swift build -c release first" >&2; exit 1; }
run=(--out "$dir" --threads 1 --no-tensorboard)
log=$dir.log
: >"$log"
fail() { echo "killtest: kill $i: $*" >&2; echo "killtest: logs in $log" >&2; exit 1; }
newest() { ls "$dir"/checkpoints/step-*.safetensors 2>/dev/null | tail -1; }

midwrite=0 verified=0 fresh=0
for ((i = 1; i <= kills; i++)); do
    "$bin" run "$pipeline" "${run[@]}" --resume --steps 1000000 >>"$log" 2>&1 &
    pid=$!
    # 0.3 to 3.3 s: from building the pipeline (before any write) to several checkpoints in.
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", 0.3 + 3 * r / 32768 }')"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if compgen -G "$dir/checkpoints/.step-*.tmp-*" >/dev/null || compgen -G "$dir/samples/.*.tmp-*" >/dev/null; then
        midwrite=$((midwrite + 1))
    fi

    latest=$(newest)
    if [ -n "$latest" ]; then
        step=$((10#$(basename "$latest" .safetensors | sed 's/step-//')))
    else
        step=0
        fresh=$((fresh + 1))
    fi
    out=$("$bin" run "$pipeline" "${run[@]}" --resume --steps $((step + 1)) 2>&1) || { echo "$out" >>"$log"; fail "resume after the kill failed"; }
    echo "$out" >>"$log"
    if [ -n "$latest" ]; then
        grep -q "resuming from $latest at step $step" <<<"$out" || fail "did not resume from $latest"
    fi
    if grep -qiE "unreadable|fell back" <<<"$out"; then fail "a checkpoint was unreadable after the kill"; fi
    grep -q "\"lastStep\" *: *$((step + 1))" "$dir/summary.json" || fail "summary.json does not end at step $((step + 1))"
    [ "$(newest)" = "$dir/checkpoints/$(printf 'step-%08d.safetensors' $((step + 1)))" ] || fail "no checkpoint for step $((step + 1))"
    verified=$((verified + 1))
    printf "kill %3d: newest checkpoint step %5d, resumed to %5d\n" "$i" "$step" "$((step + 1))"
done
leftovers=$(find "$dir" -name '.*.tmp-*' | wc -l)
echo "killtest: $kills kills, $verified resumes verified, $midwrite kills left a partly written file behind (the newest complete checkpoint was used every time), $fresh before the first checkpoint; $leftovers temporary files left at the end; run directory $dir"
