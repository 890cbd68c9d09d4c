#!/usr/bin/env bash
# Builds the libFuzzer harnesses (with the address sanitizer) and runs each for a while.
#
#   Scripts/fuzz.sh [seconds-per-harness] [harness ...]
#
# Harnesses: Pipeline SafeTensors IDX CIFAR PNG JPEG WebP HEIF (all by default), 60 s each by default.
# Corpora grow in .build-fuzz/corpus/<harness> across runs, seeded from Fixtures/ (and Fuzz/Seeds/);
# crashes, leaks, timeouts and out-of-memory inputs go to .build-fuzz/artifacts/<harness>/.
# Prints one line per harness: executions, executions per second, coverage (cov, ft), corpus size.
# Exits non-zero when any harness found a problem. The build is always an optimised one: swiftc
# emits no coverage counters for libFuzzer at -Onone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
shift || true
harnesses=("$@")
((${#harnesses[@]})) || harnesses=(Pipeline SafeTensors IDX CIFAR PNG JPEG WebP HEIF)
config=release
scratch=.build-fuzz
export GANFLOW_FUZZ=1
export LSAN_OPTIONS=suppressions=$root/Fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}
mkdir -p "$scratch"

for h in "${harnesses[@]}"; do
    # swiftc keeps only the last -sanitize= it is given, and SwiftPM passes its --sanitize values in
    # no fixed order: with "--sanitize=fuzzer --sanitize=address" a build was as likely to come out
    # without coverage counters (ASan only; libFuzzer then runs blind) as with them. So SwiftPM gets
    # the fuzzer (for linking the harness's entry point) and every compile gets both, last.
    swift build -c "$config" --scratch-path "$scratch" --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --disable-dead-strip --product "Fuzz$h" \
        >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log" >&2; echo "fuzz: building Fuzz$h failed" >&2; exit 1; }
done
bin=$(swift build -c "$config" --scratch-path "$scratch" --show-bin-path 2>/dev/null)

# Seed corpora: the committed fixtures each reader is meant for, plus past findings (Fixtures/fuzz).
seed() {
    local h=$1 corpus=$scratch/corpus/$1
    mkdir -p "$corpus"
    case $h in
    Pipeline)
        # Point the pipelines at the small fixture data, so building one takes milliseconds, not a
        # pass over the 60,000 training images.
        for f in pipelines/*.json Fixtures/pipelines/invalid/*.json; do
            sed -e "s#/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz#$root/Fixtures/idx/t10k-256-images-idx3-ubyte.gz#g" \
                -e "s#/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz#$root/Fixtures/idx/t10k-256-images-idx3-ubyte.gz#g" \
                -e "s#/usr/share/datasets/fashion-mnist/[a-z0-9-]*labels-idx1-ubyte.gz#$root/Fixtures/idx/t10k-256-labels-idx1-ubyte.gz#g" \
                "$f" >"$corpus/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
        done ;;
    SafeTensors) cp Fixtures/golden/*.safetensors "$corpus/" ;;
    IDX) cp Fixtures/idx/* Fixtures/broken/*idx* "$corpus/" ;;
    CIFAR) cp Fuzz/Seeds/CIFAR/* "$corpus/" ;;
    PNG) cp Fixtures/png-types/*.png Fixtures/broken/*.png "$corpus/"
         ls Fixtures/fashion-mnist/Bag/*.png | head -3 | xargs -I{} cp {} "$corpus/" ;;
    JPEG) cp Fixtures/images/*.jpg Fixtures/images/broken/*.jpg "$corpus/" ;;
    WebP) cp Fixtures/images/*.webp Fixtures/images/broken/*.webp "$corpus/" ;;
    HEIF) cp Fixtures/images/*.heic Fixtures/images/*.avif Fixtures/images/broken/*.heic "$corpus/" ;;
    esac
    if [ -d "Fixtures/fuzz/$h" ]; then cp "Fixtures/fuzz/$h"/* "$corpus/"; fi
}

status=0
report=$scratch/report.txt
: >"$report"
for h in "${harnesses[@]}"; do
    seed "$h"
    mkdir -p "$scratch/artifacts/$h"
    extra=()
    [ "$h" = Pipeline ] && extra+=(-dict="$root/Fuzz/pipeline.dict")
    log=$scratch/fuzz-$h.log
    # Pipelines name files relative to pipelines/, so run from there.
    set +e
    (cd pipelines && "$bin/Fuzz$h" "$root/$scratch/corpus/$h" "${extra[@]}" \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=262144 -print_final_stats=1 \
        -artifact_prefix="$root/$scratch/artifacts/$h/") >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    line=$(printf '%-12s %4ss  runs %-9s exec/s %-6s cov %-6s ft %-6s corpus %s' "$h" "$seconds" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
    if [ $rc -ne 0 ]; then
        line+="  FAILED (exit $rc): see $log and $scratch/artifacts/$h/"
        status=1
    fi
    echo "$line" | tee -a "$report"
done
exit $status
