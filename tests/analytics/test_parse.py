"""The JSON reader's rules: fixed columns, exact timestamps, nothing silently dropped."""

from __future__ import annotations

import json

import pyarrow as pa

from analytics.parse import parse_jsonl
from analytics.schemas import EVENTS

from .runs import T0


def line(**fields: object) -> bytes:
    return json.dumps({"id": "e", "type": "startRun", "timestamp": T0, **fields}).encode()


def test_timestamp_is_utc_milliseconds_and_exact() -> None:
    table = parse_jsonl(line() + b"\n").table
    assert table.schema.field("ts").type == pa.timestamp("ms", tz="UTC")
    value = table.column("ts")[0].as_py()
    assert value.isoformat(timespec="milliseconds") == "2023-11-14T22:13:20.123+00:00"


def test_long_text_columns_have_64_bit_offsets() -> None:
    for name in ("raw", "text", "delta", "query", "message", "reason", "error_message"):
        assert EVENTS.field(name).type == pa.large_string(), name


def test_malformed_truncated_and_non_object_lines_are_rejected_with_their_line_numbers() -> None:
    data = b"\n".join([line(id="a"), b'{"id": "b", "ty', b"[1, 2]", line(id="c"), b'{"id":'])
    parsed = parse_jsonl(data)
    assert parsed.table.column("event_id").to_pylist() == ["a", "c"]
    assert parsed.table.column("source_line").to_pylist() == [1, 4]
    rejected = {r.line_number: r for r in parsed.rejected}
    assert sorted(rejected) == [2, 3, 5]
    assert rejected[2].raw == '{"id": "b", "ty'
    assert rejected[3].reason == "not a JSON object but list"
    assert rejected[5].reason.startswith("invalid JSON")


def test_blank_and_crlf_lines_keep_their_line_numbers() -> None:
    data = line(id="a") + b"\r\n\r\n   \n" + line(id="b") + b"\r\n"
    table = parse_jsonl(data).table
    assert table.column("source_line").to_pylist() == [1, 4]
    assert table.column("raw").to_pylist()[1] == line(id="b").decode()


def test_field_of_an_unexpected_type_keeps_the_event_with_that_column_null() -> None:
    parsed = parse_jsonl(line(id="a") + b"\n" + line(id="b", usage="lots") + b"\n")
    assert parsed.table.column("event_id").to_pylist() == ["a", "b"]
    assert parsed.table.column("raw").to_pylist()[1] == line(id="b", usage="lots").decode()
    assert [r.line_number for r in parsed.rejected] == [2]
    assert parsed.rejected[0].reason == "kept with usage left null: not of the column's type"


def test_invalid_utf8_is_rejected_and_the_rest_kept() -> None:
    parsed = parse_jsonl(line(id="a") + b"\n\xff\xfe\n" + line(id="b") + b"\n")
    assert parsed.table.column("event_id").to_pylist() == ["a", "b"]
    assert [(r.line_number, r.reason) for r in parsed.rejected] == [(2, "line is not valid UTF-8")]


def test_unknown_type_and_unknown_fields_stay_in_the_raw_payload() -> None:
    raw = line(type="somethingNew", surprise={"deep": [1, 2]})
    table = parse_jsonl(raw + b"\n").table
    assert table.column("type").to_pylist() == ["somethingNew"]
    assert json.loads(table.column("raw")[0].as_py())["surprise"] == {"deep": [1, 2]}


def test_a_key_that_first_appears_after_many_lines_is_read() -> None:
    lines = [line(id=f"e{i}", type="streamRunResult", delta="x") for i in range(40_000)]
    lines.append(line(id="late", type="retry", reason="finally a reason"))
    table = parse_jsonl(b"\n".join(lines)).table
    assert table.num_rows == 40_001
    assert table.column("reason")[40_000].as_py() == "finally a reason"
