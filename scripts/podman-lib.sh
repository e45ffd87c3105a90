#!/usr/bin/env bash
# Podman on a machine without Docker, for scripts/image-test.sh and
# bench/python_image.sh (sourced): the packages, the configuration this
# machine needs (../shared/notes/containers.md) and a local Debian base image.
# Expects `say` and `fail`; $scratch is where podman keeps its storage.

# Installs podman and what the image checks use, where missing. catatonit
# is only recommended by Debian's podman, but `podman kube play` builds its
# pause image from it.
podman_install() {
  local need=()
  for pkg in podman buildah mmdebstrap fuse-overlayfs uidmap slirp4netns runc catatonit python3-yaml ffmpeg bc curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    say "installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  command -v podman >/dev/null || fail "podman is not installed"
}

# Points podman at its own configuration and storage under $scratch.
podman_configure() {
  : "${scratch:?the caller sets scratch}"
  mkdir -p "$scratch"
  # No CAP_SYS_RESOURCE here: without the ulimit caps every container fails
  # with "setrlimit RLIMIT_NOFILE". crun refuses this machine's hybrid cgroups.
  cat > "$scratch/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
  cat > "$scratch/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$scratch/storage"
runroot = "$scratch/run"
CONF
  export CONTAINERS_CONF="$scratch/containers.conf" CONTAINERS_STORAGE_CONF="$scratch/storage.conf"
  podman info --format '{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}' >&2
}

# Makes the local Debian base image $1 (like the official slim image, plus
# this machine's CA certificates), unless it exists.
local_debian_base() {
  local base=$1 tmp sources
  if ! podman image exists "$base"; then
    tmp="$(mktemp -d "$scratch/base.XXXXXX")"
    sources=/etc/apt/sources.list.d/debian.sources
    [ -f "$sources" ] || sources=/etc/apt/sources.list
    # Like the official slim image: no documentation, manual pages or
    # translations, now or in what later layers install.
    mmdebstrap --quiet --variant=minbase --include=ca-certificates \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
      bookworm "$tmp/rootfs.tar" "$sources"
    podman import --change 'CMD ["bash"]' "$tmp/rootfs.tar" localhost/debian-minbase:bookworm >/dev/null
    # The machine's egress inspects TLS: its CA (trusted by the host) goes into
    # the local base, never into the project's Dockerfile.
    mkdir -p "$tmp/ctx/certs"
    cp /usr/local/share/ca-certificates/*.crt "$tmp/ctx/certs/" 2>/dev/null || true
    printf '%s\n' 'FROM localhost/debian-minbase:bookworm' \
      'COPY certs/ /usr/local/share/ca-certificates/' \
      'RUN update-ca-certificates && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin' \
      > "$tmp/ctx/Containerfile"
    podman build --quiet --pull=never --network=host -t "$base" "$tmp/ctx" >/dev/null
    rm -rf "$tmp"
  fi
}
