"""Scripts of assistant turns: the reference recordings' ``script.json`` format, validated.

A script is a JSON array; each entry answers one request, in order::

    {"thinking": "...", "text": "...", "tool_use": [{"name": "readTextFile", "input": {...}}]}
    {"stream_error": {"type": "overloaded_error", "message": "Overloaded"}}

Faults (played by the scripted provider and the fake Messages API server alike):

- ``http_error``: ``{"status": 429, "retry_after": 1.5, "type": "rate_limit_error",
  "message": "..."}``: the request fails with that status before any byte of a reply.
- ``stream_error``: the reply starts, streams part of the turn, then fails with an SSE ``error``
  event of that ``type`` (retryable unless the type is a client error).
- ``drop_after_events``: the connection is dropped after that many SSE events.
- ``delay_first_byte_s`` / ``delay_between_events_s``: pauses, in seconds.

Reply details: ``usage`` (the API's token counts to report: ``input_tokens``, ``output_tokens``,
``cache_creation_input_tokens``, ``cache_read_input_tokens``), ``stop_reason``, ``signature`` (of
the thinking), and per tool call ``id``; the fake server alone also plays ``partial_json`` per
tool call (the exact ``input_json_delta`` fragments to send).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from runtime.errors import ConfigError
from runtime.providers.provider import ScriptTurn

_CONTENT_KEYS = {"thinking", "text", "tool_use", "stream_error"}
_FAULT_KEYS = {"http_error", "drop_after_events", "delay_first_byte_s", "delay_between_events_s"}
_FAKE_KEYS = {"usage", "stop_reason", "signature"}
_TURN_KEYS = _CONTENT_KEYS | _FAULT_KEYS | _FAKE_KEYS
_TOOL_KEYS = {"name", "input", "id", "partial_json"}
_HTTP_ERROR_KEYS = {"status", "retry_after", "type", "message"}
_USAGE_KEYS = {
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
}

T = TypeVar("T", int, float)


@dataclass(frozen=True)
class HttpErrorFault:
    status: int
    retry_after: float | None = None
    type: str | None = None
    message: str | None = None


@dataclass
class ScriptEntry:
    """One scripted reply: the turn itself and how its delivery misbehaves."""

    turn: ScriptTurn
    http_error: HttpErrorFault | None = None
    drop_after_events: int | None = None
    delay_first_byte_s: float = 0.0
    delay_between_events_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ScriptError(ConfigError):
    """A script file is missing, not JSON, or has an entry we cannot play."""


def load_script(path: str | Path) -> list[ScriptEntry]:
    """Read and validate a script file. Errors name the file and the entry."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read the script: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ScriptError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    return parse_script(raw, source=str(path))


def parse_script(raw: object, *, source: str = "<script>") -> list[ScriptEntry]:
    if not isinstance(raw, list):
        raise ScriptError(f"{source}: a script is a JSON array of turns, got {type(raw).__name__}")
    return [parse_entry(item, where=f"{source}: turn {i}") for i, item in enumerate(raw)]


def parse_entry(item: object, *, where: str) -> ScriptEntry:
    if not isinstance(item, dict):
        raise ScriptError(f"{where}: a turn is a JSON object, got {json.dumps(item)[:80]}")
    _refuse_unknown(item, _TURN_KEYS, where)
    turn = ScriptTurn(
        thinking=_optional_str(item, "thinking", where),
        text=_optional_str(item, "text", where),
        tool_use=_tool_uses(item.get("tool_use", []), where),
        stream_error=_stream_error(item.get("stream_error"), where),
    )
    return ScriptEntry(
        turn=turn,
        http_error=_http_error(item.get("http_error"), where),
        drop_after_events=_optional_number(item, "drop_after_events", where, int),
        delay_first_byte_s=_optional_number(item, "delay_first_byte_s", where, float) or 0.0,
        delay_between_events_s=(
            _optional_number(item, "delay_between_events_s", where, float) or 0.0
        ),
        extra=_details(item, where),
    )


def _details(item: dict[str, Any], where: str) -> dict[str, Any]:
    for key in ("stop_reason", "signature"):
        _optional_str(item, key, where)
    usage = item.get("usage")
    if usage is not None:
        here = f"{where}, usage"
        if not isinstance(usage, dict):
            raise ScriptError(f"{here}: must be an object of token counts")
        _refuse_unknown(usage, _USAGE_KEYS, here)
        for key in usage:
            _optional_number(usage, key, here, int)
    return {key: item[key] for key in _FAKE_KEYS if key in item}


def _refuse_unknown(item: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ScriptError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _optional_str(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise ScriptError(f"{where}: {key!r} must be a string, got {json.dumps(value)[:80]}")
    return value


def _optional_number(item: dict[str, Any], key: str, where: str, kind: type[T]) -> T | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ScriptError(f"{where}: {key!r} must be a number >= 0, got {json.dumps(value)}")
    if kind is int and not isinstance(value, int):
        raise ScriptError(f"{where}: {key!r} must be a whole number, got {json.dumps(value)}")
    return kind(value)


def _tool_uses(value: object, where: str) -> list[dict[str, object]]:
    if not isinstance(value, list):
        raise ScriptError(f"{where}: 'tool_use' must be a list of {{name, input}} objects")
    calls: list[dict[str, object]] = []
    for j, call in enumerate(value):
        here = f"{where}, tool_use {j}"
        if not isinstance(call, dict):
            raise ScriptError(f"{here}: must be an object with 'name' and 'input'")
        _refuse_unknown(call, _TOOL_KEYS, here)
        if not isinstance(call.get("name"), str) or not call["name"]:
            raise ScriptError(f"{here}: 'name' must be a non-empty string")
        if not isinstance(call.get("input", {}), dict):
            raise ScriptError(f"{here}: 'input' must be an object, got {call['input']!r}")
        fragments = call.get("partial_json")
        if fragments is not None and not (
            isinstance(fragments, list) and all(isinstance(f, str) for f in fragments)
        ):
            raise ScriptError(f"{here}: 'partial_json' must be a list of strings")
        calls.append({"input": {}, **call})
    return calls


def _stream_error(value: object, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ScriptError(f'{where}: \'stream_error\' must be {{"type": ..., "message": ...}}')
    return {"type": value["type"], "message": str(value.get("message", value["type"]))}


def _http_error(value: object, where: str) -> HttpErrorFault | None:
    if value is None:
        return None
    here = f"{where}, http_error"
    if not isinstance(value, dict):
        raise ScriptError(f"{here}: must be an object with 'status'")
    _refuse_unknown(value, _HTTP_ERROR_KEYS, here)
    status = value.get("status")
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ScriptError(f"{here}: 'status' must be an HTTP error status (400-599)")
    return HttpErrorFault(
        status=status,
        retry_after=_optional_number(value, "retry_after", here, float),
        type=_optional_str(value, "type", here),
        message=_optional_str(value, "message", here),
    )
