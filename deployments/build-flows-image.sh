#!/usr/bin/env bash
# Build perstack-flows:latest, the docker work pool's flow-run image: a wheelhouse of the
# project with its `flows` extra (built on the host, which reaches PyPI), installed on the
# locally built base image (docker/build-base-image.sh; no registry needed).
#
#   deployments/build-flows-image.sh [PYTHON]     # PYTHON defaults to .venv/bin/python
#
# PERSTACK_FLOWS_IMAGE names the image (default perstack-flows:latest, what prefect.yaml
# runs), e.g. to try a branch without replacing the image others use on a shared engine.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-$repo/.venv/bin/python}"
out="$repo/build/flows-wheelhouse"

rm -rf "$out"
mkdir -p "$out"
"$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$out" "$repo[flows]" pip \
    async-timeout  # redis needs it below Python 3.11.3: bookworm has 3.11.2, the host may not
# A context of its own: the repository's .dockerignore is the runtime image's.
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/build"
cp -r "$out" "$context/build/flows-wheelhouse"
cp -r "$repo/flows" "$repo/deployments" "$repo/examples" "$context/"
find "$context" -name __pycache__ -prune -exec rm -rf {} +
docker build -f "$repo/deployments/flows.Dockerfile" -t "${PERSTACK_FLOWS_IMAGE:-perstack-flows:latest}" "$context"
