#!/usr/bin/env bash
# Every check CI runs: formatting, lints, then all tests once, instrumented,
# failing under 80% line coverage of the Rust code.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
bash scripts/validate-deploy.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo llvm-cov --workspace --locked --fail-under-lines 80 \
  --ignore-filename-regex '(^|/)tests/' --summary-only
# The Kubeflow specs the tests compiled, loaded by the real kfp SDK.
bash scripts/validate-deploy.sh --kubeflow
