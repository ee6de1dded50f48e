#!/usr/bin/env bash
# Build a Docker base image with no registry: debootstrap a minimal Debian rootfs on the
# host and `docker import` it.  Idempotent: an image that already exists is kept.
#
#   docker/build-base-image.sh IMAGE_TAG [EXTRA_PACKAGES...]
#
#   docker/build-base-image.sh perstack-base:bookworm python3          # runtime base
#   docker/build-base-image.sh perstack-proxy-base:bookworm squid      # proxy base
#
# Environment: SUITE (bookworm), MIRROR (the host's Debian mirror), FORCE=1 to rebuild.
set -euo pipefail

tag="${1:?usage: build-base-image.sh IMAGE_TAG [EXTRA_PACKAGES...]}"
shift
packages=("$@")
suite="${SUITE:-bookworm}"
mirror="${MIRROR:-http://deb.debian.org/debian}"

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag exists; FORCE=1 rebuilds it"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap
fi

rootfs="$(mktemp -d /var/tmp/perstack-rootfs.XXXXXX)"
trap 'rm -rf --one-file-system "$rootfs"' EXIT

include=""
if ((${#packages[@]})); then
    include="--include=$(IFS=,; echo "${packages[*]}")"
fi
echo "debootstrap $suite into $rootfs ($include)"
debootstrap --variant=minbase $include "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -30 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"

# What an image never needs: package caches, docs, man pages, locales.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/*

tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$tag"
echo "built $tag"
