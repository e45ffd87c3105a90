#!/usr/bin/env bash
# Installs what building and testing roadsign needs. Idempotent: each step
# checks first, so a second run takes a second or two.
set -euo pipefail

say() { printf '[install] %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo not found: install the Rust toolchain with rustup first"; exit 1
fi

# Debian packages: ffmpeg (video clips); Tesseract 5 with its headers,
# Leptonica and libclang (leptess's bindings), English and French data (OCR);
# Chromium and its WebDriver (the GUI's end-to-end test).
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v patchelf >/dev/null 2>&1 || missing+=(patchelf)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
for pkg in libtesseract-dev libleptonica-dev libclang-dev libturbojpeg0-dev libgloo-dev tesseract-ocr-eng \
  tesseract-ocr-fra chromium chromium-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# libtorch 2.13 (CPU) for tch, unpacked into .deps/libtorch.
bash "$(dirname "$0")/install-libtorch.sh"

# A real S3-compatible server for the object-store tests: moto's server.
deps="$(cd "$(dirname "$0")/.." && pwd)/.deps"
if [ ! -x "$deps/moto/bin/moto_server" ]; then
  say "installing moto's S3 server into .deps/moto"
  rm -rf "$deps/moto"
  python3 -m venv "$deps/moto"
  "$deps/moto/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5"
fi

# A v2 (Open Inference Protocol) client nobody here wrote, for the KServe
# tests: NVIDIA's tritonclient, with jsonschema and PyYAML to check answers
# against the protocol's OpenAPI file.
if [ ! -f "$deps/v2client/.installed-v1" ]; then
  say "installing tritonclient into .deps/v2client"
  rm -rf "$deps/v2client"
  python3 -m venv "$deps/v2client"
  "$deps/v2client/bin/pip" install --quiet --disable-pip-version-check \
    "tritonclient[http]==2.73.0" "jsonschema==4.26.0" "PyYAML==6.0.3"
  touch "$deps/v2client/.installed-v1"
fi

components=$(rustup component list --installed 2>/dev/null || true)
for c in rustfmt clippy llvm-tools; do
  if ! grep -q "^$c" <<<"$components"; then
    say "adding rustup component $c"
    if [ "$c" = llvm-tools ]; then rustup component add llvm-tools-preview; else rustup component add "$c"; fi
  fi
done

if ! command -v cargo-llvm-cov >/dev/null 2>&1; then
  say "installing cargo-llvm-cov (coverage)"
  cargo install cargo-llvm-cov --locked
fi

# Every crate of Cargo.lock, for every platform: the tests run offline, and
# `cargo metadata --offline` (tests/architecture.rs) reads them all, where a
# build downloads only this platform's.
say "fetching the locked crates"
cargo fetch --locked --quiet
say "ok"
