#!/usr/bin/env bash
# Prepare a machine with no Docker engine and no registry for the container tests,
# idempotently: install docker.io if missing, start dockerd if not running and wait for
# it, build the base images with debootstrap if missing, build the wheelhouse and the
# runtime and proxy images. Run as root from anywhere; .ci/run calls it before pytest.
#
# Environment: PERSTACK_CONFIG_DIR (examples/support-report): its perstack.toml is baked
# into the runtime image as /app/perstack.toml with the perstack.lock that
# `perstack install` writes beside it; SKILL_PACKAGES (mcp-server-time): the MCP servers
# its skills start, installed into the image;
# DOCKERD_LOG (/var/log/perstack-dockerd.log).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
config_dir="${PERSTACK_CONFIG_DIR:-examples/support-report}"
dockerd_log="${DOCKERD_LOG:-/var/log/perstack-dockerd.log}"
# dockerd is up in a few seconds; a first start on a slow disk can take longer.
dockerd_wait_seconds=60

step() { printf '\n== setup-docker: %s\n' "$*"; }

if ! command -v dockerd >/dev/null; then
    step "installing docker.io and debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    # A dockerd still shutting down (or one that died) leaves its pid file behind, which
    # makes a new one refuse to start: wait for the old one, then drop the stale file.
    for _ in $(seq "$dockerd_wait_seconds"); do
        pidof dockerd >/dev/null || break
        sleep 1
    done
    if ! pidof dockerd >/dev/null; then
        rm -f /var/run/docker.pid
        # The same for the containerd that dockerd starts: a killed one may linger as a
        # zombie, which dockerd takes for alive and then waits a minute for its socket.
        containerd_pid_file=/var/run/docker/containerd/containerd.pid
        if [[ -f "$containerd_pid_file" ]]; then
            pid="$(cat "$containerd_pid_file")"
            state="$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
            if [[ -z "$state" || "$state" == Z ]]; then
                rm -f "$containerd_pid_file"
            fi
        fi
    fi
    step "starting dockerd (log: $dockerd_log)"
    setsid nohup dockerd >"$dockerd_log" 2>&1 </dev/null &
    for _ in $(seq "$dockerd_wait_seconds"); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { tail -20 "$dockerd_log" >&2; exit 1; }
fi
echo "docker engine $(docker version --format '{{.Server.Version}}')"

step "base images (debootstrap + docker import, kept when present)"
# The two debootstraps run side by side (each about 40 s from scratch).
docker/build-base-image.sh perstack-base:bookworm python3 &
runtime_base=$!
docker/build-base-image.sh perstack-proxy-base:bookworm squid &
proxy_base=$!
wait "$runtime_base"
wait "$proxy_base"

if [[ ! -x "$repo/.venv/bin/perstack" ]]; then
    step "the project's virtual environment (make .venv/.installed)"
    make -C "$repo" .venv/.installed
fi

step "wheelhouse (the project's runtime dependencies only)"
docker/build-wheelhouse.sh "${PYTHON:-$repo/.venv/bin/python}"

step "the MCP servers' preload library (docker/build-preload.sh)"
docker/build-preload.sh

step "image config: $config_dir/perstack.toml + perstack.lock"
rm -rf build/image-config
mkdir -p build/image-config
cp "$config_dir/perstack.toml" build/image-config/
"$repo/.venv/bin/perstack" install --config build/image-config/perstack.toml

# The legacy builder: BuildKit would want its buildx plugin, which docker.io lacks.
export DOCKER_BUILDKIT=0
step "runtime image perstack-runtime:latest (config from $config_dir)"
docker build -q --build-arg BASE_IMAGE=perstack-base:bookworm \
    --build-arg CONFIG_DIR=build/image-config \
    --build-arg SKILL_PACKAGES="${SKILL_PACKAGES-mcp-server-time}" \
    -t perstack-runtime:latest . >/dev/null
step "proxy image perstack-proxy:latest"
docker build -q --build-arg BASE_IMAGE=perstack-proxy-base:bookworm \
    -t perstack-proxy:latest docker/proxy >/dev/null
docker image prune -f >/dev/null
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^perstack-'
