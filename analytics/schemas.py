"""The fixed Arrow schemas of every Parquet table we write; nothing is inferred from data.

The ``events`` table is described by a column-spec table (``EVENT_COLUMNS``): each typed
column names the JSON path it comes from. The JSON reader's explicit schema and the
flattening into columns are both built from that one table, so adding a field is one
line. Long text is ``large_string`` so a column never overflows 32-bit offsets.
Timestamps are UTC milliseconds (``timestamp[ms, tz=UTC]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("ms", tz="UTC")
TEXT = pa.large_string()
# Accepted times, UTC epoch milliseconds: from the epoch (some streams and tests use small
# counters) up to 2100-01-01. Past that a value is not a time in milliseconds (e.g.
# microseconds): its day cannot be a partition folder, and DuckDB cannot read it back (one
# such value broke every query of the dataset).
TS_MIN_MS = 0
TS_MAX_MS = 4_102_444_800_000
TS_RANGE = (
    f"accepted: {TS_MIN_MS} to {TS_MAX_MS - 1} ms since the epoch, 1970-01-01 up to 2100-01-01"
)


def ms_out_of_range(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """True where a timestamp (or integer milliseconds) is outside the accepted range;
    False where it is null."""
    if pa.types.is_timestamp(column.type) and column.type.unit != "ms":
        column = pc.cast(column, pa.timestamp("ms", tz=column.type.tz), safe=False)
    ms = pc.cast(column, pa.int64())
    outside = pc.or_(pc.less(ms, TS_MIN_MS), pc.greater_equal(ms, TS_MAX_MS))
    return pc.fill_null(outside, False)


@dataclass(frozen=True)
class Col:
    """One typed events column and the JSON path it is read from."""

    name: str
    type: pa.DataType
    path: tuple[str, ...]

    @property
    def json_type(self) -> pa.DataType:
        # The JSON reader sees epoch milliseconds as integers; they become timestamps after.
        return pa.int64() if pa.types.is_timestamp(self.type) else self.type


def _c(name: str, typ: pa.DataType, *path: str) -> Col:
    return Col(name, typ, path)


# Common fields first (every event has them; run events also expertKey and stepNumber),
# then type-specific ones. A field used by several types (text, reason, usage) is one column.
EVENT_COLUMNS: tuple[Col, ...] = (
    _c("event_id", pa.string(), "id"),
    _c("type", pa.string(), "type"),
    _c("ts", TIMESTAMP, "timestamp"),
    _c("job_id", pa.string(), "jobId"),
    _c("run_id", pa.string(), "runId"),
    _c("expert_key", pa.string(), "expertKey"),
    _c("step_number", pa.int64(), "stepNumber"),
    # initializeRuntime
    _c("runtime_version", pa.string(), "runtimeVersion"),
    _c("runtime", pa.string(), "runtime"),
    _c("expert_name", pa.string(), "expertName"),
    _c("model", pa.string(), "model"),
    _c("temperature", pa.float64(), "temperature"),
    _c("max_steps", pa.int64(), "maxSteps"),
    _c("max_retries", pa.int64(), "maxRetries"),
    _c("timeout_ms", pa.int64(), "timeout"),
    _c("query", TEXT, "query"),
    # skill lifecycle
    _c("skill_name", pa.string(), "skillName"),
    _c("skill_command", pa.string(), "command"),
    _c("skill_server_version", pa.string(), "serverInfo", "version"),
    _c("spawn_duration_ms", pa.int64(), "spawnDurationMs"),
    _c("handshake_duration_ms", pa.int64(), "handshakeDurationMs"),
    _c("tool_discovery_duration_ms", pa.int64(), "toolDiscoveryDurationMs"),
    _c("connect_duration_ms", pa.int64(), "connectDurationMs"),
    _c("total_duration_ms", pa.int64(), "totalDurationMs"),
    _c("message", TEXT, "message"),
    # streaming, completion, retry
    _c("delta", TEXT, "delta"),
    _c("text", TEXT, "text"),
    _c("reason", TEXT, "reason"),
    _c("retry_attempt", pa.int64(), "attempt"),
    _c("retry_delay_ms", pa.int64(), "delayMs"),
    _c("status_code", pa.int64(), "statusCode"),
    # usage of the generation that produced this event
    _c("input_tokens", pa.int64(), "usage", "inputTokens"),
    _c("output_tokens", pa.int64(), "usage", "outputTokens"),
    _c("reasoning_tokens", pa.int64(), "usage", "reasoningTokens"),
    _c("total_tokens", pa.int64(), "usage", "totalTokens"),
    _c("cached_input_tokens", pa.int64(), "usage", "cachedInputTokens"),
    # checkpoint and step carried by step-ending events
    _c("checkpoint_id", pa.string(), "checkpoint", "id"),
    _c("checkpoint_status", pa.string(), "checkpoint", "status"),
    _c("next_checkpoint_id", pa.string(), "nextCheckpoint", "id"),
    _c("step_started_at", TIMESTAMP, "step", "startedAt"),
    _c("step_finished_at", TIMESTAMP, "step", "finishedAt"),
    # stopRunByError (ours and the reference's checkpoint.error have the same shape)
    _c("error_name", pa.string(), "error", "name"),
    _c("error_message", TEXT, "error", "message"),
    _c("error_status_code", pa.int64(), "error", "statusCode"),
    _c("error_is_retryable", pa.bool_(), "error", "isRetryable"),
    _c("checkpoint_error_name", pa.string(), "checkpoint", "error", "name"),
    _c("checkpoint_error_message", TEXT, "checkpoint", "error", "message"),
    # containers and proxy
    _c("status", pa.string(), "status"),
    _c("service", pa.string(), "service"),
    _c("action", pa.string(), "action"),
    _c("domain", pa.string(), "domain"),
    _c("port", pa.int64(), "port"),
)

COMMON_PATHS: tuple[str, ...] = (
    "id",
    "type",
    "timestamp",
    "jobId",
    "runId",
    "expertKey",
    "stepNumber",
)

# Columns every ingested row gets besides the typed ones.
PROVENANCE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("user_name", pa.string()),
    pa.field("source_file", pa.string()),
    pa.field("source_line", pa.int64()),
    pa.field("ingested_at", TIMESTAMP),
)

EVENTS = pa.schema(
    [pa.field(c.name, c.type) for c in EVENT_COLUMNS]
    + list(PROVENANCE_FIELDS)
    + [pa.field("raw", TEXT)]
)

_USER = pa.field("user_name", pa.string())
_SOURCE = pa.field("source_file", pa.string())

TOOL_CALLS = pa.schema(
    [
        ("tool_call_id", pa.string()),
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("ts", TIMESTAMP),
        ("job_id", pa.string()),
        ("run_id", pa.string()),
        ("expert_key", pa.string()),
        ("step_number", pa.int64()),
        ("skill_name", pa.string()),
        ("tool_name", pa.string()),
        ("args", TEXT),
        _USER,
    ]
)

TOOL_RESULTS = pa.schema(
    [
        ("tool_call_id", pa.string()),
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("ts", TIMESTAMP),
        ("job_id", pa.string()),
        ("run_id", pa.string()),
        ("skill_name", pa.string()),
        ("tool_name", pa.string()),
        ("is_error", pa.bool_()),
        ("result_text", TEXT),
        ("result", TEXT),
        _USER,
    ]
)

CHECKPOINTS = pa.schema(
    [
        ("checkpoint_id", pa.string()),
        ("version_hash", pa.string()),
        ("job_id", pa.string()),
        ("run_id", pa.string()),
        ("expert_key", pa.string()),
        ("expert_name", pa.string()),
        ("expert_version", pa.string()),
        ("status", pa.string()),
        ("step_number", pa.int64()),
        ("message_ids", pa.list_(pa.string())),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("cached_input_tokens", pa.int64()),
        ("context_window", pa.int64()),
        ("context_window_usage", pa.float64()),
        ("retry_count", pa.int64()),
        ("error_name", pa.string()),
        ("error_message", TEXT),
        ("delegate_to", TEXT),
        ("delegated_by", TEXT),
        ("pending_tool_calls", TEXT),
        ("partial_tool_results", TEXT),
        ("metadata", TEXT),
        ("seen_in", pa.string()),
        _SOURCE,
        _USER,
    ]
)

MESSAGES = pa.schema(
    [
        ("message_id", pa.string()),
        ("job_id", pa.string()),
        ("run_id", pa.string()),
        ("message_type", pa.string()),
        ("text", TEXT),
        ("message", TEXT),
        _USER,
    ]
)

JOBS = pa.schema(
    [
        ("job_id", pa.string()),
        ("version_hash", pa.string()),
        ("status", pa.string()),
        ("coordinator_expert_key", pa.string()),
        ("total_steps", pa.int64()),
        ("max_steps", pa.int64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("cached_input_tokens", pa.int64()),
        ("started_at", TIMESTAMP),
        ("finished_at", TIMESTAMP),
        _SOURCE,
        _USER,
    ]
)

RUN_SETTINGS = pa.schema(
    [
        ("run_id", pa.string()),
        ("version_hash", pa.string()),
        ("job_id", pa.string()),
        ("expert_key", pa.string()),
        ("model", pa.string()),
        ("provider_name", pa.string()),
        ("temperature", pa.float64()),
        ("max_steps", pa.int64()),
        ("max_retries", pa.int64()),
        ("timeout_ms", pa.int64()),
        ("input_text", TEXT),
        ("started_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
        ("runtime_version", pa.string()),
        _SOURCE,
        _USER,
    ]
)

QUARANTINE = pa.schema(
    [
        ("source_file", pa.string()),
        ("line_number", pa.int64()),
        ("reason", TEXT),
        ("raw_hash", pa.string()),
        ("raw", TEXT),
        ("ingested_at", TIMESTAMP),
        _USER,
    ]
)


@dataclass(frozen=True)
class TableSpec:
    """A Parquet table of the dataset: its schema, key and partitioning."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    # Rows are split into day=YYYY-MM-DD folders by this timestamp column, or not at all.
    day_column: str | None


# What tells one tool call from another.
CALL_KEY = ("job_id", "tool_call_id")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("events", EVENTS, ("event_id",), "ts"),
        # Tool call ids are unique within a job only (the scripted provider, and the
        # reference's, number them from 1 in every job).
        TableSpec("tool_calls", TOOL_CALLS, CALL_KEY, "ts"),
        TableSpec("tool_results", TOOL_RESULTS, ("tool_call_id", "event_id"), "ts"),
        TableSpec("checkpoints", CHECKPOINTS, ("checkpoint_id", "version_hash"), None),
        TableSpec("messages", MESSAGES, ("message_id",), None),
        TableSpec("jobs", JOBS, ("job_id", "version_hash"), None),
        TableSpec("run_settings", RUN_SETTINGS, ("run_id", "version_hash"), None),
        TableSpec("quarantine", QUARANTINE, ("source_file", "line_number", "raw_hash"), None),
    )
}


def json_read_schema() -> pa.Schema:
    """The explicit schema given to the JSON reader, nested as the events are."""
    tree: dict[str, object] = {}
    for col in EVENT_COLUMNS:
        node = tree
        for key in col.path[:-1]:
            child = node.setdefault(key, {})
            assert isinstance(child, dict)
            node = child
        node[col.path[-1]] = col.json_type
    return pa.schema([pa.field(k, _to_type(v)) for k, v in tree.items()])


def _to_type(node: object) -> pa.DataType:
    if isinstance(node, pa.DataType):
        return node
    assert isinstance(node, dict)
    return pa.struct([pa.field(k, _to_type(v)) for k, v in node.items()])
