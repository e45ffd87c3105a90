#!/usr/bin/env bash
# Compile-checks the c10d shim's NCCL branch (the `nccl` cargo feature) where
# no CUDA libtorch is installed: the shim is type-checked (g++ -fsyntax-only)
# against the project's libtorch headers and the real CUDA 12.9 and NCCL
# headers from NVIDIA's PyPI wheels (downloaded once into .deps/cuda-headers,
# about 1 GB of wheels, headers kept). Nothing is linked or run: that needs a
# CUDA libtorch and a GPU. Not part of `make test` (it downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.deps/cuda-headers
if [ ! -f "$dir/.installed-v1" ]; then
  rm -rf "$dir" && mkdir -p "$dir/wheels"
  python3 -m pip download --quiet --no-deps -d "$dir/wheels" \
    nvidia-nccl-cu12==2.32.3 nvidia-cuda-runtime-cu12==12.9.79 nvidia-cuda-nvcc-cu12==12.9.86 \
    nvidia-cuda-cccl-cu12==12.9.27 nvidia-cusparse-cu12==12.5.10.65 nvidia-cublas-cu12==12.9.3.13 \
    nvidia-cusolver-cu12==11.7.5.82
  python3 - "$dir" <<'PY'
import glob, sys, zipfile
for wheel in glob.glob(f"{sys.argv[1]}/wheels/*.whl"):
    z = zipfile.ZipFile(wheel)
    z.extractall(sys.argv[1], [n for n in z.namelist() if "/include/" in n])
PY
  rm -rf "$dir/wheels"
  touch "$dir/.installed-v1"
fi
includes=()
for d in "$dir"/nvidia/*/include; do includes+=(-I"$d"); done
libtorch=.deps/libtorch/include
g++ -std=c++17 -fsyntax-only -w -D_GLIBCXX_USE_CXX11_ABI=1 -DGLOG_USE_GLOG_EXPORT -DUSE_C10D_GLOO \
  -DUSE_C10D_NCCL -DROADSIGN_C10D_NCCL -DUSE_CUDA -I"$libtorch" -I"$libtorch/torch/csrc/api/include" \
  "${includes[@]}" c10d/src/shim.cpp
echo "[check-nccl-shim] c10d/src/shim.cpp compiles with ProcessGroupNCCL (not linked, not run)"
