"""A small MCP server for tests, with the failure chosen by the first argument.

    serve            a working server (tools below), over stdio
    exit-at-once     writes a message to stderr and exits with code 3, before any handshake
    hang-at-start    never answers the handshake
    ignore-sigterm   serves, ignores SIGTERM, and stays alive after its stdin closes
    boot-only        imports and builds the server, prints 'built', exits (its start-up)
    sse PORT         the working server over SSE on 127.0.0.1:PORT (path /sse)
    http PORT        the working server over streamable HTTP on 127.0.0.1:PORT (path /mcp)

``FAKE_MCP_MODE`` in the environment (pass it with requiredEnv) overrides the mode.

Tools: ``echo``, ``fail`` (an isError result), ``stall`` (never answers), ``crash`` (the
process dies mid-call), ``env`` (reads a variable), ``whoami`` (pid and process group),
``shout`` (writes lines to stderr), ``spawn_child`` (starts a long sleep in the background).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def _forever() -> None:
    while True:
        time.sleep(60)


def _server():  # type: ignore[no-untyped-def]
    import anyio
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("fake-server")

    @server.tool()
    def echo(message: str) -> str:
        """Send the message back."""
        return message

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails with the given reason."""
        from mcp.server.mcpserver.exceptions import ToolError

        raise ToolError(reason)

    @server.tool()
    async def stall() -> str:
        """Never answers."""
        await anyio.sleep_forever()
        return "unreachable"

    @server.tool()
    def crash() -> str:
        """Dies in the middle of the call."""
        print("fake server: crashing on purpose", file=sys.stderr, flush=True)
        os._exit(7)

    @server.tool()
    def env(name: str) -> str:
        """The value of an environment variable, or <unset>."""
        return os.environ.get(name, "<unset>")

    @server.tool()
    def whoami() -> str:
        """This process's pid and process group."""
        return f"{os.getpid()} {os.getpgid(0)}"

    @server.tool()
    def shout(count: int) -> str:
        """Write ``count`` numbered lines to stderr."""
        for index in range(count):
            print(f"line {index}", file=sys.stderr, flush=True)
        return "ok"

    @server.tool()
    def spawn_child() -> str:
        """Start a background sleep that outlives this call; returns its pid."""
        child = subprocess.Popen(
            ["sleep", "300"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return str(child.pid)

    return server


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
    # Lets a test install a working server, then make the same config fail at run time.
    mode = os.environ.get("FAKE_MCP_MODE") or mode
    if mode == "exit-at-once":
        print("fake server: cannot open /nonexistent/db.sqlite", file=sys.stderr, flush=True)
        sys.exit(3)
    if mode == "hang-at-start":
        print("fake server: warming up", file=sys.stderr, flush=True)
        _forever()
    if mode == "ignore-sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    server = _server()
    if mode == "boot-only":
        print("built", flush=True)
        return
    if mode in ("sse", "http"):
        port = int(sys.argv[2])
        transport = "sse" if mode == "sse" else "streamable-http"
        server.run(transport, host="127.0.0.1", port=port)  # type: ignore[call-overload]
        return
    server.run()
    if mode == "ignore-sigterm":
        print("fake server: stdin closed, staying anyway", file=sys.stderr, flush=True)
        _forever()


if __name__ == "__main__":
    main()
