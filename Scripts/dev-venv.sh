#!/usr/bin/env bash
# Creates (once) the Python venv of the development and interop checks: PyTorch (CPU), torchvision,
# tensorboard, jsonschema, safetensors, pytorch-fid, onnx, onnxruntime, Pillow, pillow-heif, numpy. `make test`
# builds it in ~/.cache/ganflow/venv (cached there) for the interop checks (make test-interop). Idempotent: a venv whose
# stamp names the same package list is reused. Usage: Scripts/dev-venv.sh [DIR] (default ~/.cache/ganflow/venv).
# Prints the venv's python on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$HOME/.cache/ganflow/venv}"
# torch is pinned to the CPU build where the machine keeps one (pip's find-links). PyPI's torchvision
# wheels are CUDA builds whose C extension cannot load beside a CPU torch; from 0.17 on, `import
# torchvision` then fails ("operator torchvision::nms does not exist"), while 0.16.2 warns and imports,
# and its Python models (Inception3, which pytorch-fid builds on) are all the checks use. It goes in
# without dependencies, so pip never swaps torch for the CUDA one.
torch_spec="torch==2.13.0"
vision_spec="torchvision==0.16.2"
others=(numpy requests tensorboard jsonschema safetensors onnx onnxruntime Pillow pillow-heif scipy)
# pytorch-fid's own requirements are all above; without --no-deps pip would replace torchvision.
nodeps=(pytorch-fid==0.3.0)
stamp="$torch_spec $vision_spec ${others[*]} ${nodeps[*]}"
if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.ganflow-stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$dir/bin/python"; exit 0
fi
command -v python3 >/dev/null || { echo "dev-venv: python3 is missing" >&2; exit 1; }
python3 -m venv "$dir" >&2 || {
    echo "dev-venv: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$dir/bin/pip" install --quiet --upgrade pip >&2
"$dir/bin/pip" install --quiet "$torch_spec" >&2
"$dir/bin/pip" install --quiet "$torch_spec" "${others[@]}" >&2
"$dir/bin/pip" install --quiet --no-deps "$vision_spec" "${nodeps[@]}" >&2
"$dir/bin/python" -W ignore -c "import torch, torchvision, tensorboard, jsonschema, safetensors, pytorch_fid, onnx, onnxruntime, PIL" >&2
echo "$stamp" > "$dir/.ganflow-stamp"
echo "$dir/bin/python"
