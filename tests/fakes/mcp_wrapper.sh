#!/bin/sh
# Starts the fake MCP server as a child (not exec), as launcher scripts often do, and leaves
# a background sleep behind: closing the skill must take down the whole process group.
# Usage: mcp_wrapper.sh PYTHON MODE [ARGS...]
sleep 300 </dev/null >/dev/null 2>&1 &
python="$1"; shift
"$python" "$(dirname "$0")/mcp_server.py" "$@"
echo "wrapper: server exited with $?" >&2
