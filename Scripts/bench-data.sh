#!/usr/bin/env bash
# Decode + resize throughput (images/s) of a folder of photos served at 64x64, side by side in one
# run: GANFlow's dataset.images on the JPEG folder, dataset.prepared on the file prepared from it,
# and PIL + torchvision's ImageFolder through a DataLoader with 2 workers. Rounds are interleaved
# (A B C A B C ...) and the medians of the per-round ratios are printed.
#
#   Scripts/bench-data.sh [rounds] [python] [jpg|heic]   (python: one with Pillow, torch and torchvision,
#                                                         and pillow-heif for heic)
#
# Needs a release build (swift build -c release). The photos (500 JPEGs of 1024x768, about 110 kB
# each, or the same as HEIC) are made once in .build/bench-photos (.build/bench-photos-heic) by
# Scripts/bench_data.py from Fixtures/photos/content.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
python=${2:-$HOME/.cache/ganflow/venv/bin/python}
format=${3:-jpg}
bin=.build/release/ganflow
dir=.build/bench-photos
[ "$format" = jpg ] || dir=.build/bench-photos-$format
images=448   # 7 batches of 64, below the 500 files: no epoch boundary inside a timed part
[ -x "$bin" ] || { echo "bench-data: build first: swift build -c release" >&2; exit 1; }
if [ ! -f "$dir/photos/IMG_0499.$format" ]; then
    "$python" Scripts/bench_data.py photos "$dir" 500 --format "$format"
fi
"$bin" dataset prepare "$dir" --size 64 --no-labels --out "$dir.gfd" --quiet >/dev/null
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /CPU: /'
echo "cores: $(nproc); photos: $(ls "$dir/photos" | wc -l) $format files, $(du -sh "$dir/photos" | cut -f1)"
folder=() prepared=() torch=()
for r in $(seq "$rounds"); do
    a=$("$bin" dataset bench "$dir" --size 64 --batch 64 --images $images --json | sed 's/.*"imagesPerSecond": \([0-9.]*\).*/\1/')
    b=$("$bin" dataset bench "$dir.gfd" --batch 64 --images 4480 --json | sed 's/.*"imagesPerSecond": \([0-9.]*\).*/\1/')
    c=$("$python" -W ignore Scripts/bench_data.py torch "$dir" 64 64 2 $images)
    printf 'round %d: dataset.images %8.1f  dataset.prepared %10.1f  torchvision %7.1f images/s\n' "$r" "$a" "$b" "$c"
    folder+=("$a") prepared+=("$b") torch+=("$c")
done
"$python" - "${folder[*]}" "${prepared[*]}" "${torch[*]}" <<'PY'
import statistics, sys
f, p, t = ([float(x) for x in s.split()] for s in sys.argv[1:4])
print(f"median images/s: dataset.images {statistics.median(f):.1f}, dataset.prepared {statistics.median(p):.1f}, torchvision {statistics.median(t):.1f}")
print(f"median of ratios: folder/torchvision {statistics.median(a / c for a, c in zip(f, t)):.2f}x, "
      f"prepared/torchvision {statistics.median(b / c for b, c in zip(p, t)):.1f}x")
PY
