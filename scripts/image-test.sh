#!/usr/bin/env bash
# Builds the project's Dockerfile with podman and runs the image the way
# k8s/deployment.yaml runs it: `podman kube play` on the real manifest, then
# start-up time, `roadsign stress` from the host, the bad inputs of the HTTP
# tests, a SIGTERM with requests in flight, the command of a compiled
# Kubeflow step on a mounted data folder, and who may write where.
#
# This machine has no Docker engine and no registry: the base images are made
# locally (mmdebstrap; the host's Rust toolchain in the builder) and passed
# with --build-arg; nothing else of the Dockerfile differs from the GitHub
# workflow's build. See ../shared/notes/containers.md and docs/deploy.md.
#
# Every failure names its step and exits non-zero: a missing podman is a
# failure, never a skip. The figures go to target/image-test/summary.json.
#
#   scripts/image-test.sh                  build here, then test
#   scripts/image-test.sh --image REF      test an image built elsewhere (the
#                                          GitHub workflow: docker-daemon:roadsign:ci)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

say() { printf '[image-test] %s\n' "$*" >&2; }
step="start"
begin() { step="$*"; say "step: $*"; }
fail() { say "$*"; exit 1; }
seconds_since() { echo "$(date +%s.%N) - $1" | bc; }

scratch="${ROADSIGN_IMAGE_SCRATCH:-/var/tmp/roadsign-image}"
out="$root/target/image-test"
image=localhost/roadsign:test
given_image=""
if [ "${1:-}" = --image ]; then
  given_image="${2:?--image needs an image reference}"
fi
base=localhost/debian-minbase-ca:bookworm
mkdir -p "$scratch" "$out"

cleanup() {
  local rc=$?
  if [ -n "${CONTAINERS_CONF:-}" ]; then
    podman kube down "$out/deployment-podman.yaml" >/dev/null 2>&1 || true
    podman rm -f -t 0 "${ctr:-none}" >/dev/null 2>&1 || true
    podman rm -f -t 0 roadsign-kubeflow-step >/dev/null 2>&1 || true
  fi
  [ $rc -eq 0 ] || say "FAILED (exit $rc) at step: $step"
  exit $rc
}
trap cleanup EXIT

# shellcheck source=scripts/podman-lib.sh
source "$root/scripts/podman-lib.sh"

begin "install podman, buildah, mmdebstrap, runc, slirp4netns"
podman_install

begin "configure podman (runc, cgroupfs, ulimit caps, storage in $scratch)"
podman_configure

if [ -n "$given_image" ]; then
  begin "load $given_image"
  podman pull "$given_image" >/dev/null
  podman tag "$given_image" "$image"
  build_s=null
else
  begin "local base image $base (mmdebstrap, this machine's CA certificates)"
  local_debian_base "$base"

  rust_version="$(rustc --version | awk '{print $2}')"
  builder="localhost/rust-builder-host-toolchain:$rust_version"
  begin "local builder image $builder (the host's Rust $rust_version toolchain)"
  if ! podman image exists "$builder"; then
    sysroot="$(rustc --print sysroot)"
    tmp="$(mktemp -d "$scratch/builder.XXXXXX")"
    # CARGO_HOME is the host's path, so that the host's registry and release
    # build, mounted at the same paths during the image build, stay fresh.
    cat > "$tmp/Containerfile" <<CONTAINERFILE
FROM $base
RUN apt-get update \\
 && apt-get install -y --no-install-recommends gcc g++ libc6-dev make pkg-config git curl \\
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /usr/local/rust && cd /opt/host-toolchain \\
 && tar --exclude=./share/doc -cf - . | tar -xf - -C /usr/local/rust
ENV PATH=/usr/local/rust/bin:\$PATH CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
CONTAINERFILE
    podman build --quiet --pull=never --network=host -v "$sysroot:/opt/host-toolchain:ro" \
      -t "$builder" "$tmp" >/dev/null
    rm -rf "$tmp"
  fi
  podman run --rm --network=host "$builder" rustc --version >&2

  begin "build the Dockerfile (local base images as --build-arg, host caches mounted)"
  # The host's wheels (downloaded once, by scripts/install.sh), cargo registry
  # and target folder are mounted over the Dockerfile's cache mounts; overlay
  # mounts (:O) keep the host's copies unchanged. The target folder only helps
  # because the builder holds the same toolchain as the host.
  bash scripts/install-libtorch.sh
  cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  mkdir -p target
  build_started=$(date +%s.%N)
  podman build --pull=never --network=host --format docker \
    --build-arg BUILDER_IMAGE="$builder" --build-arg RUNTIME_IMAGE="$base" \
    -v "$root/.deps/wheels:/src/.deps/wheels:ro" \
    -v "$cargo_home/registry:$cargo_home/registry:O" \
    -v "$root/target:/src/target:O" \
    -t "$image" . > "$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log" >&2; fail "podman build failed: $out/build.log"; }
  grep -E 'STEP [0-9]|Compiling|Finished' "$out/build.log" | cut -c1-120 >&2 || true
  build_s=$(seconds_since "$build_started")
  say "built $image in ${build_s} s"
fi

begin "image size and its largest layers"
podman image inspect --format '{{.Size}}' "$image" > "$out/size_bytes"
podman history --format '{{.Size}}|{{.CreatedBy}}' "$image" | cut -c1-160 > "$out/layers.txt"
say "$(numfmt --to=si < "$out/size_bytes")B uncompressed"

begin "read k8s/deployment.yaml"
# The settings the run below must match, from the manifest itself.
{
  read -r manifest_image; read -r run_as_user; read -r run_as_group; read -r grace_s
  read -r port; read -r volume_paths; read -r manifest_args
  read -r memory_limit_bytes; read -r cpu_limit_millis
} < <(python3 - k8s/deployment.yaml <<'PY'
import sys, yaml
pod = yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]
c = pod["containers"][0]
print(c["image"])
print(pod["securityContext"]["runAsUser"])
print(pod["securityContext"]["runAsGroup"])
print(pod["terminationGracePeriodSeconds"])
print(c["ports"][0]["containerPort"])
print(" ".join(m["mountPath"] for m in c.get("volumeMounts", [])))
print(" ".join(c.get("args", [])))
units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
memory = c["resources"]["limits"]["memory"]
print(int(memory[:-2]) * units[memory[-2:]] if memory[-2:] in units else int(memory))
cpu = str(c["resources"]["limits"]["cpu"])
print(int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000))
PY
)
[ -n "$manifest_args" ] || fail "could not read the container of k8s/deployment.yaml"
url="http://127.0.0.1:$port"

# The client side (stress, kubeflow compile) is the host's release build
# when there is one, else the image's own executable in a second container.
roadsign_client() {
  if [ -x target/release/roadsign ]; then
    target/release/roadsign "$@"
  else
    podman run --rm --network=host --user "$(id -u)" -v "$out:$out" "$image" roadsign "$@"
  fi
}

begin "podman kube play k8s/deployment.yaml (host networking; the image tagged $manifest_image)"
# The one change to the manifest: host networking (the default bridge
# network would add iptables rules to this machine, and slirp4netns's port
# forwarder drops connections under 10 concurrent clients). podman 4.3
# refuses host networking next to containerPorts, so they go too; they only
# name the probes' port, which podman cannot honour anyway (docs/deploy.md).
python3 - k8s/deployment.yaml "$out/deployment-podman.yaml" <<'PY'
import sys, yaml
manifest = yaml.safe_load(open(sys.argv[1]))
pod = manifest["spec"]["template"]["spec"]
pod["hostNetwork"] = True
for container in pod["containers"]:
    container.pop("ports", None)
yaml.safe_dump(manifest, open(sys.argv[2], "w"), sort_keys=False)
PY
podman tag "$image" "$manifest_image"
podman kube down "$out/deployment-podman.yaml" >/dev/null 2>&1 || true
if curl -fsS -o /dev/null "$url/health" 2>/dev/null; then
  fail "something already answers on $url: stop it first"
fi
play_started=$(date +%s.%N)
podman kube play "$out/deployment-podman.yaml" >/dev/null
# The pod's container carries the labels of the manifest's pod template.
ctr=$(podman ps --filter "label=app.kubernetes.io/name=roadsign" --format '{{.Names}}' | head -1)
[ -n "$ctr" ] || fail "no container started by kube play"

begin "wait for /ready (the startup probe's route)"
ready_s=""
for _ in $(seq 1 600); do
  if curl -fsS -o /dev/null "$url/ready" 2>/dev/null; then
    ready_s=$(seconds_since "$play_started")
    break
  fi
  if [ "$(podman inspect --format '{{.State.Running}}' "$ctr" 2>/dev/null)" != true ]; then
    podman logs "$ctr" >&2 || true
    fail "the container stopped before it was ready"
  fi
  sleep 0.1
done
[ -n "$ready_s" ] || { podman logs "$ctr" >&2; fail "/ready never answered 200 within 60 s"; }
say "ready ${ready_s} s after kube play"

begin "the pod runs as the manifest says (user, capabilities, read-only root, volumes, args)"
uid=$(podman exec "$ctr" id -u)
gid=$(podman exec "$ctr" id -g)
if [ "$uid" != "$run_as_user" ] || [ "$gid" != "$run_as_group" ]; then
  fail "runs as $uid:$gid, the manifest says $run_as_user:$run_as_group"
fi
[ "$uid" != 0 ] || fail "runs as root"
cap_eff=$(podman exec "$ctr" awk '/^CapEff/ {print $2}' /proc/1/status)
[ "$cap_eff" = 0000000000000000 ] || fail "effective capabilities $cap_eff, the manifest drops ALL"
no_new_privs=$(podman exec "$ctr" awk '/^NoNewPrivs/ {print $2}' /proc/1/status)
[ "$no_new_privs" = 1 ] || fail "no_new_privs is off: allowPrivilegeEscalation: false not applied"
cmdline=$(podman exec "$ctr" sh -c "tr '\\0' ' ' < /proc/1/cmdline")
[ "${cmdline% }" = "$manifest_args" ] || fail "PID 1 runs '$cmdline', the manifest's args are '$manifest_args'"
for dir in / /app /app/data /usr/local/bin /opt /etc; do
  if podman exec "$ctr" sh -c "echo x > '$dir/.roadsign-write-test'" 2>/dev/null; then
    fail "could write to $dir: the root filesystem must be read-only"
  fi
done
for dir in $volume_paths; do
  podman exec "$ctr" sh -c "echo x > '$dir/.roadsign-write-test' && rm '$dir/.roadsign-write-test'" ||
    fail "cannot write to the volume $dir"
done
# Everything the process may write to, outside the kernel's own /proc, /sys
# and /dev: the volumes and nothing else (kube play adds no tmpfs of its
# own; `podman run --read-only` would, on /var/tmp, without
# --read-only-tmpfs=false).
unexpected=$(podman exec "$ctr" find / \( -path /proc -o -path /sys -o -path /dev \) -prune \
  -o -writable -print 2>/dev/null |
  grep -v -E "^($(tr ' ' '|' <<<"$volume_paths"))(/|$)" || true)
[ -z "$unexpected" ] || fail "writable outside the volumes: $(head -5 <<<"$unexpected" | tr '\n' ' ')"
read -r memory cpu_quota cpu_period < <(podman inspect \
  --format '{{.HostConfig.Memory}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}}' "$ctr")
[ "$memory" = "$memory_limit_bytes" ] || fail "memory limit $memory, the manifest says $memory_limit_bytes"
[ $((cpu_quota * 1000 / cpu_period)) = "$cpu_limit_millis" ] ||
  fail "CPU quota $cpu_quota/$cpu_period, the manifest says ${cpu_limit_millis}m"
say "uid $uid gid $gid, CapEff 0, no_new_privs, read-only root, writable: $volume_paths;" \
  "limits $((memory / 1048576)) MiB, ${cpu_limit_millis}m CPU"

begin "roadsign stress from the host: 100 requests, 10 clients, every answer 200"
roadsign_client stress --url "$url" --requests 100 --workers 10 \
  --save-file "$out/scene.jpg" --format json > "$out/stress.json"
python3 - "$out/stress.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"[image-test] {r['requests']} requests: {r['statuses']}, p50 {r['p50_ms']:.0f} ms, "
      f"p95 {r['p95_ms']:.0f} ms, {r['requests_per_s']:.1f} req/s", file=sys.stderr)
sys.exit(0 if r["statuses"] == {"200": 100} else 1)
PY
podman exec "$ctr" awk '/^VmHWM/ {print $2}' /proc/1/status > "$out/peak_rss_kib"

begin "bad inputs: each answered 4xx JSON, the container keeps serving"
python3 scripts/image_probe.py bad-inputs "$url" "$out/scene.jpg"

begin "a video through /predict/video (the image's ffmpeg decodes and encodes)"
ffmpeg -v error -y -f lavfi -i testsrc=size=320x240:rate=10 -f lavfi -i sine=frequency=440 \
  -t 2 -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$out/clip.mp4"
python3 scripts/image_probe.py video "$url" "$out/clip.mp4"

begin "SIGTERM with requests in flight: they complete, exit 0 within the grace period ($grace_s s)"
python3 scripts/image_probe.py in-flight "$url" "$out/scene.jpg" 8 > "$out/in-flight.log" 2>&1 &
probe=$!
for _ in $(seq 1 200); do
  grep -q '^sent' "$out/in-flight.log" && break
  sleep 0.05
done
grep -q '^sent' "$out/in-flight.log" || fail "the in-flight probe did not start: $(cat "$out/in-flight.log")"
stop_started=$(date +%s.%N)
podman stop -t "$grace_s" "$ctr" >/dev/null
stop_s=$(seconds_since "$stop_started")
wait "$probe" || fail "requests in flight at SIGTERM did not all complete with 200: $(cat "$out/in-flight.log")"
probe_out=$(grep '^statuses' "$out/in-flight.log")
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$ctr")
[ "$exit_code" = 0 ] || fail "exit code $exit_code after SIGTERM"
[ "$(echo "$stop_s < $grace_s" | bc)" = 1 ] || fail "took $stop_s s to stop, the grace period is $grace_s s"
say "8 requests in flight completed ($probe_out); exit 0 in $stop_s s"
podman kube down "$out/deployment-podman.yaml" >/dev/null

begin "a Kubeflow step's command, taken from the compiled spec, on a mounted data folder"
roadsign_client kubeflow compile --pipeline __default__ -o "$out/kubeflow.yaml"
step_dir="$out/kubeflow-data"
rm -rf "$step_dir"
mkdir -p "$step_dir"
# The first task (it waits on no other), its executor's command and args with
# the pipeline's default parameters, and its volume's mount path.
mapfile -t step_cmd < <(python3 - "$out/kubeflow.yaml" <<'PY'
import sys, yaml
spec, platform = list(yaml.safe_load_all(open(sys.argv[1])))
tasks = spec["root"]["dag"]["tasks"]
name, task = next((n, t) for n, t in tasks.items() if not t.get("dependentTasks"))
executor = f"exec-{name}"
container = spec["deploymentSpec"]["executors"][executor]["container"]
defaults = {k: v.get("defaultValue", "")
            for k, v in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()}
def resolve(arg):
    for key, value in defaults.items():
        arg = arg.replace("{{$.inputs.parameters['%s']}}" % key, str(value))
    return arg
mounts = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][executor]["pvcMount"]
print(mounts[0]["mountPath"])
for part in container.get("command", []) + container.get("args", []):
    print(resolve(part))
PY
)
mount_path=${step_cmd[0]}
step_cmd=("${step_cmd[@]:1}")
say "runs: ${step_cmd[*]} (data at $mount_path)"
chown "$run_as_user:$run_as_group" "$step_dir"
podman run --rm --name roadsign-kubeflow-step --network=host \
  --user "$run_as_user:$run_as_group" --read-only --read-only-tmpfs=false --tmpfs /tmp --cap-drop=ALL \
  --security-opt no-new-privileges -v "$step_dir:$mount_path" \
  "$image" "${step_cmd[@]}" > "$out/kubeflow-step.log" 2>&1 ||
  { cat "$out/kubeflow-step.log" >&2; fail "the step exited non-zero"; }
written=$(find "$step_dir" -type f -newer "$out/kubeflow.yaml" | sed "s#^$step_dir/##" | sort)
[ -n "$written" ] || { cat "$out/kubeflow-step.log" >&2; fail "the step wrote nothing under $mount_path"; }
say "exit 0, wrote: $(echo "$written" | tr '\n' ' ')"

begin "summary"
python3 - "$out" <<PY
import json, sys
out = sys.argv[1]
stress = json.load(open(f"{out}/stress.json"))
summary = {
    "image_bytes": int(open(f"{out}/size_bytes").read()),
    "build_s": round($build_s, 1),
    "ready_after_kube_play_s": round($ready_s, 2),
    "stress": {k: stress[k] for k in ("requests", "workers", "statuses", "p50_ms", "p95_ms", "requests_per_s")},
    "peak_rss_mib": round(int(open(f"{out}/peak_rss_kib").read()) / 1024, 1),
    "sigterm_stop_s": round($stop_s, 2),
    "kubeflow_step": "${step_cmd[*]}",
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(summary, indent=2))
PY
say "ok"
