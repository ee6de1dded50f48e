"""Transports to MCP servers over HTTP: SSE and streamable HTTP.

Which one an `mcpSseSkill` uses (documented rule): an endpoint whose path ends in ``/sse``
speaks the SSE transport (the reference's only one); any other endpoint speaks streamable
HTTP, the transport that replaced SSE in the MCP specification.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Literal
from urllib.parse import urlparse

from mcp.client._transport import TransportStreams

HttpTransport = Literal["sse", "streamable-http"]
# Connecting and each plain HTTP request (not the long-lived event stream).
HTTP_REQUEST_TIMEOUT_S = 30.0


def transport_kind(endpoint: str) -> HttpTransport:
    path = urlparse(endpoint).path.rstrip("/")
    return "sse" if path.endswith("/sse") else "streamable-http"


def open_http_transport(endpoint: str) -> AbstractAsyncContextManager[TransportStreams]:
    if transport_kind(endpoint) == "sse":
        from mcp.client.sse import sse_client

        return sse_client(endpoint, timeout=HTTP_REQUEST_TIMEOUT_S)
    from mcp.client.streamable_http import streamable_http_client

    return streamable_http_client(endpoint)
