#!/usr/bin/env bash
# Build the wheelhouse the image installs from: the project and its runtime
# dependencies only (no extras), pip's own wheel, and the MCP servers the baked-in
# Expert's skills run (SKILL_PACKAGES, default: the example's mcp-server-time), into
# build/wheelhouse/.
# Run on the host, which reaches PyPI; the image build then needs no network.
#
#   docker/build-wheelhouse.sh [PYTHON]     # PYTHON defaults to .venv/bin/python
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-$repo/.venv/bin/python}"
out="$repo/build/wheelhouse"

rm -rf "$out"
mkdir -p "$out"
# The image's python is Debian bookworm's 3.11; the host's must be the same minor version
# for compiled wheels (pydantic-core) to fit.
"$python" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"the wheelhouse must be built with Python 3.11, not {sys.version.split()[0]}")
PY
read -r -a skills <<<"${SKILL_PACKAGES-mcp-server-time}"
"$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$out" \
    "$repo" pip "${skills[@]}"
echo "wheelhouse: $(ls "$out" | wc -l) wheels in $out"
