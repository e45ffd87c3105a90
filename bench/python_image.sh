#!/usr/bin/env bash
# The size of the seed's Python image (bench/python-image/Containerfile),
# built with podman as scripts/image-test.sh builds roadsign's, beside
# roadsign's image. No registry here: python:3.10-slim cannot be pulled, so
# the base is the same local Debian base with Debian's Python 3.11.
# Output: bench/results/python_image.txt (raw: layer sizes of both images)
# and python_image.json (both sizes and their ratio: bench/image_sizes.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
say() { printf '[python-image] %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
scratch="${ROADSIGN_IMAGE_SCRATCH:-/var/tmp/roadsign-image}"
# shellcheck source=scripts/podman-lib.sh
source "$root/scripts/podman-lib.sh"
podman_install
podman_configure
base=localhost/debian-minbase-ca:bookworm
local_debian_base "$base"
python_base=localhost/debian-python3:bookworm
if ! podman image exists "$python_base"; then
  printf '%s\n' "FROM $base" \
    'RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*' |
    podman build --quiet --pull=never --network=host -t "$python_base" -f - . >/dev/null
fi
podman image exists localhost/roadsign:test || fail "build roadsign's image first: bash scripts/image-test.sh"
started=$(date +%s)
podman build --pull=never --network=host --format docker --build-arg PYTHON_BASE="$python_base" \
  -t localhost/seed-python:test bench/python-image > target/python-image-build.log 2>&1 ||
  { tail -30 target/python-image-build.log >&2; fail "the build failed"; }
{
  echo "# bash bench/python_image.sh ($(date -u +%Y-%m-%dT%H:%MZ), build $(($(date +%s) - started)) s)"
  for image in localhost/roadsign:test localhost/seed-python:test; do
    echo "## $image: $(podman image inspect --format '{{.Size}}' "$image") bytes uncompressed"
    podman history --format '{{.Size}}	{{.CreatedBy}}' "$image" | cut -c1-150
  done
  echo "## the seed's venv: largest packages"
  podman run --rm localhost/seed-python:test sh -c \
    'du -sm /opt/venv/lib/python3*/site-packages/* | sort -rn | head -15'
} | tee bench/results/python_image.txt
python3 bench/image_sizes.py bench/results/python_image.txt
