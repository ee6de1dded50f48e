#!/usr/bin/env bash
# Build the MCP servers' preload library (docker/preload/undumpable.c) into
# build/preload/, where the runtime image's Dockerfile copies it from. Needs a C compiler
# for the image's architecture (the host's gcc: the base image has none).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/build/preload"
mkdir -p "$out"
"${CC:-gcc}" -shared -fPIC -O2 -Wall -Werror -o "$out/libperstack-undumpable.so" \
    "$repo/docker/preload/undumpable.c"
echo "built $out/libperstack-undumpable.so"
