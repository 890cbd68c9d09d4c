#!/usr/bin/env bash
# Installs the system packages GANFlow builds and runs with, only those missing. Idempotent.
set -euo pipefail
# libopenmpi-dev and openmpi-bin are for `mpirun -np N ganflow run` (README, Distributed training);
# the build links nothing from MPI: libmpi is opened at run time only under mpirun.
# libturbojpeg0-dev, libwebp-dev and libheif-dev (HEIC and AVIF) decode photos; libzip-dev reads
# image archives and .npz files; liblapack-dev gives the symmetric eigensolver of FID at 2048
# dimensions. python3-jsonschema (Debian's /usr/bin/python3) checks the pipelines against the
# generated schema, and chromium loads report.html in the browser test: both are part of `make test`.
packages=(libdnnl-dev libpng-dev zlib1g-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin
          libturbojpeg0-dev libwebp-dev libheif-dev libzip-dev liblapack-dev python3-jsonschema chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y "${missing[@]}"
fi
command -v swift >/dev/null || { echo "setup: swift (6.x) is not on PATH; install the Swift toolchain first" >&2; exit 1; }
