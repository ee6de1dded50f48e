"""A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 that plays a script.

Each ``POST /v1/messages`` is answered by the next script entry (the format of
``runtime/providers/script.py``, the reference recordings' ``script.json`` plus faults), streamed
as Server-Sent Events exactly like the real API, or as one JSON message when ``stream`` is off.
Every request is recorded (headers, body, arrival time) for tests to assert on.

In tests::

    with FakeMessagesAPI([{"text": "hi"}]) as api:
        provider = AnthropicProvider(base_url=api.url, api_key="test-key")
        ...
        assert api.requests[0].body["model"] == "claude-sonnet-4-5"

Standalone (benchmarks, containers)::

    python -m tests.fakes.messages_api --script script.json --port 0 [--repeat]

prints the base URL on stdout and serves until SIGINT/SIGTERM; ``GET /_fake/requests`` returns
what was recorded so far as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from runtime.providers.script import ScriptEntry, load_script, parse_entry

logger = logging.getLogger(__name__)

MESSAGES_PATH = "/v1/messages"
TEXT_CHUNK = 7  # characters per text/thinking delta: splits words, like the real API
JSON_CHUNK = 5  # characters per input_json_delta: lands inside keys and values
DEFAULT_SIGNATURE = "fake-signature"
# Joining the server thread after shutdown: delays wake up at once, so this is generous.
STOP_TIMEOUT_S = 5.0
_STATUS_BY_STREAM_ERROR = {
    "overloaded_error": 529,
    "rate_limit_error": 429,
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
}
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: Any  # parsed JSON, or the raw text when it was not JSON
    received_at: float  # time.time() when the request line arrived
    turn_index: int | None  # the script entry that answered it (None: not a messages call)


class FakeMessagesAPI:
    """The server. ``script`` is a list of turns (dicts or parsed entries) or a script file."""

    def __init__(
        self,
        script: Sequence[dict[str, Any] | ScriptEntry] | str | Path = (),
        *,
        port: int = 0,
        repeat: bool = False,
        api_key: str | None = None,
    ) -> None:
        """``api_key``: when set, a request without that key (``x-api-key`` or a bearer token)
        gets a 401 and consumes no turn."""
        self.api_key = api_key
        self._entries: list[ScriptEntry] = []
        self.script_name = "<inline>"
        self.repeat = repeat
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._next_turn = 0
        self._stopping = threading.Event()
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.add_turns(script)

    # -- script --------------------------------------------------------------------------

    def add_turns(self, script: Sequence[dict[str, Any] | ScriptEntry] | str | Path) -> None:
        """Append turns to what is still to be played."""
        if isinstance(script, str | Path):
            entries = load_script(script)
            self.script_name = Path(script).name
        else:
            entries = [
                item
                if isinstance(item, ScriptEntry)
                else parse_entry(item, where=f"inline script: turn {i}")
                for i, item in enumerate(script)
            ]
        with self._lock:
            self._entries.extend(entries)

    def _take_turn(self) -> tuple[int, ScriptEntry] | None:
        with self._lock:
            if self._next_turn >= len(self._entries):
                if not self.repeat or not self._entries:
                    return None
                self._next_turn = 0
            index = self._next_turn
            self._next_turn += 1
            return index, self._entries[index]

    @property
    def turns_played(self) -> int:
        return self._next_turn

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake Messages API is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL as the SDK writes it (``/v1/messages`` is appended by the SDK)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url_v1(self) -> str:
        """The base URL as the reference's ``baseUrl`` writes it."""
        return f"{self.url}/v1"

    @property
    def first_request_at(self) -> float | None:
        return self.requests[0].received_at if self.requests else None

    def start(self) -> FakeMessagesAPI:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), _Handler)
        self._server.api = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-messages-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes replies that are waiting out a scripted delay
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        self._server = None

    def __enter__(self) -> FakeMessagesAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- used by the handler -------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _sleep(self, seconds: float) -> bool:
        """Wait; False when the server is stopping (the reply should give up)."""
        return seconds <= 0 or not self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: FakeMessagesAPI

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sockets_lock:
            self._sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self._sockets.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Close kept-alive connections so that clients see the server go away."""
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Dropped(Exception):
    """The scripted reply cut its own connection."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without it, Nagle's algorithm holds each small SSE write for the client's delayed ACK
        # (about 40 ms per reply on Linux), which would swamp what benchmarks measure.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("fake messages api: %s", format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path == "/_fake/requests":
            self._send_json(200, [asdict(r) for r in self.server.api.requests])
        else:
            self._send_error(404, "not_found_error", f"no route GET {self.path}")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        received_at = time.time()
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        try:
            body: Any = json.loads(raw)
        except json.JSONDecodeError:
            body = raw
        api = self.server.api
        path = self.path.split("?", 1)[0]
        valid = isinstance(body, dict) and isinstance(body.get("messages"), list)
        headers = {name.lower(): value for name, value in self.headers.items()}
        allowed = api.api_key is None or api.api_key in (
            headers.get("x-api-key"),
            headers.get("authorization", "").removeprefix("Bearer "),
        )
        taken = api._take_turn() if path == MESSAGES_PATH and valid and allowed else None
        api._record(
            RecordedRequest(
                "POST", self.path, headers, body, received_at, taken[0] if taken else None
            )
        )
        if path != MESSAGES_PATH:
            self._send_error(404, "not_found_error", f"no route POST {self.path}")
        elif not allowed:
            self._send_error(401, "authentication_error", "invalid x-api-key")
        elif not valid:
            self._send_error(400, "invalid_request_error", "messages: field required")
        elif taken is None:
            self._send_error(
                400,
                "invalid_request_error",
                f"fake Messages API: script {api.script_name} has no turn left "
                f"after {len(api._entries)} turn(s)",
            )
        else:
            try:
                self._reply(taken[1], body)
            except (_Dropped, BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    # -- replies -------------------------------------------------------------------------

    def _reply(self, entry: ScriptEntry, body: dict[str, Any]) -> None:
        api = self.server.api
        if not api._sleep(entry.delay_first_byte_s):
            raise _Dropped
        if entry.http_error is not None:
            fault = entry.http_error
            extra = {} if fault.retry_after is None else {"retry-after": _num(fault.retry_after)}
            error_type = fault.type or _TYPE_BY_STATUS.get(fault.status, "api_error")
            self._send_error(fault.status, error_type, fault.message or error_type, extra)
            return
        message = build_message(entry, body)
        if body.get("stream"):
            self._stream(entry, message)
        elif entry.turn.stream_error is not None:
            error = entry.turn.stream_error
            self._send_error(
                _STATUS_BY_STREAM_ERROR.get(error["type"], 500), error["type"], error["message"]
            )
        elif entry.drop_after_events is not None:
            self._drop()
        else:
            self._send_json(200, message)

    def _stream(self, entry: ScriptEntry, message: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        events = list(sse_events(entry, message))
        if entry.turn.stream_error is not None:
            # Part of the turn, then the error event: deltas already seen must be discarded.
            cut = 2 + (len(events) - 4) // 2
            error = {"type": "error", "error": dict(entry.turn.stream_error)}
            events = [*events[:cut], ("error", error)]
        for number, (name, data) in enumerate(events):
            if entry.drop_after_events is not None and number >= entry.drop_after_events:
                self._drop()
            if number and not self.server.api._sleep(entry.delay_between_events_s):
                self._drop()
            self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        if entry.drop_after_events is not None and entry.drop_after_events <= len(events):
            self._drop()
        self._chunk(b"")
        if entry.turn.stream_error is not None:
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _drop(self) -> None:
        """Reset the connection mid-reply (RST, not a clean close)."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        raise _Dropped

    def _send_json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(
        self, status: int, error_type: str, message: str, extra: dict[str, str] | None = None
    ) -> None:
        payload = {"type": "error", "error": {"type": error_type, "message": message}}
        self._send_json(status, payload, extra)


# -- building replies ------------------------------------------------------------------------


def build_message(entry: ScriptEntry, body: dict[str, Any]) -> dict[str, Any]:
    """The complete assistant message a script entry stands for."""
    turn = entry.turn
    content: list[dict[str, Any]] = []
    if turn.thinking is not None:
        signature = str(entry.extra.get("signature", DEFAULT_SIGNATURE))
        content.append({"type": "thinking", "thinking": turn.thinking, "signature": signature})
    if turn.text is not None:
        content.append({"type": "text", "text": turn.text})
    for call in turn.tool_use:
        content.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}"),
                "name": call["name"],
                "input": call.get("input", {}),
                **({"partial_json": call["partial_json"]} if "partial_json" in call else {}),
            }
        )
    stop_reason = entry.extra.get("stop_reason") or ("tool_use" if turn.tool_use else "end_turn")
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(entry, body, content),
    }


def _usage(entry: ScriptEntry, body: dict[str, Any], content: list[dict[str, Any]]) -> Any:
    given = entry.extra.get("usage")
    if isinstance(given, dict):
        return {
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
            **given,
        }
    prompt_chars = len(json.dumps(body.get("messages", []))) + len(json.dumps(body.get("system")))
    output_chars = len(json.dumps(content))
    return {
        "input_tokens": math.ceil(prompt_chars / 4),
        "output_tokens": max(1, math.ceil(output_chars / 4)),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def sse_events(entry: ScriptEntry, message: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The SSE events of a streamed reply, in the real API's order and shape."""
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": 1}
    yield (
        "message_start",
        {
            "type": "message_start",
            "message": {**message, "content": [], "stop_reason": None, "usage": start_usage},
        },
    )
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):
        yield from _block_events(index, block)
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": usage,
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _block_events(index: int, block: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    kind = block["type"]
    if kind == "thinking":
        start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": c} for c in _chunks(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"])]
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        fragments = block.get("partial_json")
        if fragments is None:
            # Like the API: an empty fragment first, then pieces cut anywhere.
            fragments = ["", *_chunks(json.dumps(block["input"]), JSON_CHUNK)]
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
    yield (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": start},
    )
    for delta in deltas:
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": index}


def _chunks(text: str, size: int = TEXT_CHUNK) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# -- standalone --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", required=True, help="script.json to play")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--repeat", action="store_true", help="start over when the script ends")
    args = parser.parse_args(argv)
    api = FakeMessagesAPI(args.script, port=args.port, repeat=args.repeat).start()
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(api.url, flush=True)
    try:
        done.wait()
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
